"""The odometry node says on vode/status when the pose net is off its domain and its translation is
not used (real rclpy over DDS; the shipped pose net recorded as a driving model at ~82 deg; no depth
node, so hybrid falls back to the net on every frame: the gated motion)."""
from __future__ import annotations


import pytest
from rclpy.parameter import Parameter

from ros_helpers import Harness, ensure_rclpy
from trust_helpers import driving_models as trust_models
from vode_ros.core.kitti import load_sequence, read_image

pytestmark = [pytest.mark.ros]


@pytest.fixture
def driving_models(models_dir, tmp_path):
    return trust_models(models_dir, tmp_path, domain="driving", depth_range=False)


@pytest.mark.parametrize("domain, off", [("", False), ("indoor", True)])
def test_status_says_the_net_translation_is_not_used_off_domain(driving_models, kitti_dir, domain, off):
    from vode_ros.nodes.odometry_node import OdometryNode

    ensure_rclpy()
    seq = load_sequence(kitti_dir, max_frames=3)
    node = OdometryNode(parameter_overrides=[Parameter("model_dir", value=str(driving_models)),
                                             Parameter("domain", value=domain)])
    h = Harness([node])
    try:
        assert h.wait_connected()
        for i in range(3):
            h.publish_frame(read_image(seq.left[i]), "mono8", seq.k, 10.0 + 0.1 * i)
        assert h.wait_for(lambda: any(s.node == "pose" and s.frames_out >= 2 for s in h.got["status"]), 60.0)

        def said() -> bool:
            return any(s.node == "pose" and "translation is not used" in s.scale_source for s in h.got["status"])

        if off:     # said from the first frame pair the net measured (a loaded machine may drop frames first)
            assert h.wait_for(said, 30.0), [s.scale_source for s in h.got["status"]]
        else:
            assert not said(), [s.scale_source for s in h.got["status"]]
    finally:
        h.close()


def test_matcher_and_plausibility_parameters_reach_the_estimator(models_dir):
    from vode_ros.nodes.odometry_node import OdometryNode

    ensure_rclpy()
    node = OdometryNode(parameter_overrides=[Parameter("model_dir", value=str(models_dir)),
                                             Parameter("matcher", value="lk")])
    try:
        assert node.pipeline.settings.pose.matcher == "lk" and node.pipeline.settings.pose.plausibility
        result = node.set_parameters([Parameter("matcher", value="descriptor"), Parameter("plausibility", value=False)])
        assert all(r.successful for r in result)
        cfg = node.pipeline.frontend.config
        assert cfg.matcher == "descriptor" and not cfg.plausibility
        assert not node.set_parameters([Parameter("matcher", value="sift")])[0].successful   # not a matcher
    finally:
        node.destroy_node()
