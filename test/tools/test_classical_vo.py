"""The classical baseline (ORB + depth + PnP-RANSAC; mono: essential matrix with the depth's length)
on a synthetic street with exact poses and depth; a frame it cannot match repeats the last motion."""
from __future__ import annotations

import numpy as np
import pytest

from vode_ros.core.geometry import invert_se3
from vode_ros.core.stereo_depth import pair_depth
from vode_ros.tools.classical_vo import ClassicalVO, run_classical
from vode_training.data.synthetic import generate_sequence


@pytest.fixture(scope="module")
def street():
    return generate_sequence(frames=8, seed=11)        # 416x128, 1 m a frame, small turns


def _step_errors(poses: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame pair: translation error (m) and rotation error (deg) of the relative motions."""
    rel, rel_gt = np.linalg.inv(poses[:-1]) @ poses[1:], np.linalg.inv(gt[:-1]) @ gt[1:]
    d = [invert_se3(g) @ r for r, g in zip(rel, rel_gt)]
    trans = np.array([np.linalg.norm(x[:3, 3]) for x in d])
    rot = np.degrees([np.arccos(np.clip((np.trace(x[:3, :3]) - 1) / 2, -1, 1)) for x in d])
    return trans, rot


@pytest.mark.parametrize("mode, max_step_m", [("rgbd", 0.08), ("stereo", 0.2), ("mono", 0.35)])
def test_follows_the_exact_motion(street, mode, max_step_m):
    depths = (list(street.depth) if mode != "stereo" else
              [pair_depth(a, b, street.k[0, 0], street.baseline, div=1) for a, b in zip(street.left, street.right)])
    poses, stats = run_classical(list(street.left), depths, street.k, mode)
    trans, rot = _step_errors(poses, street.poses)
    assert stats.failures == 0 and min(stats.inliers) > 40
    assert trans.max() < max_step_m and rot.max() < 1.5
    end = np.linalg.norm(poses[-1, :3, 3] - street.poses[-1, :3, 3])
    assert end < 0.1 * 7.0                              # 7 m driven


def test_depth_at_another_resolution(street):
    """A half-resolution depth map (as SGBM at a divisor) is sampled at the right place."""
    import cv2

    half = [cv2.resize(d, (208, 64), interpolation=cv2.INTER_NEAREST) for d in street.depth[:4]]
    poses, _ = run_classical(list(street.left[:4]), half, street.k, "rgbd")
    trans, _ = _step_errors(poses, street.poses[:4])
    assert trans.max() < 0.1


def test_an_unmatchable_frame_repeats_the_last_motion(street):
    vo = ClassicalVO(street.k, "rgbd")
    vo.step(street.left[0], street.depth[0])
    t1 = vo.step(street.left[1], street.depth[1])
    t2 = vo.step(np.full_like(street.left[2], 128), street.depth[2])     # no texture: no features
    assert vo.stats.failures == 1
    np.testing.assert_allclose(t2, t1)


def test_bad_mode():
    with pytest.raises(ValueError, match="mode must be one of"):
        ClassicalVO(np.eye(3), "lidar")
