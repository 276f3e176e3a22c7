"""Run-time features with real rclpy: stereo scale, compressed input, colour/points outputs,
model reload without restart, and bad input that must not stop a node."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, PointCloud2
from std_srvs.srv import Trigger

from vode_ros.core.kitti import load_sequence, read_image

from ros_helpers import Harness, ensure_rclpy

pytestmark = [pytest.mark.slow, pytest.mark.ros]

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)


def _stamp(msg, t):
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int(round((t % 1) * 1e9))


@pytest.fixture(scope="module")
def seq(kitti_dir):
    return load_sequence(kitti_dir, max_frames=4)


def _depth_node(models_dir, **params):
    from vode_ros.nodes.depth_node import DepthNode

    overrides = [Parameter("model_dir", value=str(models_dir))] + [Parameter(k, value=v) for k, v in params.items()]
    return DepthNode(parameter_overrides=overrides)


def test_stereo_mode_scales_depth_from_the_baseline(models_dir, seq):
    ensure_rclpy()
    node = _depth_node(models_dir, mode="stereo", scale_mode="stereo", scale_smoothing=0.0)
    h = Harness([node])
    right_pub = h.probe.create_publisher(Image, "/camera/right/image_raw", RELIABLE)
    right_info_pub = h.probe.create_publisher(type(h.camera_info(seq.k, 1, 1, 0, "x")), "/camera/right/camera_info", RELIABLE)
    try:
        assert h.wait_connected() and h.wait_for(lambda: right_pub.get_subscription_count() > 0)
        for i in range(3):
            t = 50.0 + 0.1 * i
            info = h.camera_info(seq.k, *seq.image_size, t, "camera_right_optical_frame")
            info.p[3] = -seq.k[0, 0] * seq.baseline
            right_info_pub.publish(info)
            right = h.Image()
            _stamp(right, t)
            right.header.frame_id = "camera_right_optical_frame"
            img = read_image(seq.right[i])
            right.height, right.width, right.encoding, right.step = img.shape[0], img.shape[1], "mono8", img.shape[1]
            right.data = img.tobytes()
            right_pub.publish(right)
            h.publish_frame(read_image(seq.left[i]), "mono8", seq.k, t)
            h.wait_for(lambda n=i: len(h.got["depth"]) > n, 10.0)
        assert len(h.got["depth"]) == 3
        assert h.wait_for(lambda: sum(s.node == "depth" for s in h.got["status"]) >= 3, 10.0)   # after the depth
        status = [s for s in h.got["status"] if s.node == "depth"][-1]
        assert status.scale_source == "stereo baseline"
        assert 0.2 < status.scale < 5.0 and status.scale != 1.0
        # An unpaired right image (no left partner) is counted, not processed.
        right.header.stamp.sec = 99
        right_pub.publish(right)
        h.publish_frame(read_image(seq.left[0]), "mono8", seq.k, 120.0)
        assert h.wait_for(lambda: node.inputs.pairer.unpaired >= 1, 5.0)
    finally:
        h.close()


def test_stereo_scale_without_stereo_mode_is_a_startup_error(models_dir):
    ensure_rclpy()
    with pytest.raises(ValueError, match="needs mode:=stereo"):
        _depth_node(models_dir, scale_mode="stereo")


def test_compressed_input_colour_and_points(models_dir, seq):
    ensure_rclpy()
    node = _depth_node(models_dir, image_transport="compressed", publish_points=True, points_stride=8)
    h = Harness([node])
    comp_pub = h.probe.create_publisher(CompressedImage, "/camera/left/image_raw/compressed", RELIABLE)
    colors, points = [], []
    h.probe.create_subscription(Image, "/depth/color", colors.append, RELIABLE)
    h.probe.create_subscription(PointCloud2, "/depth/points", points.append, RELIABLE)
    try:
        assert h.wait_for(lambda: comp_pub.get_subscription_count() > 0 and h.info_pub.get_subscription_count() > 0)
        h.info_pub.publish(h.camera_info(seq.k, *seq.image_size, 10.0, "camera_left_optical_frame"))
        for fmt, ext in (("jpeg", ".jpg"), ("png", ".png")):
            msg = CompressedImage(format=fmt)
            _stamp(msg, 10.0)
            msg.header.frame_id = "camera_left_optical_frame"
            msg.data = cv2.imencode(ext, cv2.cvtColor(read_image(seq.left[0]), cv2.COLOR_GRAY2BGR))[1].tobytes()
            comp_pub.publish(msg)
            n = len(h.got["depth"])
            assert h.wait_for(lambda: len(h.got["depth"]) > n, 10.0)
        assert h.wait_for(lambda: colors and points, 5.0)
        meta = node.model.meta
        assert colors[-1].encoding == "bgr8" and (colors[-1].width, colors[-1].height) == (meta.width, meta.height)
        cloud = np.frombuffer(bytes(points[-1].data), np.float32).reshape(-1, 3)
        assert len(cloud) > 100 and np.all(cloud[:, 2] > 0)
        # Corrupt compressed data: rejected, node alive.
        bad = CompressedImage(format="jpeg", data=b"\xff\xd8garbage")
        comp_pub.publish(bad)
        assert h.wait_for(lambda: node.frames_rejected >= 1, 5.0)
    finally:
        h.close()


def test_reload_model_service_and_bad_input(models_dir, seq, tmp_path):
    ensure_rclpy()
    import shutil

    model_dir = tmp_path / "m"
    shutil.copytree(models_dir, model_dir)
    node = _depth_node(model_dir)
    h = Harness([node])
    client = h.probe.create_client(Trigger, "/depth_node/reload_model")
    try:
        assert h.wait_connected() and client.wait_for_service(timeout_sec=10)
        # Truncated image data: rejected with a clear message.
        msg = h.Image(height=370, width=1226, encoding="mono8", step=1226, data=b"\0" * 1000)
        h.info_pub.publish(h.camera_info(seq.k, *seq.image_size, 1.0, "camera_left_optical_frame"))
        h.wait_for(lambda: node.inputs.camera_info is not None, 5.0)
        h.image_pub.publish(msg)
        assert h.wait_for(lambda: any("truncated data" in s.message and s.level == DiagnosticStatus.WARN
                                      for d in h.got["diag"] for s in d.status), 5.0)
        # Reload: a corrupt file is refused and the old model keeps running ...
        old = node.model
        (model_dir / "depth.onnx").write_bytes(b"corrupt")
        res = client.call(Trigger.Request(), timeout_sec=20)
        assert res is not None and not res.success and "not a loadable ONNX model" in res.message
        assert node.model is old
        # ... and a good one is swapped in.
        shutil.copy(models_dir / "depth.onnx", model_dir / "depth.onnx")
        res = client.call(Trigger.Request(), timeout_sec=20)
        assert res.success and node.model is not old
        h.publish_frame(read_image(seq.left[0]), "mono8", seq.k, 2.0)
        assert h.wait_for(lambda: len(h.got["depth"]) >= 1, 10.0)
    finally:
        h.close()


def test_odometry_with_direct_pose_refinement(models_dir, seq):
    """refine_pose: the odometry node runs depth.onnx too and refines the net's motion (LKVO solver)."""
    ensure_rclpy()
    from vode_ros.nodes.odometry_node import OdometryNode

    node = OdometryNode(parameter_overrides=[Parameter("model_dir", value=str(models_dir)),
                                             Parameter("refine_pose", value=True), Parameter("refine_iters", value=3)])
    h = Harness([node])
    try:
        assert h.wait_connected()
        for i in range(3):
            h.publish_frame(read_image(seq.left[i]), "mono8", seq.k, 70.0 + 0.1 * i)
            h.wait_for(lambda n=i: len(h.got["odom"]) > n, 15.0)
        assert len(h.got["odom"]) == 3 and node.frames_rejected == 0
        x = h.got["odom"][-1].pose.pose.position.x
        assert np.isfinite(x) and x > 0.5      # the car drives forward along base_link x
    finally:
        h.close()


def test_odom_frame_equal_to_base_frame_is_refused(models_dir):
    """`odom_frame` set equal to `base_frame` (`ros2 param set /odometry_node odom_frame base_link`, or at
    start-up) | refused with the reason ("odom_frame and base_frame are both 'base_link'"), live and at
    start-up; the node keeps its frames (before: accepted, /odom with frame_id = child_frame_id)"""
    ensure_rclpy()
    from vode_ros.nodes.odometry_node import OdometryNode

    node = OdometryNode(parameter_overrides=[Parameter("model_dir", value=str(models_dir))])
    try:
        (result,) = node.set_parameters([Parameter("odom_frame", value="base_link")])
        assert not result.successful and "odom_frame and base_frame are both 'base_link'" in result.reason
        (result,) = node.set_parameters([Parameter("base_frame", value="odom")])
        assert not result.successful and "different names" in result.reason
        assert (node.odom_frame, node.base_frame) == ("odom", "base_link")
        assert node.set_parameters([Parameter("odom_frame", value="odom2")])[0].successful
    finally:
        node.destroy_node()
    with pytest.raises(ValueError, match="both 'base_link'"):
        OdometryNode(parameter_overrides=[Parameter("model_dir", value=str(models_dir)),
                                          Parameter("odom_frame", value="base_link")])
