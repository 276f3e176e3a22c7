"""Depth node: camera image + CameraInfo -> depth image (32FC1, metres, REP-118).

Publishes, with the input image's header (same stamp and optical frame):
  depth/image        sensor_msgs/Image 32FC1, metres, at the network's resolution
  depth/camera_info  the input CameraInfo rescaled to that resolution (as image_proc resize)
  vode/status        vode_ros_msgs/VodeStatus per frame; /diagnostics at 1 Hz
"""
from __future__ import annotations

from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from vode_ros.inference import DepthEstimator
from vode_ros.nodes.base import Frame, VodeNodeBase, run_single
from vode_ros.nodes.ros_msgs import image_to_msg, scaled_camera_info


class DepthNode(VodeNodeBase):
    role = "depth"

    def __init__(self, **kwargs):
        super().__init__("depth_node", **kwargs)
        self.estimator = DepthEstimator(self.model)
        # Reliable depth 5: consumers (recorders, mapping) should not lose depth frames.
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.depth_pub = self.create_publisher(Image, "depth/image", qos)
        self.info_pub = self.create_publisher(CameraInfo, "depth/camera_info", qos)

    def process(self, frame: Frame) -> None:
        net_in = self.model.preprocess(frame.image, frame.encoding)
        k_net = self.model.intrinsics_for_net(frame.k, (frame.image.shape[1], frame.image.shape[0]))
        depth = self.estimator(net_in, fx=float(k_net[0, 0]))
        self.depth_pub.publish(image_to_msg(depth, "32FC1", frame.header))
        h, w = depth.shape
        self.info_pub.publish(scaled_camera_info(self.camera_info, k_net, w, h, frame.header))


def main(args=None) -> int:
    return run_single(DepthNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
