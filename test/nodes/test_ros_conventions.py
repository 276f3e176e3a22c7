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
