"""The depth node over real DDS: in mode stereo it publishes the pair's metres (fused depth and
depth/confidence) although its model's metres are 5x wrong, and an indoor-looking scene seen through
a driving field of view is not given the model's metres; vode/status and /diagnostics say why."""
from __future__ import annotations

import numpy as np
import pytest
from rclpy.parameter import Parameter

from ros_helpers import Harness, ensure_rclpy
from trust_helpers import driving_models, room_image
from vode_ros.core.kitti import load_sequence, read_image

pytestmark = [pytest.mark.ros, pytest.mark.needs_models]


def _msg_array(msg) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)


@pytest.mark.needs_stereo_data
def test_stereo_mode_publishes_stereo_scaled_depth_and_confidence(models_dir, kitti_dir, tmp_path):
    import cv2
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    from vode_ros.core.stereo_depth import sgbm_depth
    from vode_ros.nodes.depth_node import DepthNode

    ensure_rclpy()
    models = driving_models(models_dir, tmp_path, **{"vode.train_fx": f"{707.0912 * 416 / 1226 / 5:.3f}"})   # 5x too far
    seq = load_sequence(kitti_dir, max_frames=4)
    node = DepthNode(parameter_overrides=[Parameter("model_dir", value=str(models)), Parameter("mode", value="stereo")])
    h = Harness([node])
    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    right_pub = h.probe.create_publisher(Image, "/camera/right/image_raw", reliable)
    right_info_pub = h.probe.create_publisher(CameraInfo, "/camera/right/camera_info", reliable)
    confidence = []
    h.probe.create_subscription(Image, "/depth/confidence", confidence.append, reliable)
    try:
        assert h.wait_connected() and h.wait_for(lambda: right_pub.get_subscription_count() > 0)
        for i in range(len(seq)):
            t = 50.0 + 0.1 * i
            left, right = read_image(seq.left[i]), read_image(seq.right[i])
            h.publish_right(right_pub, right_info_pub, right, seq.k, seq.baseline, t)
            h.publish_frame(left, "mono8", seq.k, t)
            assert h.wait_for(lambda n=i: node.frames_out > n and len(h.got["depth"]) > n, 20.0)
        assert h.wait_for(lambda: len(confidence) >= 1, 10.0)
        last = read_image(seq.left[-1]), read_image(seq.right[-1])
        truth = sgbm_depth(last[0], last[1], float(seq.k[0, 0]), seq.baseline)
        pub = cv2.resize(_msg_array(h.got["depth"][-1]), truth.shape[::-1], interpolation=cv2.INTER_NEAREST)
        ok = (truth > 0) & (truth < 40) & (pub > 0)
        assert np.median(pub[ok] / truth[ok]) == pytest.approx(1.0, abs=0.12)
        conf = _msg_array(confidence[-1])
        assert confidence[-1].encoding == "32FC1" and conf.shape == _msg_array(h.got["depth"][-1]).shape
        assert 0.0 <= conf.min() and conf.max() <= 1.0
        status = [s for s in h.got["status"] if s.node == "depth" and s.frames_out][-1]
        assert "stereo" in status.scale_source and "until a right image arrives" in status.scale_source
    finally:
        h.close()


def test_indoor_scene_with_driving_field_of_view_status_and_diagnostics_say_why(models_dir, tmp_path):
    from vode_ros.nodes.depth_node import DepthNode
    from vode_ros.runtime.metric_trust import SCENE_FRAMES

    ensure_rclpy()
    models = driving_models(models_dir, tmp_path)
    img, k, _ = room_image()
    node = DepthNode(parameter_overrides=[Parameter("model_dir", value=str(models))])
    h = Harness([node])
    try:
        assert h.wait_connected()
        for i in range(SCENE_FRAMES + 2):
            h.publish_frame(img, "mono8", k, 20.0 + 0.1 * i)
            assert h.wait_for(lambda n=i: node.frames_out > n, 20.0)
        assert h.wait_for(lambda: any("not the kind of scene" in s.scale_source for s in h.got["status"]), 10.0)
        status = [s for s in h.got["status"] if s.node == "depth" and s.frames_out][-1]
        assert status.scale_source.startswith("auto: none (relative"), status.scale_source
        assert h.wait_for(lambda: any("not the kind of scene" in v.value for d in h.got["diag"] for s in d.status
                                      for v in s.values) or any("not the kind of scene" in s.message
                                                                for d in h.got["diag"] for s in d.status), 5.0)
    finally:
        h.close()
