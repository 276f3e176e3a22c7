"""`vode demo` end to end on a short copy of the clip: bag -> nodes (second process) -> report."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ros]


def _small_clip(src, dst, n=8):
    for sub in ("image_0", "image_1"):
        (dst / sub).mkdir(parents=True)
        for p in sorted((src / sub).glob("*.png"))[:n]:
            shutil.copy(p, dst / sub / p.name)
    shutil.copy(src / "calib.txt", dst / "calib.txt")
    for name in ("times.txt", "poses.txt"):
        (dst / name).write_text("".join((src / name).read_text().splitlines(keepends=True)[:n]))


def _demo(clip, out, models_dir, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """`vode demo` on ``clip`` at half speed -> (the finished process, its report.json)."""
    proc = subprocess.run([sys.executable, "-m", "vode_ros.cli.main", "demo", "--data", str(clip), "--out", str(out),
                           "--model-dir", str(models_dir), "--rate", "0.5", *args],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, json.loads((out / "report.json").read_text())


def test_demo_writes_report_and_plots(tmp_path, kitti_dir, models_dir):
    clip = tmp_path / "clip"
    _small_clip(kitti_dir, clip)
    out = tmp_path / "report"
    proc, report = _demo(clip, out, models_dir, "--pose-source", "hybrid")
    assert report["frames_in"] == 8
    # Lossless: reliable replay into reliable_input nodes, started by ros2 launch where it exists, else vode run.
    assert report["runner"] in ("ros2 launch", "vode run") and report["replay"]["reliable"]
    assert report["frames_out"] == {"depth": 8, "odometry": 8}
    assert (report["mode"], report["pose_source"]) == ("stereo", "hybrid")
    assert report["pose_node"]["pose_sources"].get("hybrid", 0) >= 5 and report["pose_node"]["fallbacks"] == 0
    assert report["trajectory"]["ate5_mean_m"] < 0.03 and report["trajectory"]["end_drift_pct"] < 5
    # Every frame is either published or dropped by the newest-frame-wins policy (counted).
    for role, key in (("depth_node", "depth"), ("pose_node", "odometry")):
        node = report[role]
        assert node["frames_in"] == 8 and node["frames_rejected"] == 0
        assert report["frames_out"][key] + node["frames_dropped"] == 8
    assert report["trajectory"]["frames"] == report["frames_out"]["odometry"] >= 5
    assert report["trajectory"]["ate_sim3_rmse_m"] >= 0
    assert 0 < report["depth_metric"]["abs_rel"] < 10
    assert report["depth_node"]["provider"] == "CPUExecutionProvider"
    assert (out / "trajectory.png").stat().st_size > 10_000
    assert list(out.glob("depth_*.png"))
    assert "ATE" in proc.stdout


def test_demo_rejects_folder_without_calib(tmp_path, kitti_dir):
    clip = tmp_path / "clip"
    _small_clip(kitti_dir, clip, n=3)
    (clip / "calib.txt").unlink()
    proc = subprocess.run([sys.executable, "-m", "vode_ros.cli.main", "demo", "--data", str(clip), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "calib.txt not found" in proc.stderr
    assert not (tmp_path / "out").exists()   # nothing written for bad input


def test_demo_without_ground_truth_plots_what_was_published(tmp_path, kitti_dir, models_dir):
    """A left-only folder without poses.txt, its P0 that of a narrower lens than the model was
    trained for: nothing to score, so the report says so, the plots still show what the nodes
    published, and they call the depth relative, as the node's status does."""
    clip = tmp_path / "clip"
    (clip / "image_0").mkdir(parents=True)
    for p in sorted((kitti_dir / "image_0").glob("*.png"))[:6]:
        shutil.copy(p, clip / "image_0" / p.name)
    (clip / "times.txt").write_text("".join((kitti_dir / "times.txt").read_text().splitlines(keepends=True)[:6]))
    p0 = [float(v) for v in (kitti_dir / "calib.txt").read_text().splitlines()[0].split()[1:]]
    p0[0] *= 2.0
    p0[5] *= 2.0                                   # twice the focal length: about 45 deg instead of 82
    (clip / "calib.txt").write_text("P0: " + " ".join(f"{v:.6e}" for v in p0) + "\n")
    out = tmp_path / "report"
    proc, report = _demo(clip, out, models_dir, "--mode", "mono")
    assert report["frames_out"] == {"depth": 6, "odometry": 6}
    assert "trajectory" not in report and "depth_metric" not in report
    assert "Depth is not scored" in report["notes"] and "trajectory is not scored" in report["notes"]
    assert "not scored (no poses.txt)" in proc.stdout
    assert "none (relative" in report["depth_node"]["scale_source"]
    assert (out / "trajectory.png").stat().st_size > 10_000
    assert len(list(out.glob("depth_*.png"))) >= 2
