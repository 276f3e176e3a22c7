"""One camera frame -> the camera's motion and the robot's pose: the odometry node's whole per-frame
work without ROS, also what `vode eval pose` and the pose benchmark run.

    pipeline = OdometryPipeline(pose_model, OdometrySettings(PoseEstimatorConfig(pose_source="hybrid"),
                                                            geometry_depth="stereo", t_base_cam=mount))
    out = pipeline.step(image, "mono8", stamp_ns, k, right=right, baseline=0.54)
    out.pose, out.twist_linear, out.pose_covariance, out.estimate.source

Per frame, in this order:
1. the stamp rules: a repeated stamp is refused (:class:`StampRejected`); an older one (a bag
   looping) resets the trajectory; a forward jump over ``max_frame_gap`` is bridged at the last
   velocity with an inflated covariance, or, past ``max_bridge_gap`` or with no velocity known,
   not integrated (see :meth:`OdometryPipeline._across_gap` and docs/odometry.md);
2. the pose net (runtime.inference.PoseNet) on (previous, current), optionally refined by direct
   photometric alignment on the depth net's depth of the previous frame, times ``net_scale``;
3. the geometry (runtime.pose.frontend.PoseFrontEnd: tracked corners, the geometry's depth, PnP,
   essential matrix, keyframes, fallback to the net);
4. the integration into base_link (runtime.odometry.OdometryIntegrator: pose, twist, covariances).

Where to plug in: a new pose matcher goes in runtime.pose (PoseFrontEnd / PoseEstimator), a
motion-plausibility check between steps 3 and 4 (:meth:`OdometryPipeline._integrate`), a domain
gate for the pose net before step 2 (:meth:`OdometryPipeline._net_motion`).

numpy + OpenCV + ONNX Runtime; no ROS, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vode_ros.core.image_codec import to_gray
from vode_ros.runtime.direct_refine import gray_from_net_input, refine_motion
from vode_ros.runtime import inference
from vode_ros.runtime.inference import OnnxModel
from vode_ros.runtime.odometry import OdometryIntegrator, scale_motion
from vode_ros.runtime.pose.config import PoseEstimate, PoseEstimatorConfig
from vode_ros.runtime.pose.depth_input import DepthCache
from vode_ros.runtime.pose.frontend import PoseFrontEnd
from vode_ros.runtime.pose.net_domain import NetDomainGate
from vode_ros.runtime.frame_share import FrameShare


class StampRejected(ValueError):
    """A frame whose stamp cannot be integrated; ``reason`` is the accounting key."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class OdometrySettings:
    pose: PoseEstimatorConfig = field(default_factory=PoseEstimatorConfig)
    geometry_depth: str = "none"         # none | stereo | depth_topic | given (the caller's depth per step)
    t_base_cam: np.ndarray = field(default_factory=lambda: np.eye(4))   # (4, 4) camera optical frame in base_link
    net_scale: float = 1.0               # multiplies the pose net's translations (a geometric motion is metric)
    refine_net: bool = False             # direct photometric refinement of the net's motion (needs a depth net)
    refine_iters: int = 10
    max_frame_gap: float = 1.0           # s: a larger forward jump of the stamps is a gap
    max_bridge_gap: float = 3.0          # s: a gap up to this is bridged at the last velocity; 0 = never
    depth_wait_s: float = 0.5            # geometry_depth depth_topic: longest wait for the previous depth
    domain: str = ""                     # what the camera sees ('' = not said): gates the pose net's translation


@dataclass
class OdometryStep:
    """What one frame gave. ``estimate.source``: start | net | geometric | hybrid | fallback | bridged."""
    stamp: float                                  # s
    estimate: PoseEstimate                        # the camera motion T_prev_cur (optical frame) and its covariance
    pose: np.ndarray                              # (4, 4) base_link in odom
    twist_linear: np.ndarray                      # (3,) m/s in base_link
    twist_angular: np.ndarray                     # (3,) rad/s in base_link
    pose_covariance: np.ndarray | None            # (6, 6) in odom; None: nothing known yet (first frame)
    twist_covariance: np.ndarray | None           # (6, 6) in base_link; None at a start
    notes: list[tuple[str, str]] = field(default_factory=list)   # (reason, message) for the log / diagnostics

    @property
    def started(self) -> bool:
        """This frame starts a frame pair (first frame, after a reset, a gap or a new pose net)."""
        return self.estimate.source in ("start", "bridged")


class OdometryPipeline:
    """The per-frame odometry (see the module docstring). Not thread-safe: one caller steps it;
    settings change between steps (the node holds its model lock)."""

    def __init__(self, pose_model: OnnxModel | None, settings: OdometrySettings,
                 depth_cache: DepthCache | None = None, shared: FrameShare | None = None,
                 depth_model: OnnxModel | None = None):
        self.settings = settings
        self.shared = shared or FrameShare()      # the net input and the SGBM map, once per frame
        if settings.pose.pose_source != "geometric" and pose_model is None:
            raise ValueError(f"pose_source {settings.pose.pose_source} needs the pose net (pose.onnx)")
        geometry = "none" if settings.geometry_depth == "given" else settings.geometry_depth
        self.given_depth = settings.geometry_depth == "given"
        self.frontend = PoseFrontEnd(settings.pose, geometry, depth_cache, settings.depth_wait_s,
                                     stereo=self.shared)
        self.integrator = OdometryIntegrator(settings.t_base_cam)
        self.pose_model, self.depth_model = pose_model, depth_model
        self.pose_net = inference.PoseNet(pose_model) if pose_model is not None else None
        self.depth_net = inference.DepthNet(depth_model) if depth_model is not None else None
        self._pair_open = False                          # a previous frame to measure the motion from
        self._previous: np.ndarray | None = None          # (C, H, W) pose-net input of the previous frame
        self._previous_depth: np.ndarray | None = None    # (h, w) depth-net depth of it (refine_net)
        self._last_twist: tuple[np.ndarray, float] | None = None   # (camera T_prev_cur, dt) of the last motion
        self.net_gate = NetDomainGate(settings.domain)     # the pose net's translation only in its domain

    # -- changes between steps --------------------------------------------------------------
    def set_pose_model(self, model: OnnxModel | None, depth_model: OnnxModel | None = None) -> None:
        """A new pose net (and depth net for refine_net): the next frame starts a new pair."""
        self.pose_model, self.depth_model = model, depth_model
        self.pose_net = inference.PoseNet(model) if model is not None else None
        self.depth_net = inference.DepthNet(depth_model) if depth_model is not None else None
        self.restart()

    def set_depth_model(self, depth_model: OnnxModel | None) -> None:
        """The depth net of refine_net (None: none); the pair goes on, refined from the next depth."""
        self.depth_model = depth_model
        self.depth_net = inference.DepthNet(depth_model) if depth_model is not None else None
        self._previous_depth = None

    def set_mount(self, t_base_cam: np.ndarray) -> None:
        self.settings.t_base_cam = self.integrator.t_base_cam = np.asarray(t_base_cam, np.float64)

    def reconfigure(self, config: PoseEstimatorConfig) -> None:
        was_net = self.settings.pose.pose_source == "net"
        self.settings.pose = config
        self.frontend.reconfigure(config)
        if was_net != (config.pose_source == "net"):
            self.frontend.restart()      # the geometry skipped frames (or is skipped now): no stale previous frame

    def restart(self) -> None:
        """The next frame starts a new frame pair; the pose goes on from where it is."""
        self._pair_open = False
        self._previous = self._previous_depth = None
        self._last_twist = None

    @property
    def needs_net(self) -> bool:
        return self.frontend.needs_net

    # -- one frame ----------------------------------------------------------------------------
    def step(self, image: np.ndarray, encoding: str, stamp_ns: int, k: np.ndarray, right: np.ndarray | None = None,
             baseline: float | None = None, depth: np.ndarray | None = None) -> OdometryStep:
        """image (H, W[, 3]) uint8 in ``encoding``, rectified; k (3, 3) at its size; stamp integer ns.
        right (H, W) grey rectified partner and baseline (m): geometry_depth stereo. depth (Hd, Wd)
        metres of *this* image: geometry_depth given (offline: the depth net's, SGBM's or a sensor's).
        Raises StampRejected (a repeated stamp; nothing changed) and ValueError (bad input)."""
        stamp = int(stamp_ns) * 1e-9
        notes: list[tuple[str, str]] = []
        bridge = self._stamp_rules(stamp, notes)
        net_in = (self.shared.net_input(stamp_ns, self.pose_model, image, encoding)
                  if self.pose_model is not None else None)
        if not self._pair_open and bridge is None:
            self.integrator.start(stamp)
            self.frontend.restart()
            if self.pose_net is not None:
                self.pose_net.start(net_in)          # recurrent pose models: reset the state, feed frame 0
            net_motion = None
        elif bridge is not None:
            self.frontend.restart()
            if self.pose_net is not None:
                self.pose_net.start(net_in)
            net_motion = None
        else:
            net_motion = self._net_motion(net_in, image, k) if self.needs_net else None
            if net_motion is not None and self.settings.pose.pose_source != "net":
                net_motion = self._gate_net(net_motion, k, image.shape[1], stamp, notes)
        if self.settings.pose.pose_source == "net":
            est = self._net_estimate(stamp, net_motion)
        else:
            est = self.frontend.step(to_gray(image, encoding), int(stamp_ns), k, net_t_prev_cur=net_motion,
                                     right=right, baseline=baseline, depth=depth if self.given_depth else None)
        if bridge is not None:
            est = bridge
        out = self._integrate(stamp, est, notes)
        if self.settings.refine_net and self.depth_net is not None and net_in is not None:
            dm, pm = self.depth_model.meta, self.pose_model.meta
            same = (dm.mean, dm.std) == (pm.mean, pm.std)
            self._previous_depth = self.depth_net(net_in if same else self.depth_model.preprocess(image, encoding))
        self._previous, self._pair_open = net_in, True
        return out

    def _net_estimate(self, stamp: float, net_motion: np.ndarray | None) -> PoseEstimate:
        """pose_source net: the net's motion with its fixed covariance; no image work for the geometry
        (the front end is skipped, its counters kept)."""
        fe = self.frontend
        if net_motion is None:
            est = PoseEstimate(stamp, np.eye(4), np.zeros((6, 6)), "start")
        else:
            last = self.integrator.last_stamp
            est = PoseEstimate(stamp, net_motion, self.settings.pose.net_covariance(), "net",
                               dt=stamp - last if last is not None else 0.0)
        fe.stats.frames += 1
        fe.last = est
        return est

    def _stamp_rules(self, stamp: float, notes: list) -> PoseEstimate | None:
        """Refuse a repeated stamp, reset on time going back, handle a forward gap. -> the bridged
        motion across a gap, or None."""
        last = self.integrator.last_stamp
        if last is None:
            return None
        if stamp == last:
            raise StampRejected("duplicate_stamp", f"stamp {stamp:.9f} s repeats the previous frame's: a motion "
                                "over zero time cannot be integrated (the driver must stamp each image anew)")
        if stamp < last:
            notes.append(("time_back", f"time jumped back ({last:.3f} -> {stamp:.3f} s; bag loop?): odometry reset"))
            self.integrator.reset()
            self.frontend.reset()
            self.restart()
            return None
        gap = stamp - last
        if not self._pair_open or gap <= self.settings.max_frame_gap:
            return None
        return self._across_gap(last, stamp, gap, notes)

    def _across_gap(self, last: float, stamp: float, gap: float, notes: list) -> PoseEstimate | None:
        """A forward jump of ``gap`` s over max_frame_gap (frames lost upstream: a stereo pair waiting
        for a silent right camera, a paused driver). Tracking across it is unreliable and the pose net
        was trained on consecutive frames, so the motion over the gap is the last velocity's (constant
        velocity) with the net's per-frame covariance times (gap / dt)^2, dt the last frame interval:
        a motion known only as well as that many unobserved frames, errors adding up coherently. Past
        max_bridge_gap (or with no velocity yet) nothing is integrated. Either way the next motion is
        measured from this frame on."""
        cfg = self.settings
        twist = self._last_twist
        self._pair_open = False
        self._previous = self._previous_depth = None
        if twist is None or gap > cfg.max_bridge_gap:
            why = "no velocity known yet" if twist is None else f"over max_bridge_gap {cfg.max_bridge_gap:g} s"
            notes.append(("stamp_gap", f"stamps jump forward {gap:.3f} s ({last:.3f} -> {stamp:.3f} s, over "
                          f"max_frame_gap; {why}): motion across the gap is not integrated, odometry goes on "
                          "from the last pose"))
            self.integrator.last_stamp = stamp
            self._last_twist = None
            return None
        motion, dt = twist
        ratio = gap / dt
        bridged = scale_motion(motion, ratio)
        cov = cfg.pose.net_covariance() * ratio ** 2
        notes.append(("stamp_gap", f"stamps jump forward {gap:.3f} s ({last:.3f} -> {stamp:.3f} s, over "
                      f"max_frame_gap): the motion across the gap is the last velocity's, its covariance "
                      f"inflated {ratio ** 2:.0f}x; the next motion is measured from this frame"))
        return PoseEstimate(stamp, bridged, cov, "bridged", dt=gap, reason="stamp gap bridged at constant velocity")

    def _net_motion(self, net_in: np.ndarray, image: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The pose net's T_prev_cur (4, 4), refined where asked, in the settings' scale."""
        motion = self.pose_net(net_in, self._previous)
        cfg = self.settings
        if cfg.refine_net and self._previous_depth is not None:
            m = self.pose_model.meta
            k_net = self.pose_model.intrinsics_for_net(k, (image.shape[1], image.shape[0]))
            motion, _ = refine_motion(gray_from_net_input(self._previous, m.mean, m.std),
                                    gray_from_net_input(net_in, m.mean, m.std), self._previous_depth, k_net,
                                    motion, iters=cfg.refine_iters)
        motion[:3, 3] *= cfg.net_scale
        return motion

    def _gate_net(self, motion: np.ndarray, k: np.ndarray, width: int, stamp: float, notes: list) -> np.ndarray:
        """Off the pose net's domain (runtime.pose.net_domain) its translation gives way to constant velocity."""
        self.net_gate.domain = self.settings.domain
        trust, new = self.net_gate.decide(self.pose_model.meta.raw, k, width)
        if new and not trust.translation:
            notes.append(("pose_net_domain", trust.reason))
        if trust.translation:
            return motion
        return self.net_gate.rotation_only(motion, self._last_twist, stamp - (self.integrator.last_stamp or stamp))

    def _integrate(self, stamp: float, est: PoseEstimate, notes: list) -> OdometryStep:
        if est.source == "start":
            self.integrator.last_stamp = stamp             # the next motion's time runs from here
            held = self.integrator.pose_covariance()       # after a gap: what the trajectory has gathered
            return OdometryStep(stamp, est, self.integrator.pose.copy(), np.zeros(3), np.zeros(3),
                                held if held.any() else None, None, notes)
        state = self.integrator.update(stamp, est.t_prev_cur, est.covariance)
        if est.dt > 0 and est.source != "bridged":
            self._last_twist = (est.t_prev_cur.copy(), est.dt)
        return OdometryStep(stamp, est, state.pose, state.twist_linear, state.twist_angular, state.pose_covariance,
                            state.twist_covariance, notes)


def integrate_sequence(pipeline: OdometryPipeline, frames, progress=None) -> tuple[np.ndarray, list[OdometryStep]]:
    """Step ``pipeline`` through ``frames`` (each a dict of step's keyword arguments) -> the camera
    trajectory (N, 4, 4) in the first camera's frame (what `vode eval pose` scores) and every step."""
    steps = []
    t_cam_base = np.linalg.inv(pipeline.settings.t_base_cam)
    poses = []
    for f in frames if progress is None else progress(frames):
        s = pipeline.step(**f)
        steps.append(s)
        poses.append(t_cam_base @ s.pose @ pipeline.settings.t_base_cam)    # T_cam0_cam (first base at the origin)
    return np.array(poses), steps
