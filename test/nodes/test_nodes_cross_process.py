"""`vode run` in a second process: images in over DDS, depth + odometry out; start-up errors."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vode_ros.core.kitti import load_sequence, read_image

from ros_helpers import Harness, ensure_rclpy

pytestmark = [pytest.mark.slow, pytest.mark.ros]

REPO_ROOT = str(Path(__file__).resolve().parents[2])


def _vode(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "vode_ros.cli.main", *args], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_nodes_in_another_process(models_dir, kitti_dir):
    ensure_rclpy()
    seq = load_sequence(kitti_dir, max_frames=4)
    proc = _vode("run", "--model-dir", str(models_dir))
    h = Harness()
    try:
        assert h.wait_connected(subscribers=2, timeout=60), "the nodes of `vode run` were not discovered"
        time.sleep(0.5)
        for i in range(4):
            h.publish_frame(read_image(seq.left[i]), "mono8", seq.k, 1000.0 + 0.1 * i)
            h.wait_for(lambda n=i: len(h.got["odom"]) > n and len(h.got["depth"]) > n, 15.0)
        assert len(h.got["depth"]) == 4 and len(h.got["odom"]) == 4
        stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in h.got["odom"]]
        assert np.allclose(stamps, 1000.0 + 0.1 * np.arange(4))
    finally:
        h.close()
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert "runs on CPUExecutionProvider" in out


def test_missing_model_fails_at_start_naming_the_file(tmp_path):
    proc = _vode("run", "--model-dir", str(tmp_path / "nowhere"))
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1
    assert "model file not found" in out and str(tmp_path / "nowhere" / "depth.onnx") in out


def test_corrupt_model_fails_at_start_naming_the_file(tmp_path, models_dir):
    (tmp_path / "depth.onnx").write_bytes(b"not an onnx file")
    (tmp_path / "pose.onnx").write_bytes((models_dir / "pose.onnx").read_bytes())
    proc = _vode("run", "--model-dir", str(tmp_path), "--nodes", "depth")
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1
    assert "not a loadable ONNX model" in out and "depth.onnx" in out


def test_model_with_wrong_input_shape_fails_at_start(tmp_path, models_dir):
    import onnx

    model = onnx.load(str(models_dir / "depth.onnx"))
    for prop in model.metadata_props:
        if prop.key == "vode.input_width":
            prop.value = "999"
    onnx.save(model, str(tmp_path / "depth.onnx"))
    proc = _vode("run", "--model-dir", str(tmp_path), "--nodes", "depth")
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1
    assert "does not match its metadata" in out and str(tmp_path / "depth.onnx") in out


def test_bag_playback_with_sim_time(tmp_path, models_dir, kitti_dir):
    """`vode run --bag --use-sim-time`: the nodes follow the bag's /clock and process every frame."""
    from vode_ros.bag.kitti_to_bag import convert

    bag = tmp_path / "bag"
    convert(kitti_dir, bag, max_frames=5, stamp_offset=5000.0, progress=False)
    proc = _vode("run", "--model-dir", str(models_dir), "--bag", str(bag), "--use-sim-time")
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out
    assert "played" in out
    for node in ("depth_node", "odometry_node"):
        line = next(l for l in out.splitlines() if l.startswith(node + ":"))
        n_in, n_out, n_drop = (int(x) for x in re.findall(r"(\d+) (?:frames in|out|dropped)", line))
        assert n_in == 5 and n_out + n_drop == 5 and n_out >= 1   # newest-frame-wins may drop under load
        clock = float(line.rsplit("node clock ", 1)[1].split()[0])
        assert 5000.0 <= clock < 5001.0     # /clock from the bag, not wall time
