"""Odometry node: consecutive camera images -> nav_msgs/Odometry and TF (REP-105).

  odom               nav_msgs/Odometry, odom -> base_link, with covariance (reliable)
  /tf                odom -> base_link
  /tf_static         base_link -> camera optical frame (the mount, from parameters)
  vode/status        vode_ros_msgs/VodeStatus per frame; /diagnostics at 1 Hz

The pose net gives the current camera in the previous camera's optical frame; the mount
turns that into base_link motion, which is integrated from the first frame (odom origin).
A stamp older than the last one (a bag looping) resets the trajectory with a log line.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from nav_msgs.msg import Odometry
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from vode_ros.core.frames import mount_transform
from vode_ros.runtime.direct_refine import gray_from_net_input, refine_pose
from vode_ros.runtime.inference import DepthEstimator, OnnxModel, PoseEstimator, default_model_dir
from vode_ros.nodes.base import Frame, VodeNodeBase, run_single
from vode_ros.nodes.ros_msgs import odometry_msg, stamp_to_sec, transform_msg
from vode_ros.runtime.odometry import OdometryIntegrator, diagonal_covariance
from vode_ros_msgs.msg import VodeStatus


class OdometryNode(VodeNodeBase):
    role = "pose"

    def __init__(self, **kwargs):
        super().__init__("odometry_node", **kwargs)
        self._declare("odom_frame", "odom", "odometry frame (REP-105)")
        self._declare("base_frame", "base_link", "robot body frame (REP-105)")
        self._declare("camera_frame", "camera_left_optical_frame", "optical frame of the input camera (REP-103)")
        self._declare("mount_xyz", [0.0, 0.0, 1.65], "camera position in base_frame, metres")
        self._declare("mount_rpy", [0.0, 0.0, 0.0], "camera_link orientation in base_frame, radians")
        self._declare("publish_tf", True, "broadcast odom -> base_link on /tf")
        self._declare("pose_std_xyz", 0.1, "position standard deviation for the covariance, m")
        self._declare("pose_std_rpy", 0.02, "orientation standard deviation for the covariance, rad")
        self._declare("scale", 1.0, "fixed factor on the net's translations (scale_mode model/none)")
        self._declare("scale_mode", "model", "model | none | from_depth (follow the depth node's scale on vode/status)")
        self._declare("refine_pose", False, "refine the pose net's motion by direct photometric alignment "
                      "(vode_ros.runtime.direct_refine, LKVO/DDVO); runs depth.onnx on every frame too")
        self._declare("refine_iters", 10, "Gauss-Newton steps per pyramid level (refine_pose)")
        p = self.get_parameter
        self.odom_frame, self.base_frame = p("odom_frame").value, p("base_frame").value
        self.camera_frame = p("camera_frame").value
        t_base_cam = mount_transform(list(p("mount_xyz").value), list(p("mount_rpy").value))
        self.integrator = OdometryIntegrator(t_base_cam, scale=float(p("scale").value))
        self.pose_cov = diagonal_covariance(p("pose_std_xyz").value, p("pose_std_rpy").value)
        self.twist_cov = diagonal_covariance(p("pose_std_xyz").value * 10, p("pose_std_rpy").value * 10)
        self.scale_mode = p("scale_mode").value
        if self.scale_mode not in ("model", "none", "from_depth"):
            raise ValueError(f"scale_mode '{self.scale_mode}' unknown for the odometry node; use model, none or from_depth")
        self.depth_scale_source = "waiting for the depth node's scale"
        if self.scale_mode == "from_depth":
            self.create_subscription(VodeStatus, "vode/status", self._on_status, 10)
        self.estimator = PoseEstimator(self.model)
        self.previous: np.ndarray | None = None
        self.refine = bool(p("refine_pose").value)
        self.previous_depth: np.ndarray | None = None
        self.depth_estimator = self._load_depth() if self.refine else None
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.odom_pub = self.create_publisher(Odometry, "odom", reliable)
        self.tf_pub = self.create_publisher(TFMessage, "/tf", 100)
        static_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.tf_static_pub = self.create_publisher(TFMessage, "/tf_static", static_qos)
        self.tf_static_pub.publish(TFMessage(transforms=[
            transform_msg(t_base_cam, self.base_frame, self.camera_frame, self.get_clock().now().to_msg())]))
        self._warned_frame = False

    def _on_status(self, msg: VodeStatus) -> None:
        if msg.node == "depth" and msg.scale > 0:
            self.integrator.scale = float(msg.scale)
            self.depth_scale_source = f"depth node: {msg.scale_source}"

    def _load_depth(self) -> DepthEstimator:
        """depth.onnx next to pose.onnx: the previous frame's depth for refine_pose."""
        p = self.get_parameter
        model = OnnxModel(Path(p("model_dir").value or default_model_dir()) / "depth.onnx", list(p("providers").value),
                          int(p("threads").value), expected_kind="depth")
        pm = self.model.meta
        if (model.meta.width, model.meta.height, model.meta.color) != (pm.width, pm.height, pm.color):
            raise ValueError(f"refine_pose: {model.path} and {self.model.path} differ in input size or colour; "
                             "use a depth.onnx and pose.onnx exported from one checkpoint")
        return DepthEstimator(model)

    def on_model_swapped(self) -> None:
        self.estimator = PoseEstimator(self.model)
        self.previous = None    # the new net may normalise differently: restart the pair
        self.previous_depth = None
        if self.refine:
            self.depth_estimator = self._load_depth()

    def scale_info(self) -> tuple[str, float]:
        if self.scale_mode == "from_depth":
            return self.depth_scale_source, self.integrator.scale
        return super().scale_info()[0] if self.scale_mode == "model" else "none (relative)", self.integrator.scale

    def process(self, frame: Frame) -> None:
        stamp = stamp_to_sec(frame.header.stamp)
        if frame.header.frame_id and frame.header.frame_id != self.camera_frame and not self._warned_frame:
            self._warned_frame = True
            self.get_logger().warning(
                f"images are in frame '{frame.header.frame_id}' but camera_frame is '{self.camera_frame}': "
                "set the camera_frame parameter so TF connects them")
        net_in = self.model.preprocess(frame.image, frame.encoding)
        if self.integrator.time_went_backwards(stamp):
            self.get_logger().warning(
                f"time jumped back ({self.integrator.last_stamp:.3f} -> {stamp:.3f} s; bag loop?): odometry reset")
            self.integrator.reset()
            self.previous = None
        if self.previous is None:
            self.integrator.start(stamp)
            self.estimator.start(net_in)      # recurrent pose models: reset the state, feed frame 0
            state_pose, lin, ang = self.integrator.pose, np.zeros(3), np.zeros(3)
        else:
            motion = self.estimator(net_in, self.previous)
            if self.refine and self.previous_depth is not None:
                m = self.model.meta
                k_net = self.model.intrinsics_for_net(frame.k, (frame.image.shape[1], frame.image.shape[0]))
                motion, _ = refine_pose(gray_from_net_input(self.previous, m.mean, m.std),
                                        gray_from_net_input(net_in, m.mean, m.std), self.previous_depth, k_net,
                                        motion, iters=int(self.get_parameter("refine_iters").value))
            state = self.integrator.update(stamp, motion)
            state_pose, lin, ang = state.pose, state.twist_linear, state.twist_angular
        if self.refine:
            dm = self.depth_estimator.model
            same = (dm.meta.mean, dm.meta.std) == (self.model.meta.mean, self.model.meta.std)
            depth_in = net_in if same else dm.preprocess(frame.image, frame.encoding)
            self.previous_depth = self.depth_estimator(depth_in)    # no fx: the units the pose net was trained in
        self.previous = net_in
        self.odom_pub.publish(odometry_msg(state_pose, lin, ang, frame.header.stamp, self.odom_frame,
                                           self.base_frame, self.pose_cov, self.twist_cov))
        if self.get_parameter("publish_tf").value:
            self.tf_pub.publish(TFMessage(transforms=[
                transform_msg(state_pose, self.odom_frame, self.base_frame, frame.header.stamp)]))


def main(args=None) -> int:
    return run_single(OdometryNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
