"""The ROS libraries where they are installed, the package's own code where they are not.

cv_bridge, sensor_msgs_py and tf2_ros come with a ROS 2 install but not with the PyPI wheels.
Where importable they build the outgoing images, point clouds and TF (so that the messages are
exactly what other ROS tools produce); otherwise the package's codec (core.image_codec), its
PointCloud2 builder and plain /tf, /tf_static publishers do. Incoming images are always decoded
by core.image_codec: its checks name the problem of a bad image (cv_bridge raises on them).
"""
from __future__ import annotations

import importlib.util
from collections.abc import Sequence

import numpy as np


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


HAVE_CV_BRIDGE = _importable("cv_bridge")
HAVE_SENSOR_MSGS_PY = _importable("sensor_msgs_py")
HAVE_TF2_ROS = _importable("tf2_ros")
_bridge = None


def cv_bridge_image(arr: np.ndarray, encoding: str, header):
    """sensor_msgs/Image by cv_bridge (only where HAVE_CV_BRIDGE)."""
    global _bridge
    if _bridge is None:
        from cv_bridge import CvBridge

        _bridge = CvBridge()
    msg = _bridge.cv2_to_imgmsg(np.ascontiguousarray(arr), encoding=encoding)
    msg.header = header
    return msg


def cloud_xyz32(header, points: np.ndarray):
    """PointCloud2 of (N, 3) float32 points by sensor_msgs_py (only where HAVE_SENSOR_MSGS_PY)."""
    from sensor_msgs_py import point_cloud2

    return point_cloud2.create_cloud_xyz32(header, points.tolist())


class TfOut:
    """/tf and /tf_static of a node: tf2_ros broadcasters where installed, else plain publishers with
    the same QoS (/tf_static transient local, so late listeners get the mount)."""

    def __init__(self, node, use_tf2_ros: bool | None = None):
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        from tf2_msgs.msg import TFMessage

        self._message = TFMessage
        self.via_tf2_ros = HAVE_TF2_ROS if use_tf2_ros is None else use_tf2_ros
        if self.via_tf2_ros:
            from tf2_ros import StaticTransformBroadcaster, TransformBroadcaster

            self._dynamic, self._static = TransformBroadcaster(node), StaticTransformBroadcaster(node)
            return
        static_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._tf_pub = node.create_publisher(TFMessage, "/tf", 100)
        self._static_pub = node.create_publisher(TFMessage, "/tf_static", static_qos)

    def send(self, transforms: Sequence) -> None:
        if self.via_tf2_ros:
            self._dynamic.sendTransform(list(transforms))
        else:
            self._tf_pub.publish(self._message(transforms=list(transforms)))

    def send_static(self, transforms: Sequence) -> None:
        if self.via_tf2_ros:
            self._static.sendTransform(list(transforms))
        else:
            self._static_pub.publish(self._message(transforms=list(transforms)))
