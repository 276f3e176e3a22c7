"""What other ROS tools expect of the outputs, and the ROS libraries vs the package's fallbacks.

depth_image_proc / rtabmap take depth/image with depth/camera_info as they are: 32FC1 metres,
the same size and header, K rescaled to that size (principal point inside the image, P = [K|0]).
"""
from __future__ import annotations

import numpy as np
import pytest
from rclpy.parameter import Parameter
from std_msgs.msg import Header

from vode_ros.core.geometry import scale_intrinsics
from vode_ros.core.kitti import load_sequence, read_image
from vode_ros.nodes import ros_bridges
from vode_ros.nodes.ros_msgs import codec_cloud_msg, codec_image_msg

from ros_helpers import Harness, ensure_rclpy

pytestmark = [pytest.mark.ros]


def test_depth_camera_info_matches_the_depth_image(models_dir, kitti_dir):
    """depth/image + depth/camera_info | 32FC1 metres, identical size and header, K scaled to the depth image
    (principal point inside it, P = [K|0]): usable as-is by depth_image_proc and rtabmap
    """
    ensure_rclpy()
    from vode_ros.nodes.depth_node import DepthNode

    seq = load_sequence(kitti_dir, max_frames=1)
    node = DepthNode(parameter_overrides=[Parameter("model_dir", value=str(models_dir))])
    h = Harness([node])
    try:
        assert h.wait_connected()
        h.publish_frame(read_image(seq.left[0]), "mono8", seq.k, 4000.0)
        assert h.wait_for(lambda: h.got["depth"] and h.got["depth_info"], 30.0)
        depth, info = h.got["depth"][-1], h.got["depth_info"][-1]
        assert depth.encoding == "32FC1" and depth.step == depth.width * 4
        assert (info.width, info.height) == (depth.width, depth.height)
        assert info.header == depth.header
        k = np.array(info.k).reshape(3, 3)
        assert 0 <= k[0, 2] <= depth.width and 0 <= k[1, 2] <= depth.height
        expected = scale_intrinsics(seq.k, seq.image_size, (depth.width, depth.height))
        assert np.allclose(k, expected, rtol=1e-6)
        p = np.array(info.p).reshape(3, 4)
        assert np.allclose(p[:, :3], k) and np.allclose(p[:, 3], 0)
        z = np.frombuffer(bytes(depth.data), np.float32)
        assert np.all(np.isfinite(z)) and 1.0 < float(np.median(z)) < 80.0      # metres on a road scene
    finally:
        h.close()


@pytest.mark.skipif(not ros_bridges.HAVE_CV_BRIDGE,
                    reason="cv_bridge is not installed (not among the ROS 2 PyPI wheels): only the codec path exists")
@pytest.mark.parametrize("encoding", ["32FC1", "bgr8", "mono8"])
def test_cv_bridge_and_the_codec_give_the_same_bytes(encoding):
    """cv_bridge where installed vs the package's codec | the same Image fields and bytes"""
    rng = np.random.default_rng(0)
    arr = (rng.random((12, 20, 3)) * 255).astype(np.uint8) if encoding == "bgr8" else \
        (rng.random((12, 20)) * (255 if encoding == "mono8" else 40)).astype(np.uint8 if encoding == "mono8"
                                                                              else np.float32)
    a, b = ros_bridges.cv_bridge_image(arr, encoding, Header()), codec_image_msg(arr, encoding, Header())
    assert (a.height, a.width, a.step, a.encoding, a.is_bigendian) == (b.height, b.width, b.step, b.encoding,
                                                                      b.is_bigendian)
    assert bytes(a.data) == bytes(b.data)


@pytest.mark.skipif(not ros_bridges.HAVE_SENSOR_MSGS_PY,
                    reason="sensor_msgs_py is not installed (not among the ROS 2 PyPI wheels): only the own builder")
def test_sensor_msgs_py_and_the_builder_give_the_same_cloud():
    """sensor_msgs_py where installed vs the package's PointCloud2 builder | the same fields and bytes"""
    pts = np.random.default_rng(1).random((50, 3)).astype(np.float32)
    a, b = ros_bridges.cloud_xyz32(Header(), pts), codec_cloud_msg(pts, Header())
    assert [(f.name, f.offset, f.datatype) for f in a.fields] == [(f.name, f.offset, f.datatype) for f in b.fields]
    assert (a.point_step, a.row_step, a.width) == (b.point_step, b.row_step, b.width)
    assert bytes(a.data) == bytes(b.data)


def test_a_distorted_image_raw_is_rectified_like_image_proc_would(models_dir, kitti_dir):
    """image_raw with a barrel-distorted CameraInfo (plumb_bob D) | the node remaps it by K, D, R, P: its depth
    matches the depth of the undistorted image (3 % in the outer quarters), where rectify: off on the same raw
    image is 3.5x further off; depth/camera_info describes a pinhole image (D = 0); /diagnostics says the topic is rectified"""
    ensure_rclpy()
    from camera_helpers import calibration, raw_from_rectified

    from vode_ros.nodes.depth_node import DepthNode

    seq = load_sequence(kitti_dir, max_frames=1)
    rect = read_image(seq.left[0])
    d = (-0.40, 0.15, 0.0, 0.0, 0.0)
    raw, _ = raw_from_rectified(rect, calibration(seq.k, seq.image_size, d))
    node = DepthNode(parameter_overrides=[Parameter("model_dir", value=str(models_dir))])
    h = Harness([node])

    def depth_of(img, stamp, dist):
        n = len(h.got["depth"])
        h.publish_frame(img, "mono8", seq.k, stamp, d=dist)
        assert h.wait_for(lambda: len(h.got["depth"]) > n and len(h.got["depth_info"]) > n, 30.0)
        msg = h.got["depth"][-1]
        return np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)

    try:
        assert h.wait_connected()
        pinhole = depth_of(rect, 4100.0, (0.0,) * 5)
        rectified = depth_of(raw, 4100.1, d)
        info = h.got["depth_info"][-1]
        assert list(info.d) == [0.0] * 5 and np.allclose(np.array(info.r).reshape(3, 3), np.eye(3))
        assert h.wait_for(lambda: any(kv.key == "rectify /camera/left/image_raw" and kv.value.startswith("on (plumb_bob")
                                      for m in h.got["diag"] for s in m.status for kv in s.values), 5.0)
        assert node.set_parameters([Parameter("rectify", value="off")])[0].successful
        as_is = depth_of(raw, 4100.2, d)
        # Compared where distortion moves pixels most: the outer quarters left and right.
        outer = np.zeros(pinhole.shape, bool)
        outer[8:-8, 8:pinhole.shape[1] // 4] = outer[8:-8, -pinhole.shape[1] // 4:-8] = True

        def rel(a):
            return float(np.mean(np.abs(a[outer] - pinhole[outer]) / pinhole[outer]))
        # measured: 0.033 rectified (two bilinear resamplings blur the image a little) vs 0.114 as is
        assert rel(rectified) < 0.05 and rel(as_is) > 2.5 * rel(rectified)
    finally:
        h.close()


def test_a_raw_stereo_pair_is_rectified_by_r_and_p_before_stereo_scale(models_dir, kitti_dir):
    """stereo mode, raw left and right images (barrel distortion, each camera rotated off the rectified frame
    by its R, as a stereo calibration publishes) | both are remapped by their own K, D, R, P, and the stereo
    scale matches the one of the rectified pair within 3 %; rectify: off on the same pair is further off
    """
    ensure_rclpy()
    import cv2
    from camera_helpers import calibration, raw_from_rectified
    from sensor_msgs.msg import CameraInfo, Image
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from vode_ros.nodes.depth_node import DepthNode

    seq = load_sequence(kitti_dir, max_frames=1)
    rect = {"left": read_image(seq.left[0]), "right": read_image(seq.right[0])}
    fx, size = seq.k[0, 0], seq.image_size
    p = {"left": np.hstack([seq.k, np.zeros((3, 1))]),
         "right": np.hstack([seq.k, [[-fx * seq.baseline], [0.0], [0.0]]])}
    r = {"left": cv2.Rodrigues(np.array([0.004, 0.012, 0.003]))[0],
         "right": cv2.Rodrigues(np.array([-0.003, 0.010, -0.004]))[0]}
    d = (-0.25, 0.08, 0.0, 0.0, 0.0)
    raw = {side: raw_from_rectified(rect[side], calibration(seq.k, size, d, r=r[side], p=p[side]))[0]
           for side in rect}
    node = DepthNode(parameter_overrides=[Parameter("model_dir", value=str(models_dir)), Parameter("mode", value="stereo"),
                                          Parameter("scale_mode", value="stereo"), Parameter("scale_smoothing", value=0.0)])
    h = Harness([node])
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    right_pub = h.probe.create_publisher(Image, "/camera/right/image_raw", reliable)
    right_info_pub = h.probe.create_publisher(CameraInfo, "/camera/right/camera_info", reliable)

    def info_of(side, stamp, dist, rot):
        info = h.camera_info(seq.k, *size, stamp, f"camera_{side}_optical_frame", dist)
        info.p = p[side].reshape(-1).tolist()
        info.r = rot.reshape(-1).tolist()
        return info

    def scale_of(images, stamp, dist, rot):
        n = node.frames_out
        right_info_pub.publish(info_of("right", stamp, dist, rot["right"]))
        img = images["right"]
        msg = Image(height=img.shape[0], width=img.shape[1], encoding="mono8", step=img.shape[1], data=img.tobytes())
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int(round((stamp % 1) * 1e9))
        right_pub.publish(msg)
        h.publish_frame(images["left"], "mono8", seq.k, stamp, info=info_of("left", stamp, dist, rot["left"]))
        assert h.wait_for(lambda: node.frames_out > n, 30.0), node.accounts.snapshot()
        return node.scaler.scale

    try:
        assert h.wait_connected() and h.wait_for(lambda: right_pub.get_subscription_count() >= 1)
        identity = {"left": np.eye(3), "right": np.eye(3)}
        reference = scale_of(rect, 4200.0, (0.0,) * 5, identity)
        rectified = scale_of(raw, 4200.1, d, r)
        assert node.set_parameters([Parameter("rectify", value="off")])[0].successful
        as_is = scale_of(raw, 4200.2, d, r)
        # measured: +1.4 % rectified, +10 % as is (SGBM on an unrectified pair)
        assert abs(rectified / reference - 1) < 0.03
        assert abs(as_is / reference - 1) > 2 * abs(rectified / reference - 1)
    finally:
        h.close()


def test_a_binned_camera_is_taken_at_its_published_size(models_dir, kitti_dir):
    """CameraInfo of the full sensor with binning 2 (image_geometry's convention) and a half-size image | the node
    takes the image's own camera (K halved): the same depth as with a CameraInfo written for the half-size
    image; a full-size image under that CameraInfo is a size mismatch (rejected, the sizes named)"""
    ensure_rclpy()
    import cv2

    from vode_ros.nodes.depth_node import DepthNode

    seq = load_sequence(kitti_dir, max_frames=1)
    full = read_image(seq.left[0])
    w, h = seq.image_size[0] // 2, seq.image_size[1] // 2
    half = cv2.resize(full, (w, h), interpolation=cv2.INTER_AREA)
    k_half = seq.k.copy()
    k_half[:2] /= 2
    node = DepthNode(parameter_overrides=[Parameter("model_dir", value=str(models_dir))])
    h_ = Harness([node])

    def depth_of(stamp, info):
        n = len(h_.got["depth"])
        h_.publish_frame(half, "mono8", k_half, stamp, info=info)
        assert h_.wait_for(lambda: len(h_.got["depth"]) > n, 30.0)
        msg = h_.got["depth"][-1]
        return np.frombuffer(bytes(msg.data), np.float32).reshape(msg.height, msg.width)

    try:
        assert h_.wait_connected()
        own = depth_of(4300.0, h_.camera_info(k_half, w, h, 4300.0, "camera_left_optical_frame"))
        binned_info = h_.camera_info(seq.k, *seq.image_size, 4300.1, "camera_left_optical_frame")
        binned_info.binning_x = binned_info.binning_y = 2
        binned = depth_of(4300.1, binned_info)
        np.testing.assert_allclose(binned, own, rtol=1e-5)
        before = node.accounts.snapshot().rejected.get("size_mismatch", 0)
        h_.publish_frame(full, "mono8", seq.k, 4300.2, info=binned_info)
        assert h_.wait_for(lambda: node.accounts.snapshot().rejected.get("size_mismatch", 0) > before, 20.0)
        assert f"CameraInfo says {w}x{h}" in node._problems["size_mismatch"][0]
    finally:
        h_.close()
