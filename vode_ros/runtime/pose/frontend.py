"""The odometry node's per-frame pose logic, without ROS: the geometry's depth, the estimator,
the counters the node reports.

    fe = PoseFrontEnd(PoseEstimatorConfig(pose_source="hybrid"), geometry_depth="stereo")
    e = fe.step(grey, stamp_ns, k, net_t_prev_cur=net, right=right_grey, baseline=0.54)

geometry_depth (see depth_input.resolve_geometry_depth):
- ``none``: the pose net alone (pose_source net);
- ``stereo``: SGBM of this frame's rectified pair at about 416 px wide (a third on KITTI), from a
  :class:`~vode_ros.runtime.frame_share.FrameShare` (matched here, or by the depth node of the
  same process for the same pair);
- ``depth_topic``: the depth node's depth of the previous frame, taken from a :class:`DepthCache`
  (filled from depth/image, or directly by a depth node in the same process) just before the
  next step needs it, so the odometry of a frame never waits for that frame's own depth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vode_ros.runtime.pose.depth_input import DepthCache
from vode_ros.runtime.pose.estimator import PoseEstimate, PoseEstimator, PoseEstimatorConfig
from vode_ros.runtime.frame_share import FrameShare


@dataclass
class FrontEndStats:
    frames: int = 0
    fallbacks: int = 0
    stereo_missing: int = 0          # stereo geometry without a right image for the frame


class PoseFrontEnd:
    def __init__(self, config: PoseEstimatorConfig, geometry_depth: str = "none", cache: DepthCache | None = None,
                 depth_wait_s: float = 0.5, stereo: FrameShare | None = None):
        if geometry_depth not in ("none", "stereo", "depth_topic"):
            raise ValueError(f"geometry_depth must be none, stereo or depth_topic, got {geometry_depth!r}")
        if geometry_depth == "depth_topic" and cache is None:
            raise ValueError("geometry_depth depth_topic needs a DepthCache")
        self.estimator = PoseEstimator(config)
        self.geometry_depth = geometry_depth
        self.cache = cache
        self.depth_wait_s = depth_wait_s
        self.stereo = stereo or FrameShare()
        self.stats = FrontEndStats()
        self.last: PoseEstimate | None = None
        self._prev_ns: int | None = None

    @property
    def config(self) -> PoseEstimatorConfig:
        return self.estimator.config

    @property
    def needs_net(self) -> bool:
        return self.config.pose_source != "geometric"

    def reconfigure(self, config: PoseEstimatorConfig) -> None:
        self.estimator.reconfigure(config)

    def reset(self) -> None:
        """A new sequence (time went back): the estimator starts again, held depth is forgotten."""
        self.estimator.reset()
        self._prev_ns = None
        if self.cache is not None:
            self.cache.clear()

    def restart(self) -> None:
        """The next frame starts a new frame pair (a gap in the stamps, a new pose net); depth already
        received for later frames is kept."""
        self.estimator.reset()

    def step(self, image: np.ndarray, stamp_ns: int, k: np.ndarray, net_t_prev_cur: np.ndarray | None = None,
             right: np.ndarray | None = None, baseline: float | None = None,
             depth: np.ndarray | None = None) -> PoseEstimate:
        """image (H, W) grey or (H, W, 3) RGB uint8, k (3, 3) at its size; right: the rectified partner
        (grey, same size), baseline metres. depth (Hd, Wd) metres of this image where the caller has it
        (geometry_depth none: offline evaluation, a sensor). -> the estimator's PoseEstimate (source
        'start' first)."""
        stamp = stamp_ns * 1e-9
        if self._prev_ns is not None and stamp_ns < self._prev_ns:
            self.reset()                          # a bag loop: a new sequence, old depth is useless
        if self.geometry_depth == "stereo":
            if right is not None and baseline is not None:
                depth = self.stereo.depth(stamp_ns, image, right, float(k[0, 0]), float(baseline))
            else:
                self.stats.stereo_missing += 1
        elif self.geometry_depth == "depth_topic" and self.estimator.started \
                and not self.estimator.previous_has_depth:
            prev = self.cache.take(self._prev_ns, self.depth_wait_s)
            if prev is not None:
                self.estimator.provide_depth(self.estimator.previous_stamp, prev)
        e = self.estimator.step(image, stamp, k, depth=depth, net_t_prev_cur=net_t_prev_cur)
        self._prev_ns = int(stamp_ns)
        self.stats.frames += 1
        self.stats.fallbacks += e.source == "fallback"
        self.last = e
        return e
