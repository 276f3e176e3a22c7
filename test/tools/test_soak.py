"""`vode bench soak`: the clip looped through the nodes (`vode run`, a second process) by a camera process."""
from __future__ import annotations

import subprocess
import sys

import pytest

from vode_ros.tools.soak import parse_size, run_soak


def test_size_parses_and_names_the_format_when_wrong():
    assert parse_size("416x128") == (416, 128) and parse_size(None) is None
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size("416*128")
    proc = subprocess.run([sys.executable, "-m", "vode_ros.cli.main", "bench", "soak", "--size", "big"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "WIDTHxHEIGHT" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.needs_data
@pytest.mark.needs_models
def test_a_short_soak_at_the_nets_size_counts_every_frame(kitti_dir, models_dir, tmp_path):
    from ros_helpers import ensure_rclpy

    ensure_rclpy()             # rclpy already initialised in this process, as in a full test session
    result = run_soak(0.2, 10.0, kitti_dir, models_dir, tmp_path / "soak.json", log=lambda m: None, size=(416, 128))
    assert result["image_size"] == [416, 128] and result["published"] >= 100
    for kind in ("depth", "odometry"):
        node = result[kind]
        # Every frame a node took in is published or counted as dropped; at 10 Hz most get through.
        assert node["lost_other"] == 0 and node["rejected"] == 0
        assert node["frames_out"] >= 0.5 * node["frames_in"] > 0
    assert (tmp_path / "soak.json").is_file()
