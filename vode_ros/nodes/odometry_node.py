"""Odometry node: consecutive camera images -> nav_msgs/Odometry and TF (REP-105).

  odom               nav_msgs/Odometry, odom -> base_link, with covariance (reliable)
  /tf                odom -> base_link
  /tf_static         base_link -> camera optical frame (the mount, from parameters)
  vode/status        vode_ros_msgs/VodeStatus per frame; /diagnostics at 1 Hz

Pose sources (parameter pose_source; runtime.pose, the same code as `vode eval pose`):
  net        the pose net's motion alone (no depth needed);
  geometric  corners tracked into the current image, lifted with the previous frame's depth, PnP;
  hybrid     geometric guided by the pose net, the net where too few inliers remain (default).
The geometry's depth (geometry_depth): in mode stereo SGBM of the rectified pair at half
resolution; otherwise the depth node's depth/image (metric), paired by exact stamp (or handed over
directly when both nodes share a process, `vode run`). Only mode stereo with stereo depth uses the
right image: in every other case a silent right camera never stalls this node.

The per-frame work is runtime.odometry_pipeline.OdometryPipeline (the same as `vode eval pose`):
this node turns messages and parameters into its inputs and its OdometryStep into messages. The
motion (current camera in the previous camera's optical frame) goes through the mount into
base_link and is integrated from the first frame (odom origin); its covariance from the estimator
goes with it (twist covariance in base_link, pose covariance accumulated along the trajectory).
A stamp older than the last one (a bag looping) resets the trajectory with a log line; a forward
gap is bridged at the last velocity or skipped (docs/odometry.md).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from nav_msgs.msg import Odometry

from vode_ros.core.frames import mount_transform
from vode_ros.nodes.base import FrameRejected, VodeNodeBase
from vode_ros.nodes.camera_input import Frame
from vode_ros.nodes.pose_params import PoseSourceParams
from vode_ros.nodes.ros_bridges import TfOut
from vode_ros.nodes.ros_msgs import odometry_msg, stamp_to_ns, transform_msg
from vode_ros.nodes.shutdown import run_single
from vode_ros.runtime.inference import OnnxModel
from vode_ros.runtime.odometry import diagonal_covariance
from vode_ros.runtime.odometry_pipeline import OdometryPipeline, OdometrySettings, StampRejected
from vode_ros.runtime.scale import RELATIVE
from vode_ros.runtime.frame_share import FrameShare
from vode_ros_msgs.msg import VodeStatus


def _frame_problem(name: str) -> str | None:
    if not name.strip() or name.startswith("/") or " " in name:
        return "a TF frame name is not empty, has no spaces and does not start with '/' (REP-105)"
    return None


def _finite_within(limit: float):
    def check(values) -> str | None:
        return None if all(abs(v) <= limit for v in values) else f"every value must be within +-{limit:g}"
    return check


class OdometryNode(VodeNodeBase):
    role = "pose"
    uses_right = False    # the pose net needs only the left image: a silent right camera never stalls it

    def __init__(self, depth_cache=None, frame_share: FrameShare | None = None, **kwargs):
        # depth_cache (runtime.pose.depth_input.DepthCache): filled directly by a depth node in the
        # same process (vode run); None: from depth/image. frame_share: the SGBM maps of the pairs,
        # shared with a depth node in the same process (one match per pair); None: its own.
        self.shared_depth = depth_cache
        self.frame_share = frame_share or FrameShare()
        super().__init__("odometry_node", **kwargs)

    def declare(self) -> None:
        self._declare("odom_frame", "odom", "odometry frame (REP-105)", check=_frame_problem)
        self._declare("base_frame", "base_link", "robot body frame (REP-105)", check=_frame_problem)
        self._declare("camera_frame", "camera_left_optical_frame", "optical frame of the input camera (REP-103)",
                      check=_frame_problem)
        self._declare("mount_xyz", [0.0, 0.0, 1.65], "camera position in base_frame, metres", length=3,
                      check=_finite_within(100.0))
        self._declare("mount_rpy", [0.0, 0.0, 0.0], "camera_link orientation in base_frame, radians", length=3,
                      check=_finite_within(2 * np.pi))
        self._declare("publish_tf", True, "broadcast odom -> base_link on /tf")
        self._declare("pose_std_xyz", 0.1, "per-frame position standard deviation of the pose net's motion (the "
                      "covariance of pose_source net and of fallback frames), m", low=1e-6, high=100.0)
        self._declare("pose_std_rpy", 0.02, "per-frame orientation standard deviation of the pose net's motion, rad",
                      low=1e-6, high=10.0)
        self._declare("scale", 1.0, "fixed factor on the net's translations (scale_mode model/none), > 0",
                      low=1e-6, high=1e6)
        self._declare("scale_mode", "model", "model | none | from_depth (follow the depth node's scale on vode/status)",
                      choices=("model", "none", "from_depth"))
        self._declare("domain", "", "what the camera sees, e.g. driving or indoor ('' = not said): off the pose "
                      "net's training domain (or field of view) hybrid takes only its rotation, not its translation")
        self._declare("refine_pose", False, "refine the pose net's motion by direct photometric alignment "
                      "(vode_ros.runtime.direct_refine, LKVO/DDVO); runs depth.onnx on every frame too")
        self._declare("refine_iters", 10, "Gauss-Newton steps per pyramid level (refine_pose)", low=1, high=100)
        self._declare("max_frame_gap", 1.0, "a larger forward jump of the stamps (camera paused, stamps from 0) "
                      "is a gap: the frame pair restarts there, s", low=0.01, high=3600.0)
        self._declare("max_bridge_gap", 3.0, "a gap (over max_frame_gap) up to this long is bridged at the last "
                      "velocity with an inflated covariance; a longer one is not integrated (0 = never bridge), s",
                      low=0.0, high=3600.0)
        PoseSourceParams.declare(self)                 # pose_source, geometry_depth, estimator tuning

    def build(self) -> None:
        self.pose_params = PoseSourceParams(self)
        p = self.params.value
        self.odom_frame, self.base_frame, self.camera_frame = p("odom_frame"), p("base_frame"), p("camera_frame")
        self.t_base_cam = mount_transform(list(p("mount_xyz")), list(p("mount_rpy")))
        self._set_covariance({})
        self.scale_mode = p("scale_mode")
        self.depth_scale_source = "waiting for the depth node's scale"
        self._status_sub = None
        if self.scale_mode == "from_depth":
            self._status_sub = self.create_subscription(VodeStatus, "vode/status", self._on_status, 10)
        refine = bool(p("refine_pose"))
        # The scale multiplies the pose net's translations before the estimator (a geometric
        # motion is already in the depth's metres): the integration itself adds none.
        settings = OdometrySettings(self.pose_params.config({}), self.pose_params.geometry, self.t_base_cam,
                                    net_scale=float(p("scale")), refine_net=refine,
                                    refine_iters=int(p("refine_iters")), max_frame_gap=float(p("max_frame_gap")),
                                    max_bridge_gap=float(p("max_bridge_gap")), depth_wait_s=float(p("depth_wait")),
                                    domain=str(p("domain")))
        self.pipeline = OdometryPipeline(self.model, settings, self.pose_params.cache, shared=self.frame_share,
                                         depth_model=self._load_depth() if refine else None)
        self.pose_params.log_choice()
        reliable = self.output_qos(10)
        self.odom_pub = self.create_publisher(Odometry, "odom", reliable)
        self.tf_out = TfOut(self)     # tf2_ros broadcasters where installed, else plain /tf, /tf_static
        self._publish_mount()
        self._warned_frame = False
        self.params.on_change(["odom_frame", "base_frame", "camera_frame", "mount_xyz", "mount_rpy"], self._set_frames)
        self.params.on_change(["pose_std_xyz", "pose_std_rpy"], self._set_covariance)
        self.params.on_change(["scale", "scale_mode"], self._set_scale)
        self.params.on_change(["refine_pose"], self._set_refine)
        self.params.on_change(["refine_iters", "max_frame_gap", "max_bridge_gap", "domain"], self._set_settings)

    # -- live parameter changes (checked values; called from the parameter callback) ------
    def _publish_mount(self) -> None:
        self.tf_out.send_static([
            transform_msg(self.t_base_cam, self.base_frame, self.camera_frame, self.get_clock().now().to_msg())])

    def _set_frames(self, values) -> None:
        p = {n: values.get(n, self.params.value(n)) for n in ("odom_frame", "base_frame", "camera_frame",
                                                               "mount_xyz", "mount_rpy")}
        t_base_cam = mount_transform(list(p["mount_xyz"]), list(p["mount_rpy"]))
        with self.model_lock:       # not in the middle of a frame
            self.odom_frame, self.base_frame, self.camera_frame = p["odom_frame"], p["base_frame"], p["camera_frame"]
            self.t_base_cam = t_base_cam
            self.pipeline.set_mount(t_base_cam)
            self._warned_frame = False
        self._publish_mount()

    def _set_covariance(self, values) -> None:
        xyz = float(values.get("pose_std_xyz", self.params.value("pose_std_xyz")))
        rpy = float(values.get("pose_std_rpy", self.params.value("pose_std_rpy")))
        # Published until the first motion carries the estimator's covariance.
        self.pose_cov = diagonal_covariance(xyz, rpy)
        self.twist_cov = diagonal_covariance(xyz * 10, rpy * 10)

    def _set_scale(self, values) -> None:
        mode = values.get("scale_mode", self.scale_mode)
        if mode == "from_depth" and self._status_sub is None:
            self.depth_scale_source = "waiting for the depth node's scale"
            self._status_sub = self.create_subscription(VodeStatus, "vode/status", self._on_status, 10)
        elif mode != "from_depth" and self._status_sub is not None:
            self.destroy_subscription(self._status_sub)
            self._status_sub = None
        self.scale_mode = mode
        if mode != "from_depth":
            self.pipeline.settings.net_scale = float(values.get("scale", self.params.value("scale")))

    def _set_refine(self, values) -> None:
        on = bool(values["refine_pose"])
        depth = self._load_depth() if on else None      # ModelLoadError / ValueError: refused with it
        with self.model_lock:
            self.pipeline.settings.refine_net = on
            self.pipeline.set_depth_model(depth)

    def _set_settings(self, values) -> None:
        s = self.pipeline.settings
        with self.model_lock:
            s.refine_iters = int(values.get("refine_iters", s.refine_iters))
            s.max_frame_gap = float(values.get("max_frame_gap", s.max_frame_gap))
            s.max_bridge_gap = float(values.get("max_bridge_gap", s.max_bridge_gap))
            s.domain = str(values.get("domain", s.domain))        # the pose net's gate decides again

    def _on_status(self, msg: VodeStatus) -> None:
        if msg.node == "depth" and msg.scale > 0 and np.isfinite(msg.scale):
            self.pipeline.settings.net_scale = float(msg.scale)
            self.depth_scale_source = f"depth node: {msg.scale_source}"

    def _load_depth(self) -> OnnxModel:
        """depth.onnx next to pose.onnx: the previous frame's depth for refine_pose."""
        p = self.params.value
        model = OnnxModel(Path(p("model_dir") or self.shipped_model_dir()) / "depth.onnx", list(p("providers")),
                          int(p("threads")), expected_kind="depth")
        pm = self.model.meta
        if (model.meta.width, model.meta.height, model.meta.color) != (pm.width, pm.height, pm.color):
            raise ValueError(f"refine_pose: {model.path} and {self.model.path} differ in input size or colour; "
                             "use a depth.onnx and pose.onnx exported from one checkpoint")
        return model

    def on_model_swapped(self) -> None:
        # The new net may normalise differently: the pair restarts.
        self.pipeline.set_pose_model(self.model, self._load_depth() if self.pipeline.settings.refine_net else None)

    @property
    def net_scale(self) -> float:
        """The factor on the pose net's translations in use (parameter scale, or the depth node's)."""
        return self.pipeline.settings.net_scale

    def scale_info(self) -> tuple[str, float]:
        scale = self.pipeline.settings.net_scale
        trust = self.pipeline.net_gate.trust
        if trust is not None and not trust.translation and self.pipeline.settings.pose.pose_source == "hybrid":
            return trust.reason, scale           # vode/status says the net's translation is not used
        if self.scale_mode == "from_depth":
            return self.depth_scale_source, scale
        return super().scale_info()[0] if self.scale_mode == "model" else RELATIVE, scale

    def check_parameters(self, values) -> str | None:
        odom, base = values.get("odom_frame"), values.get("base_frame")
        if odom is not None and odom == base:
            return (f"odom_frame and base_frame are both '{odom}': odometry is the motion of base_frame in "
                    "odom_frame, two frames (REP-105); give them different names")
        return PoseSourceParams.check(values)

    def fill_status(self, msg: VodeStatus) -> None:
        self.pose_params.fill_status(msg)

    def diagnostic_values(self) -> list:
        return self.pose_params.diagnostic_values()

    def process(self, frame: Frame) -> None:
        if frame.header.frame_id and frame.header.frame_id != self.camera_frame and not self._warned_frame:
            self._warned_frame = True
            self.get_logger().warning(
                f"images are in frame '{frame.header.frame_id}' but camera_frame is '{self.camera_frame}': "
                "set the camera_frame parameter so TF connects them")
        try:
            out = self.pipeline.step(frame.image, frame.encoding, stamp_to_ns(frame.header.stamp), frame.k,
                                     right=frame.right, baseline=frame.baseline)
        except StampRejected as exc:
            raise FrameRejected(exc.reason, str(exc)) from None
        for reason, message in out.notes:
            if reason == "time_back":
                self.get_logger().warning(message)
            else:
                self.problem(reason, message)
        pose_cov = out.pose_covariance.reshape(-1).tolist() if out.pose_covariance is not None else self.pose_cov
        twist_cov = out.twist_covariance.reshape(-1).tolist() if out.twist_covariance is not None else self.twist_cov
        self.odom_pub.publish(odometry_msg(out.pose, out.twist_linear, out.twist_angular, frame.header.stamp,
                                           self.odom_frame, self.base_frame, pose_cov, twist_cov))
        if self.params.value("publish_tf"):
            self.tf_out.send([transform_msg(out.pose, self.odom_frame, self.base_frame, frame.header.stamp)])


def main(args=None) -> int:
    return run_single(OdometryNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
