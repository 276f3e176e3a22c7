"""Ground truth from text: rotation blocks orthonormal only to ~1e-3 are projected onto SO(3) and
said once; a broken block is refused with the file and line; evo takes what the loader gives."""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vode_ros.core import trajectory as tj
from vode_ros.core.geometry import euler2mat
from vode_ros.core.kitti import KittiFormatError, load_sequence

REPO = Path(__file__).resolve().parents[2]
SEVEN_SCENES = REPO / ".." / "shared" / "data" / "seven_scenes_0000-0998_every2"


def _rotations(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([euler2mat(rng.uniform(-1, 1, 3)) for _ in range(n)])


def _folder(tmp_path: Path, poses: np.ndarray) -> Path:
    """A KITTI-layout folder of len(poses) tiny frames with these (N, 3, 4) poses."""
    (tmp_path / "image_0").mkdir()
    rng = np.random.default_rng(1)
    for i in range(len(poses)):
        cv2.imwrite(str(tmp_path / "image_0" / f"{i:06d}.png"), rng.integers(0, 255, (16, 24), np.uint8))
    (tmp_path / "calib.txt").write_text("P0: 20 0 12 0 0 20 8 0 0 0 1 0\n")
    (tmp_path / "times.txt").write_text("".join(f"{0.1 * i:.3f}\n" for i in range(len(poses))))
    (tmp_path / "poses.txt").write_text("".join(" ".join(f"{x:.9e}" for x in p.reshape(-1)) + "\n" for p in poses))
    return tmp_path


def test_projection_gives_the_nearest_rotation():
    r = _rotations(5)
    noisy = r + np.random.default_rng(2).normal(0, 3e-4, r.shape)
    out = tj.project_to_so3(noisy)
    assert tj.so3_deviation(out).max() < 1e-12
    assert np.abs(out - r).max() < 2e-3                 # nearby, not some other rotation
    assert np.abs(tj.project_to_so3(r) - r).max() < 1e-12


def test_nearly_orthonormal_blocks_are_projected_and_said_once(tmp_path, caplog):
    poses = np.zeros((6, 3, 4))
    poses[:, :, :3] = _rotations(6) + np.random.default_rng(3).normal(0, 1e-3, (6, 3, 3))
    poses[:, :, 3] = np.arange(18).reshape(6, 3) * 0.1
    folder = _folder(tmp_path, poses)
    assert tj.so3_deviation(poses[:, :, :3]).max() > 1e-4   # as loose as 7-Scenes' real poses
    with caplog.at_level(logging.WARNING, logger="vode_ros.ground_truth"):
        seq = load_sequence(folder)
        load_sequence(folder)
    assert tj.so3_deviation(seq.poses[:, :3, :3]).max() < 1e-9
    assert np.allclose(seq.poses[:, :3, 3], poses[:, :, 3])          # translations untouched
    said = [r.getMessage() for r in caplog.records if "projected onto SO(3)" in r.getMessage()]
    assert len(said) == 1 and "poses.txt" in said[0]


def test_exact_rotations_are_kept_silently(tmp_path, caplog):
    poses = np.zeros((5, 3, 4))
    poses[:, :, :3] = _rotations(5, seed=4)
    folder = _folder(tmp_path, poses)
    with caplog.at_level(logging.WARNING, logger="vode_ros.ground_truth"):
        seq = load_sequence(folder)
    assert np.abs(seq.poses[:, :3, :3] - poses[:, :, :3]).max() < 1e-8
    assert not [r for r in caplog.records if "SO(3)" in r.getMessage()]


@pytest.mark.parametrize("damage, words", [(lambda r: 1.5 * r, "no rotation"),
                                            (lambda r: np.diag([1.0, 1.0, -1.0]) @ r, "no rotation"),
                                            (lambda r: r + 0.05, "no rotation")])
def test_a_broken_block_is_refused_with_file_and_line(tmp_path, damage, words):
    poses = np.zeros((6, 3, 4))
    poses[:, :, :3] = _rotations(6, seed=5)
    poses[3, :, :3] = damage(poses[3, :, :3])
    folder = _folder(tmp_path, poses)
    with pytest.raises(KittiFormatError) as err:
        load_sequence(folder)
    msg = str(err.value)
    assert "poses.txt, line 4" in msg and words in msg and "\n" not in msg


def test_non_finite_numbers_are_refused_with_the_line():
    r = _rotations(3)
    r[2, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"gt.txt, line 12: numbers that are not finite"):
        tj.ground_truth_rotations(r, "gt.txt", [10, 11, 12])


def test_evo_takes_a_nearly_orthonormal_estimate():
    pytest.importorskip("evo", reason="evo not installed")
    from vode_ros.core import kitti_odometry_metrics as km

    n = 8
    gt = np.tile(np.eye(4), (n, 1, 1))
    gt[:, :3, :3] = _rotations(n, seed=6)
    gt[:, :3, 3] = np.cumsum(np.ones((n, 3)), axis=0)
    est = gt.copy()
    est[:, :3, :3] += np.random.default_rng(7).normal(0, 3e-4, (n, 3, 3))      # evo alone refuses these
    out = km.evo_ape_rpe(est, gt)
    assert out["ape_trans_sim3"]["rmse"] < 1e-9


@pytest.mark.skipif(not SEVEN_SCENES.is_dir(), reason="shared 7-Scenes folder not present")
def test_eval_pose_on_real_loose_ground_truth_needs_no_hand_fix():
    """The shipped 7-Scenes folder (rotations orthonormal to ~3e-4) through `vode eval pose`: evo runs,
    the projection is said, no traceback."""
    run = subprocess.run([sys.executable, "-m", "vode_ros.cli.main", "eval", "pose", "--data", str(SEVEN_SCENES),
                          "--pose-source", "geometric", "--depth", "gt", "--max-frames", "8"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    assert "projected onto SO(3)" in run.stderr
    assert "evo: APE" in run.stdout
