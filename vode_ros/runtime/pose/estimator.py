"""One stateful frame-to-frame pose estimator for the odometry node and the offline evaluation.

Pose sources (``PoseEstimatorConfig.pose_source``):

- ``net``: the pose net's T_prev_cur as given by the caller, with the fixed net covariance.
- ``geometric``: Shi-Tomasi corners of the previous frame (or a kept keyframe) tracked into the
  current one (pyramidal LK, optional forward-backward check), lifted with the previous frame's depth (metres), PnP-RANSAC + LM.
  The scale is the depth's. Covariance from the PnP Jacobian (vode_ros.runtime.pose.pnp).
  With ``two_view`` and this frame's depth given, refined on both directions (two_view.py).
- ``hybrid``: geometric, with the pose net's motion predicting where the corners went (LK starts
  there) and offered to RANSAC as a hypothesis; falls back to the net where too few inliers
  remain (low texture, blur), optionally refined by direct photometric alignment (``refine``).

Correspondences (``matcher``): LK tracks, descriptor matches guided by the motion prior (the
net's motion, else constant velocity), or LK with descriptor matches where LK gives no motion or
an implausible one (``auto``); descriptors are found on the caller's full image
(``descriptor_full_res``). Every geometric motion is judged against the recent speed and its
covariance (plausibility.py); an implausible one is not taken (attempt.py chooses).

Each ``step`` takes the current image, its depth (the depth net's /depth/image or SGBM; any
resolution) and optionally the net's T_prev_cur, and returns the motion since the previous step
in the camera optical frame (x right, y down, z forward) with its 6x6 covariance in the order of
nav_msgs/Odometry (x y z roll pitch yaw, in the current camera frame; see pnp.py). The first
frame, and the first after a reset or a time jump back, returns identity with source 'start'.

numpy + OpenCV only; no ROS, no torch.
"""
from __future__ import annotations

import math
import time

import numpy as np

from vode_ros.core.geometry import invert_se3, scale_intrinsics
from vode_ros.runtime.direct_refine import refine_motion
from vode_ros.runtime.pose import attempt as tries
from vode_ros.runtime.pose.config import POSE_SOURCES, PoseEstimate, PoseEstimatorConfig
from vode_ros.runtime.pose.descriptor_matching import DescriptorMatcher, Features
from vode_ros.runtime.pose.length_filter import SpeedFilter
from vode_ros.runtime.pose.plausibility import MotionPlausibility
from vode_ros.runtime.pose.tracking import backproject, detect_corners, project, sample_depth, track
from vode_ros.runtime.pose.validators import check_depth, check_image, check_k, check_motion, rotation_angle

__all__ = ["POSE_SOURCES", "PoseEstimate", "PoseEstimator", "PoseEstimatorConfig"]


class PoseEstimator:
    """Frame-to-frame motion from images, depth and (optionally) the pose net. See the module docstring.

        est = PoseEstimator(PoseEstimatorConfig(pose_source="hybrid"))
        for image, stamp, depth, net_motion in frames:
            e = est.step(image, stamp, k, depth=depth, net_t_prev_cur=net_motion)
            pose = pose @ e.t_prev_cur
    """

    def __init__(self, config: PoseEstimatorConfig | None = None):
        self.config = config or PoseEstimatorConfig()
        self._tracking = self.config.tracking()
        self._pnp = self.config.pnp()
        self._matcher = DescriptorMatcher(self.config.descriptors())
        self.reset()

    def reset(self) -> None:
        """Forget the previous frame: the next step starts a new sequence."""
        self._prev_gray: np.ndarray | None = None      # (h, w) uint8 at the working resolution
        self._prev_pts: np.ndarray | None = None       # (N, 2) float32 corners at the working resolution
        self._prev_depth: np.ndarray | None = None     # (Hd, Wd) float32 metres (any resolution)
        self._prev_stamp: float | None = None
        self._prev_size: tuple[int, int] | None = None  # (W, H) of the caller's image
        self._prev_full: np.ndarray | None = None       # (H, W) uint8 grey at the caller's resolution
        self._last_motion = np.eye(4)                  # constant-velocity stand-in without a net
        self._speed = SpeedFilter(self.config.length_smoothing)   # length_smoothing
        # The reference frame the corners come from (_prev_gray, _prev_pts, _prev_depth, _prev_full):
        # the previous frame, or with keyframes an older one. _t_ref_prev: the previous frame's pose
        # in it (identity when the reference is the previous frame).
        self._ref_stamp: float | None = None
        self._t_ref_prev = np.eye(4)
        self._t_ref_cur: np.ndarray | None = None       # set by _estimate when geometry worked
        self._ref_inliers0 = 0                          # inliers of the first frame tracked from the reference
        self._ref_features: Features | None = None      # descriptors of the reference (computed when needed)
        self._cur_features: Features | None = None      # of the frame being stepped, if computed
        self._plausible = MotionPlausibility(self.config.plausible())
        self._rejected_in_row = 0                       # implausible motions in a row (see _estimate)

    @property
    def started(self) -> bool:
        return self._prev_gray is not None

    @property
    def previous_stamp(self) -> float | None:
        return self._prev_stamp

    @property
    def previous_has_depth(self) -> bool:
        return self._prev_depth is not None

    def provide_depth(self, stamp: float, depth: np.ndarray) -> bool:
        """Depth of the frame stepped last, arriving after its step (another node computes it).

        depth: (Hd, Wd) metres, as ``step``'s. False (ignored) unless ``stamp`` is that frame's and
        that frame is the reference the next step tracks from."""
        if self._prev_stamp is None or stamp != self._prev_stamp or stamp != self._ref_stamp:
            return False
        self._prev_depth = check_depth(depth)
        return True

    def reconfigure(self, config: PoseEstimatorConfig) -> None:
        """Take new settings between steps; the sequence goes on unless the working resolution changed."""
        restart = config.work_width != self.config.work_width    # the kept frame is at the old resolution
        self.config = config
        self._tracking = config.tracking()
        self._pnp = config.pnp()
        self._matcher = DescriptorMatcher(config.descriptors())
        self._ref_features = self._cur_features = None
        self._plausible.cfg = config.plausible()
        if restart:
            self.reset()

    # ------------------------------------------------------------------ helpers
    def _work(self, gray: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The caller's grey image and K -> working resolution (downscaled to ``work_width``)."""
        import cv2

        h, w = gray.shape
        ww = self.config.work_width
        if ww and w > ww:
            wh = (ww, max(1, round(h * ww / w)))
            return cv2.resize(gray, wh, interpolation=cv2.INTER_AREA), scale_intrinsics(k, (w, h), wh)
        return gray, k

    def _fallback(self, net: np.ndarray | None, reason: str) -> tuple[np.ndarray, np.ndarray, str]:
        cov = self.config.net_covariance()
        if net is not None:
            return net.copy(), cov, reason
        # No net: constant velocity, with the variance of a frame of unknown motion on top.
        return self._last_motion.copy(), 4.0 * cov, reason + "; no net motion: constant velocity"

    def _refine(self, gray_prev: np.ndarray, gray_cur: np.ndarray, k: np.ndarray, t_prev_cur: np.ndarray
                ) -> tuple[np.ndarray, bool]:
        """Direct photometric refinement at ``refine_width`` (needs the previous depth)."""
        import cv2

        h, w = gray_cur.shape
        rw = min(self.config.refine_width, w)
        wh = (rw, max(8, round(h * rw / w)))
        k_r = scale_intrinsics(k, (w, h), wh)
        prev = cv2.resize(gray_prev, wh, interpolation=cv2.INTER_AREA).astype(np.float64) / 255.0
        cur = cv2.resize(gray_cur, wh, interpolation=cv2.INTER_AREA).astype(np.float64) / 255.0
        depth = cv2.resize(self._prev_depth, wh, interpolation=cv2.INTER_NEAREST)
        depth = np.where((depth >= self.config.min_depth) & (depth <= self.config.max_depth), depth, 0.0)
        levels = max(1, min(4, int(math.log2(max(wh[1], 8) / 8)) + 1))
        t, info = refine_motion(prev, cur, depth, k_r, t_prev_cur, levels=levels,
                              max_points=self.config.refine_max_points)
        return t, info.used

    # ------------------------------------------------------------------ main entry
    def step(self, image: np.ndarray, stamp: float, k: np.ndarray, depth: np.ndarray | None = None,
             net_t_prev_cur: np.ndarray | None = None) -> PoseEstimate:
        """Motion from the previous step's frame to this one.

        image: (H, W) uint8 grey or (H, W, 3) uint8 RGB. stamp: seconds. k: (3, 3) at (W, H).
        depth: (Hd, Wd) metres of *this* image (kept for the next step; any resolution, 0 / NaN /
        inf / out of [min_depth, max_depth] = no depth); None: the next step has no geometry.
        net_t_prev_cur: (4, 4) the pose net's T_prev_cur for (previous, this) frame, metres.
        """
        t0 = time.perf_counter()
        cfg = self.config
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"stamp must be finite seconds, got {stamp}")
        gray_full = check_image(image)
        k = check_k(k)
        depth = check_depth(depth)
        net = check_motion(net_t_prev_cur)
        size = (gray_full.shape[1], gray_full.shape[0])
        if cfg.pose_source == "net" and net is None and self.started:
            raise ValueError("pose_source 'net' needs net_t_prev_cur on every frame after the first")
        gray, k_w = self._work(gray_full, k)

        if (not self.started or self._prev_size != size
                or (self._prev_stamp is not None and stamp < self._prev_stamp)):
            est = PoseEstimate(stamp, np.eye(4), np.zeros((6, 6)), "start")
            self._speed.reset()                          # a new sequence: no speed carried over
            self._plausible.reset()
        else:
            self._cur_features = None
            est = self._estimate(gray, gray_full, k, k_w, net, depth, stamp - self._prev_stamp)
            est.stamp, est.dt = stamp, stamp - self._prev_stamp
            self._smooth_length(est)
            self._last_motion = est.t_prev_cur.copy()

        # Keep what the next step needs: corners and depth of the reference frame.
        if self._keeps_reference(est):
            self._t_ref_prev = self._t_ref_cur
        else:
            if cfg.pose_source != "net" and cfg.matcher != "descriptor":
                self._prev_pts = detect_corners(gray, self._tracking)
            self._ref_features = self._cur_features
            self._prev_gray, self._prev_full, self._prev_depth = gray, gray_full, depth
            self._ref_stamp, self._t_ref_prev, self._ref_inliers0 = stamp, np.eye(4), 0
        self._prev_stamp, self._prev_size = stamp, size
        est.time_ms = (time.perf_counter() - t0) * 1e3
        return est

    def _smooth_length(self, est: PoseEstimate) -> None:
        """length_smoothing on a geometric motion (see the config). Not with keyframes: there the
        motion is a difference of two poses in the reference frame, not one measurement."""
        cfg = self.config
        if cfg.length_smoothing <= 0 or cfg.keyframes or est.source not in ("geometric", "hybrid"):
            return
        self._speed.a, self._speed.dt_ref = cfg.length_smoothing, cfg.length_smoothing_dt
        measured = self._speed.filter_length(est.t_prev_cur, est.dt)
        if measured is not None:
            est.extra["length_measured_m"] = measured

    def _keeps_reference(self, est: PoseEstimate) -> bool:
        """Keyframes: whether the next step still tracks from the current reference frame."""
        cfg = self.config
        if not cfg.keyframes or est.source not in ("geometric", "hybrid") or self._t_ref_cur is None:
            return False
        if self._ref_inliers0 == 0:
            self._ref_inliers0 = est.inliers
        return est.inliers >= max(2 * cfg.min_inliers, cfg.keyframe_min_ratio * self._ref_inliers0)

    def _estimate(self, gray: np.ndarray, gray_full: np.ndarray, k: np.ndarray, k_w: np.ndarray,
                  net: np.ndarray | None, depth: np.ndarray | None, dt: float) -> PoseEstimate:
        import cv2

        # RANSAC draws from OpenCV's per-thread generator: seeded per frame, a frame's motion depends
        # on its inputs only, not on what the thread estimated before (the node's worker and
        # `vode eval pose` give the same poses).
        cv2.setRNGSeed(0)
        self._t_ref_cur = None
        cfg = self.config
        if cfg.pose_source == "net":
            return PoseEstimate(0.0, net.copy(), cfg.net_covariance(), "net")
        hybrid = cfg.pose_source == "hybrid"
        est = PoseEstimate(0.0, np.eye(4), np.zeros((6, 6)), "geometric" if not hybrid else "hybrid")
        older_ref = self._ref_stamp != self._prev_stamp                  # keyframe before the previous frame
        if net is not None and cfg.plausibility and cfg.plausible_net:
            length = self._plausible.net_length(net, dt)
            if length is not None:
                # The net's translation disagrees with the recent speed (a frame rate or footage it was
                # not trained on): its direction and rotation with the recent speed's length, as a
                # prior, a RANSAC hypothesis and a fallback.
                est.extra["net_length_m"] = float(np.linalg.norm(net[:3, 3]))
                net = net.copy()
                net[:3, 3] *= length / max(float(np.linalg.norm(net[:3, 3])), 1e-9)
        # Predicted motion reference -> current: the net's (or constant velocity) after the
        # reference -> previous motion. Guides LK and RANSAC where the reference is older.
        step_guess = net if net is not None else (self._last_motion if older_ref else None)
        pred_ref_cur = self._t_ref_prev @ step_guess if step_guess is not None else None
        hypothesis = pred_ref_cur if (hybrid and net is not None) or older_ref else None
        chosen = None
        if self._prev_depth is None:
            est.reason = "no depth for the previous frame"
        else:
            attempts = []
            if cfg.matcher != "descriptor":
                attempts.append(self._lk_attempt(gray, k_w, net, depth, hybrid, older_ref, pred_ref_cur, hypothesis))
                self._judge(attempts[-1], dt)
            flow = attempts[0].extra.get("median_flow_px", 0.0) if attempts else 0.0
            large = cfg.matcher == "auto" and 0 < cfg.descriptor_flow_px < flow
            if cfg.matcher == "descriptor" or large or (cfg.matcher == "auto" and tries.choose(
                    attempts, cfg.plausibility)[0] is None):
                # The descriptors' prior: the net's motion, else constant velocity (identity at the start).
                prior = pred_ref_cur if pred_ref_cur is not None else self._t_ref_prev @ self._last_motion
                attempts.insert(0 if large else len(attempts),
                                self._descriptor_attempt(gray, gray_full, k_w, depth, prior))
                self._judge(attempts[0 if large else -1], dt)
            chosen, est.reason = tries.choose(attempts, cfg.plausibility)
            implausible = any(a.verdict is not None and not a.verdict.plausible for a in attempts)
            if chosen is None and implausible and self._rejected_in_row >= 2:
                # Three frames in a row that disagree with the recent speed the same way: the speed
                # changed (a car braking hard, a hand starting to move). Start the history anew.
                self._plausible.reset()
                chosen, _ = tries.choose(attempts, False)
            self._rejected_in_row = self._rejected_in_row + 1 if chosen is None and implausible else 0
            last = attempts[-1] if chosen is None else chosen
            est.tracked, est.with_depth, est.inliers = last.tracked, last.with_depth, last.inliers
            est.inlier_ratio = last.inlier_ratio
            est.extra.update(last.extra)
            est.extra["matcher"] = last.matcher
        if chosen is not None:
            result = chosen.result
            est.rmse_px = result.rmse
            self._t_ref_cur = invert_se3(result.t_cur_prev)
            if cfg.refine and hybrid and self._prev_depth is not None:
                self._t_ref_cur, est.refined = self._refine(self._prev_full, gray_full, k, self._t_ref_cur)
            # With a keyframe the covariance is that of the whole reference -> current motion:
            # an over-estimate for the last step (conservative for a fusion filter).
            est.t_prev_cur = invert_se3(self._t_ref_prev) @ self._t_ref_cur
            est.covariance = chosen.covariance
            self._plausible.accept(est.t_prev_cur, dt)
            if net is not None:
                d = invert_se3(net) @ est.t_prev_cur
                est.extra["net_disagreement_m"] = float(np.linalg.norm(d[:3, 3]))
                est.extra["net_disagreement_deg"] = math.degrees(rotation_angle(d))
        else:
            est.t_prev_cur, est.covariance, est.reason = self._fallback(net, est.reason)
            est.source = "fallback"
            if cfg.refine and hybrid and self._prev_depth is not None and not older_ref:
                est.t_prev_cur, est.refined = self._refine(self._prev_full, gray_full, k, est.t_prev_cur)
        return est

    def _judge(self, attempt: tries.Attempt, dt: float) -> None:
        """The plausibility of an attempt's step motion (previous -> current)."""
        if attempt.result is None:
            return
        t_step = invert_se3(self._t_ref_prev) @ invert_se3(attempt.result.t_cur_prev)
        attempt.verdict = self._plausible.judge(t_step, attempt.covariance, dt)

    def _lk_attempt(self, gray: np.ndarray, k_w: np.ndarray, net: np.ndarray | None, depth: np.ndarray | None,
                    hybrid: bool, older_ref: bool, pred_ref_cur: np.ndarray | None,
                    hypothesis: np.ndarray | None) -> tries.Attempt:
        """Shi-Tomasi corners of the reference tracked by LK (from the prediction where it helps)."""
        cfg = self.config
        attempt = tries.Attempt("lk")
        pts0 = self._prev_pts
        if pts0 is None or len(pts0) < cfg.min_inliers:
            attempt.reason = f"{0 if pts0 is None else len(pts0)} corners on the previous frame (low texture)"
            return attempt
        z, has_z = sample_depth(self._prev_depth, pts0, gray.shape[::-1], cfg.min_depth, cfg.max_depth)

        def guided() -> tuple[np.ndarray, np.ndarray]:
            uv, zc = project(backproject(pts0, np.where(has_z, z, 1.0), k_w), invert_se3(pred_ref_cur), k_w)
            guess = np.where((has_z & (zc > 1e-3))[:, None] & np.isfinite(uv), uv, pts0).astype(np.float32)
            return track(self._prev_gray, gray, pts0, self._tracking, guess)

        if older_ref and has_z.any():
            # From a keyframe the corners have moved over several frames: start from the prediction.
            pts1, ok = guided()
        else:
            pts1, ok = track(self._prev_gray, gray, pts0, self._tracking)
            if (hybrid and cfg.net_flow_guess and net is not None and has_z.any()
                    and ok.sum() < 0.5 * len(pts0)):
                # Few tracks unguided (fast motion, blur): retry from where the net's motion puts
                # each corner; keep the better. Only then: a wrong net (other domain, wrong scale)
                # must not spoil tracking that works on its own (TUM: 11 fallbacks when always guided).
                pts1_g, ok_g = guided()
                if ok_g.sum() > ok.sum():
                    pts1, ok = pts1_g, ok_g
                    attempt.extra["net_guided_tracking"] = True
        if ok.any():
            attempt.extra["median_flow_px"] = float(np.median(np.linalg.norm(pts1[ok] - pts0[ok], axis=1)))
        return tries.solve(cfg, self._pnp, attempt, pts0[ok], pts1[ok], z[ok], has_z[ok],
                           invert_se3(hypothesis) if hypothesis is not None else None, depth, k_w, gray.shape[::-1])

    def _describe(self, gray: np.ndarray, gray_full: np.ndarray) -> Features:
        """Features of a frame at working-resolution pixels; found on the caller's full image where
        ``descriptor_full_res`` (see the config)."""
        if not self.config.descriptor_full_res or gray_full.shape == gray.shape:
            return self._matcher.describe(gray)
        f = self._matcher.describe(gray_full)
        scale = np.array([gray.shape[1] / gray_full.shape[1], gray.shape[0] / gray_full.shape[0]], np.float32)
        return Features((f.uv + 0.5) * scale - 0.5, f.desc)       # pixel centres as cv2.resize maps them

    def _descriptor_attempt(self, gray: np.ndarray, gray_full: np.ndarray, k_w: np.ndarray,
                            depth: np.ndarray | None, prior_ref_cur: np.ndarray) -> tries.Attempt:
        """Descriptor matches reference -> current, searched around where the prior puts each feature."""
        cfg = self.config
        if self._ref_features is None:
            self._ref_features = self._describe(self._prev_gray, self._prev_full)
        self._cur_features = self._describe(gray, gray_full)
        wh = gray.shape[::-1]
        prior = invert_se3(prior_ref_cur)
        for window_prior in (prior, None):
            # Within the prior's window first; where that gives no motion (the prior was wrong: a
            # turn reversed, a net off its domain), over the whole image.
            uv0, uv1, z, has_z, guided = tries.descriptor_correspondences(
                self._matcher, self._ref_features, self._cur_features, self._prev_depth,
                lambda d, uv: sample_depth(d, uv, wh, cfg.min_depth, cfg.max_depth), k_w, window_prior)
            attempt = tries.solve(cfg, self._pnp, tries.Attempt("descriptor"), uv0, uv1, z, has_z, prior, depth,
                                  k_w, wh)
            attempt.extra["descriptor_guided"] = guided
            if attempt.result is not None or not guided:
                break
        return attempt
