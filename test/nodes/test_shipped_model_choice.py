"""The node runs the shipped model the user picks (parameter model) or, where none is named, the one
of the camera's domain; a change of domain reloads it live (real rclpy over DDS)."""
from __future__ import annotations

import pytest
from rclpy.parameter import Parameter

from ros_helpers import Harness, ensure_rclpy
from vode_ros.core.kitti import load_sequence, read_image
from vode_ros.runtime.inference import default_model_dir

pytestmark = [pytest.mark.ros, pytest.mark.needs_data]


def _status_model(h: Harness, after: int) -> str:
    assert h.wait_for(lambda: sum(1 for s in h.got["status"] if s.node == "depth" and s.frames_out) > after, 30.0)
    return [s for s in h.got["status"] if s.node == "depth" and s.frames_out][-1].model


def test_model_indoor_and_domain_indoor_run_the_indoor_model(kitti_dir):
    if not (default_model_dir("indoor") / "depth.onnx").is_file():
        pytest.skip("no shipped indoor model")
    from vode_ros.nodes.depth_node import DepthNode

    ensure_rclpy()
    seq = load_sequence(kitti_dir, max_frames=3)
    node = DepthNode(parameter_overrides=[Parameter("model", value="indoor")])
    h = Harness([node])
    try:
        assert h.wait_connected()
        h.publish_frame(read_image(seq.left[0]), "mono8", seq.k, 20.0)
        assert str(default_model_dir("indoor") / "depth.onnx") in _status_model(h, 0)
        # model '' and domain driving: the driving model, reloaded live; then domain indoor again.
        assert node.set_parameters([Parameter("model", value=""), Parameter("domain", value="driving")])[0].successful
        h.publish_frame(read_image(seq.left[1]), "mono8", seq.k, 20.1)
        assert _status_model(h, 1) == str(default_model_dir("driving") / "depth.onnx")
        assert node.set_parameters([Parameter("domain", value="indoor")])[0].successful
        h.publish_frame(read_image(seq.left[2]), "mono8", seq.k, 20.2)
        assert str(default_model_dir("indoor") / "depth.onnx") in _status_model(h, 2)
        assert not node.set_parameters([Parameter("model", value="outdoor")])[0].successful
    finally:
        h.close()
