"""Helpers for tests that use real rclpy (no mocks): publish camera frames, collect outputs."""
from __future__ import annotations

import threading
import time

import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from vode_ros.core.image_codec import encode_image


class Harness:
    """An executor in a background thread hosting the nodes under test and a probe node."""

    def __init__(self, nodes=()):
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry
        from sensor_msgs.msg import CameraInfo, Image
        from tf2_msgs.msg import TFMessage
        from vode_ros_msgs.msg import VodeStatus

        self.Image, self.CameraInfo = Image, CameraInfo
        self.probe = Node("test_probe")
        self.got: dict[str, list] = {k: [] for k in ("depth", "depth_info", "odom", "tf", "tf_static", "diag", "status")}
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        static = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        for key, typ, topic, qos in (("depth", Image, "/depth/image", reliable),
                                     ("depth_info", CameraInfo, "/depth/camera_info", reliable),
                                     ("odom", Odometry, "/odom", reliable), ("tf", TFMessage, "/tf", reliable),
                                     ("tf_static", TFMessage, "/tf_static", static),
                                     ("diag", DiagnosticArray, "/diagnostics", reliable),
                                     ("status", VodeStatus, "/vode/status", reliable)):
            self.probe.create_subscription(typ, topic, lambda m, k=key: self.got[k].append(m), qos)
        self.image_pub = self.probe.create_publisher(Image, "/camera/left/image_raw", reliable)
        self.info_pub = self.probe.create_publisher(CameraInfo, "/camera/left/camera_info", reliable)
        self.executor = MultiThreadedExecutor(num_threads=4)
        self.nodes = list(nodes)
        for n in [self.probe, *self.nodes]:
            self.executor.add_node(n)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def wait_for(self, predicate, timeout: float = 20.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.02)
        return False

    def wait_connected(self, subscribers: int = 1, timeout: float = 20.0) -> bool:
        return self.wait_for(lambda: self.image_pub.get_subscription_count() >= subscribers
                             and self.info_pub.get_subscription_count() >= subscribers, timeout)

    def camera_info(self, k: np.ndarray, width: int, height: int, stamp_s: float, frame: str,
                    d: tuple[float, ...] = (0.0,) * 5):
        msg = self.CameraInfo()
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), int(round((stamp_s % 1) * 1e9))
        msg.header.frame_id = frame
        msg.width, msg.height, msg.distortion_model = width, height, "plumb_bob"
        msg.k = k.reshape(-1).astype(float).tolist()
        msg.d = [float(c) for c in d]
        p = np.zeros((3, 4))
        p[:, :3] = k
        msg.p = p.reshape(-1).tolist()
        return msg

    def publish_frame(self, img: np.ndarray, encoding: str, k: np.ndarray, stamp_s: float,
                      frame: str = "camera_left_optical_frame", info_size: tuple[int, int] | None = None,
                      d: tuple[float, ...] = (0.0,) * 5, info=None) -> None:
        """The image and its CameraInfo (`info` as given, else made from k, info_size and d)."""
        h, w = img.shape[:2]
        iw, ih = info_size or (w, h)
        self.info_pub.publish(info if info is not None else self.camera_info(k, iw, ih, stamp_s, frame, d))
        msg = self.Image()
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), int(round((stamp_s % 1) * 1e9))
        msg.header.frame_id = frame
        fields = encode_image(img, encoding) if encoding in ("mono8", "rgb8", "bgr8", "rgba8", "bgra8", "32FC1") else None
        if fields is None:   # raw bytes for encodings the package refuses (tests of bad input)
            fields = {"encoding": encoding, "height": h, "width": w, "step": img.strides[0],
                      "is_bigendian": 0, "data": img.tobytes()}
        for key, value in fields.items():
            setattr(msg, key, value)
        self.image_pub.publish(msg)

    def publish_right(self, image_pub, info_pub, img: np.ndarray, k: np.ndarray, baseline: float,
                      stamp_s: float) -> None:
        """A mono8 right image of a rectified pair and its CameraInfo (P[0, 3] = -fx * baseline)."""
        h, w = img.shape[:2]
        info = self.camera_info(k, w, h, stamp_s, "camera_right_optical_frame")
        info.p[3] = -k[0, 0] * baseline
        info_pub.publish(info)
        msg = self.Image()
        msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp_s), int(round((stamp_s % 1) * 1e9))
        msg.header.frame_id = "camera_right_optical_frame"
        msg.height, msg.width, msg.encoding, msg.step = h, w, "mono8", w
        msg.data = img.tobytes()
        image_pub.publish(msg)

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(timeout=10.0)      # the spin thread must be out before the nodes are destroyed
        for n in self.nodes:
            n.destroy_node()
        self.probe.destroy_node()


def ensure_rclpy():
    if not rclpy.ok():
        rclpy.init()
