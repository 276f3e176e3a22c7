"""The odometry node's pose-source wiring: parameters, the geometry's depth input, status fields.

Parameters (declared with ranges through nodes.params; the tuning ones apply live):
  pose_source          net | geometric | hybrid (runtime.pose.PoseEstimator)
  geometry_depth       auto | depth_topic | stereo: where the geometry's depth comes from (start-up)
  depth_topic          the depth image for depth_topic (REP-118: 32FC1 metres from the depth node, or an
                       RGB-D camera's 16UC1 millimetres)
  depth_wait           how long a frame may wait for the previous frame's depth, s
  essential            auto | on | off: rotation and direction from the essential matrix (auto: with the
                       depth net's depth, i.e. geometry_depth depth_topic)
  length_smoothing     the speed filtered over frames, a in [0, 1) (negative = auto: 0.7 with the depth
                       net's depth, 0 otherwise)
  min_inliers, ransac_threshold_px, max_features, work_width, keyframes, matcher, plausibility, refine:
                       the estimator's settings

The per-frame logic is runtime.odometry_pipeline.OdometryPipeline (no ROS); this module turns
parameters into its settings, the depth topic into its DepthCache, and its counters into status.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from vode_ros.core.image_codec import ImageDecodeError
from vode_ros.nodes.ros_msgs import depth_from_msg, stamp_to_ns
from vode_ros.runtime.pose.config import MATCHERS, POSE_SOURCES, PoseEstimatorConfig
from vode_ros.runtime.pose.depth_input import (ESSENTIAL_CHOICES, GEOMETRY_DEPTHS, DepthCache,
                                               resolve_geometry_depth, resolve_length_smoothing, use_essential)

# parameter -> PoseEstimatorConfig field
TUNING = {"min_inliers": "min_inliers", "ransac_threshold_px": "ransac_threshold", "max_features": "max_features",
          "work_width": "work_width", "refine": "refine", "pose_std_xyz": "net_std_xyz",
          "pose_std_rpy": "net_std_rpy", "keyframes": "keyframes", "matcher": "matcher",
          "plausibility": "plausibility"}


class PoseSourceParams:
    """The pose source of the odometry node: :meth:`declare` declares its parameters (at the node's
    construction), the instance (made at configure) resolves them into the pipeline's settings."""

    @staticmethod
    def declare(node) -> None:
        d = node._declare
        d("pose_source", "hybrid", "net: the pose net alone; geometric: tracked corners + depth + PnP-RANSAC; "
          "hybrid: geometric guided by the pose net, the net where too few inliers remain",
          choices=POSE_SOURCES)
        d("geometry_depth", "auto", "depth for the geometric / hybrid sources: stereo (SGBM of the rectified pair "
          "at about 416 px wide, mode stereo), depth_topic (the depth node's metric depth), auto (stereo in mode "
          "stereo, else depth_topic)", choices=GEOMETRY_DEPTHS, live=False)
        d("depth_topic", "depth/image", "depth image for geometry_depth depth_topic: the depth node's (32FC1 "
          "metres), or an RGB-D camera's aligned depth (16UC1 millimetres; then set essential off and "
          "length_smoothing 0, whose auto values assume the depth net)", live=False)
        d("depth_wait", 0.5, "longest wait of a frame for the previous frame's depth from the depth node, s "
          "(not waited when that depth was skipped or the depth node is silent)", low=0.0, high=5.0)
        d("min_inliers", 30, "fewer PnP inliers: the frame falls back to the pose net", low=6, high=10000)
        d("ransac_threshold_px", 1.5, "PnP-RANSAC inlier threshold, px at the tracking resolution", low=0.1, high=50.0)
        d("max_features", 400, "corners tracked per frame", low=20, high=20000)
        d("work_width", 640, "tracking resolution: wider images are downscaled to it (0 = as given)",
          low=0, high=8192)
        d("keyframes", False, "track from a reference frame kept while it tracks well instead of the previous "
          "frame: less drift for a camera hovering over one scene (TUM fr1_xyz 0.064 -> 0.028 m), worse driving "
          "forward")
        d("essential", "auto", "rotation and direction of travel from the essential matrix of the tracked corners, "
          "the length from PnP on the depth: auto = with the depth net's depth (mono; KITTI 06 ATE-5 0.125 -> "
          "0.047 m), not with stereo or sensor depth (PnP is better there)", choices=ESSENTIAL_CHOICES)
        d("length_smoothing", -1.0, "the speed through an alpha-beta filter of gain 1 - a, a in [0, 1): each "
          "geometric motion keeps its direction with the filtered length; negative = auto: 0.7 with the depth net's "
          "depth (whose scale wobbles from frame to frame), 0 with stereo or sensor depth",
          low=-1.0, high=0.99)
        d("matcher", "auto", "correspondences: lk (tracked corners), descriptor (ORB matched around the motion "
          "prior), auto (LK, descriptors where LK gives no motion or an implausible one: large motion, low frame "
          "rate, dropped frames; chosen leave-one-sequence-out, docs/odometry.md)", choices=MATCHERS)
        d("plausibility", True, "refuse a motion whose length disagrees with the recent speed beyond a speed "
          "change, 3 m/s^2 and 3 sigma of its covariance (another matcher, else the fallback)")
        d("refine", False, "hybrid: direct photometric refinement of the motion with the geometry's depth "
          "(measured worse than without in stereo)")

    def __init__(self, node):
        self.node = node
        p = node.params.value
        self.geometry = resolve_geometry_depth(p("geometry_depth"), node.mode, p("pose_source"))
        self.essential = use_essential(p("essential"), self.geometry)
        self.cache: DepthCache | None = None
        if self.geometry == "depth_topic":
            self.cache = node.shared_depth or DepthCache()
            if node.shared_depth is None:
                # Own group: the depth must come in while an image callback waits on back-pressure.
                node.create_subscription(Image, p("depth_topic"), self._on_depth,
                                         QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
                                         callback_group=MutuallyExclusiveCallbackGroup())
        elif self.geometry == "stereo":
            node.uses_right = True          # this node now pairs the right image (subscribed at activation)
        self.depth_rejected = 0
        node.params.on_change(["pose_source", "essential", "length_smoothing", *TUNING], self._apply_live)
        node.params.on_change(["depth_wait"], lambda v: setattr(self.frontend, "depth_wait_s", float(v["depth_wait"])))

    @property
    def frontend(self):
        """The pipeline's pose front end (made by the node after this object)."""
        return self.node.pipeline.frontend

    def log_choice(self) -> None:
        node, p = self.node, self.node.params.value
        where = {"none": "none (the pose net alone)", "stereo": "SGBM of the stereo pair",
                 "depth_topic": "in-process depth node" if node.shared_depth else p("depth_topic")}[self.geometry]
        smoothing = self.frontend.config.length_smoothing
        node.get_logger().info(f"pose_source {p('pose_source')}, geometry depth: {where}"
                               + (", essential matrix for rotation and direction" if self.essential else "")
                               + (f", speed filtered (length_smoothing {smoothing:g})" if smoothing else ""))

    def config(self, values: dict[str, Any]) -> PoseEstimatorConfig:
        v = {n: values.get(n, self.node.params.value(n)) for n in ("pose_source", "essential", "length_smoothing",
                                                                    *TUNING)}
        return PoseEstimatorConfig(pose_source=v["pose_source"], essential=use_essential(v["essential"], self.geometry),
                                   length_smoothing=resolve_length_smoothing(v["length_smoothing"], self.geometry),
                                   **{field: type(getattr(PoseEstimatorConfig, field))(v[name])
                                      for name, field in TUNING.items()})

    def _apply_live(self, values: dict[str, Any]) -> None:
        source = values.get("pose_source", self.frontend.config.pose_source)
        if source != "net" and self.geometry == "none":
            raise ValueError(f"pose_source {source} needs a depth input the node did not set up (it started with "
                             f"pose_source net): restart it with pose_source:={source}")
        config = self.config(values)
        with self.node.model_lock:            # between frames
            self.node.pipeline.reconfigure(replace(config, pose_source=source))

    @staticmethod
    def check(values: dict[str, Any]) -> str | None:
        """The cross-parameter check (also while the parameters are still being declared)."""
        try:
            resolve_geometry_depth(values.get("geometry_depth", "auto"), values.get("mode", "mono"),
                                   values.get("pose_source", "hybrid"))
        except ValueError as exc:
            return f"{exc} (parameters geometry_depth / mode / pose_source)"
        return None

    def _on_depth(self, msg: Image) -> None:
        try:
            depth = depth_from_msg(msg)
        except ImageDecodeError as exc:
            self.depth_rejected += 1
            self.node.problem("depth_input", f"depth on {self.node.params.value('depth_topic')} not used: {exc}")
            return
        # A sensor's depth aligned to the raw colour image (at its size) goes through the colour image's
        # remap, nearest neighbour; the depth node's depth (network size) is rectified already.
        cal = self.node.inputs.calibration
        if cal is not None and depth.shape[::-1] == (cal.width, cal.height):
            rectifier = self.node.inputs.rectifier(cal, self.node.params.value("image_topic"))[0]
            if rectifier is not None:
                depth = rectifier(depth, nearest=True)
        self.cache.put(stamp_to_ns(msg.header.stamp), depth)

    def fill_status(self, msg) -> None:
        e, st = self.frontend.last, self.frontend.stats
        msg.fallbacks = st.fallbacks
        if e is None:
            msg.reprojection_rmse_px = math.nan
            return
        msg.pose_source = e.source
        msg.inliers = int(e.inliers)
        msg.inlier_ratio = float(e.inlier_ratio)
        msg.reprojection_rmse_px = float(e.rmse_px)

    def diagnostic_values(self) -> list[tuple[str, Any]]:
        fe = self.frontend
        values = [("pose_source", fe.config.pose_source), ("geometry_depth", self.geometry),
                  ("pose_fallbacks", fe.stats.fallbacks)]
        if fe.last is not None:
            values += [("last_pose_source", fe.last.source), ("inliers", fe.last.inliers)]
            if fe.last.reason:
                values.append(("last_fallback_reason", fe.last.reason))
        if self.geometry == "stereo":
            values.append(("frames_without_right_image", fe.stats.stereo_missing))
        if fe.cache is not None:
            c = fe.cache.counts()
            values += [("depth_paired", c.paired), ("frames_without_depth", c.frames_without_depth),
                       ("depth_unpaired", c.depth_unpaired), ("depth_rejected", self.depth_rejected),
                       ("depth_wait_ms_total", f"{c.wait_ms_total:.0f}")]
        return values
