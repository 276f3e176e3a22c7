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
from dataclasses import dataclass, field

import numpy as np

from vode_ros.core.geometry import invert_se3, scale_intrinsics
from vode_ros.runtime.direct_refine import refine_pose
from vode_ros.runtime.pose.essential import essential_motion, translation_parallax
from vode_ros.runtime.pose.pnp import PnpConfig, inflate_for_inlier_ratio, solve_pnp
from vode_ros.runtime.pose.tracking import (TrackingConfig, backproject, detect_corners, project, sample_depth,
                                            track)
from vode_ros.runtime.pose.two_view import refine_two_view

POSE_SOURCES = ("net", "geometric", "hybrid")


@dataclass(frozen=True)
class PoseEstimatorConfig:
    pose_source: str = "hybrid"          # net | geometric | hybrid
    work_width: int = 640                # tracking resolution (images wider are downscaled); 0 = as given
    # 400 corners and no forward-backward round trip (fb_threshold 0; RANSAC rejects the bad tracks):
    # as accurate as 600 with the check (KITTI 06 / 00 stereo ATE-5 0.0095 / 0.0155 m vs 0.0095 /
    # 0.0156; TUM fr1_xyz 300 frames Sim(3) 0.036 vs 0.037 m) at about 60 % of the time.
    max_features: int = 400
    # LK window at the working resolution, px. 15 rather than OpenCV's 21: on the KITTI 06 / 00 clips
    # (stereo) as accurate (ATE-5 0.0095 / 0.0156 m vs 0.0102 / 0.0160) and ~30 % faster.
    lk_window: int = 15
    lk_levels: int = 3                   # LK pyramid levels above the base
    fb_threshold: float = 0.0            # px at the working resolution (LK forward-backward check); 0 = off
    ransac_threshold: float = 1.5        # px at the working resolution
    ransac_iterations: int = 100
    min_inliers: int = 30                # fewer: fall back to the net
    min_inlier_ratio: float = 0.25       # lower: fall back to the net
    min_depth: float = 0.1               # m: depth outside [min_depth, max_depth] is not used
    max_depth: float = 80.0
    net_flow_guess: bool = True          # hybrid: where unguided LK loses half the corners, retry from the net
    # Keyframes: track the corners of a reference frame kept while it tracks well, instead of the
    # previous frame's, so a camera that stays over the same scene does not add up the error of
    # every frame pair. A new reference when the inliers fall below keyframe_min_ratio of those
    # of the first frame tracked from it (or below 2 x min_inliers), and after a fallback.
    # Measured (pose_bench, geometric): TUM fr1_xyz with Kinect depth, Sim(3) ATE 0.064 -> 0.028 m
    # (ratio 0.5: 0.046, 0.3: 0.040); KITTI 06 stereo worse, ATE-5 0.0095 -> 0.0215 m, 7 fallbacks
    # (driving forward, old corners leave the view and the far ones lose precision): off by
    # default, on for a camera that hovers over one scene (handheld, indoor).
    keyframes: bool = False
    keyframe_min_ratio: float = 0.2
    # Stereo / RGB-D (depth given with the step): refine on both directions of the inlier
    # correspondences, each frame's points into the other image (see two_view.py). Off: measured
    # within noise (KITTI 00 0-99 stereo ATE-5 0.0161 -> 0.0160 m, KITTI 06 0.0107 -> 0.0104 m,
    # TUM fr1_xyz Sim(3) ATE 0.072 -> 0.073 m): the depth of one frame is not what limits the motion.
    two_view: bool = False
    two_view_huber_px: float = 1.0       # px at the working resolution
    # Monocular (the depth net's depth): rotation and direction of travel from the essential
    # matrix of the tracked corners (essential.py, DF-VO), the length from PnP on the depth, where
    # the translation gives at least essential_min_parallax_px of parallax and the rotation agrees
    # with PnP's within essential_max_rot_diff_deg; else the PnP motion. Measured (pose_bench, mono
    # geometric, the shipped model's depth), ATE-5 PnP -> essential: held-out KITTI 06 0.125 ->
    # 0.053 m, KITTI 07 0.029 -> 0.019, KITTI 00 100-199 0.030 -> 0.025; end drift unchanged
    # (9.7 -> 9.3, 3.9 -> 3.8, 10.9 -> 11.5 %: the length is the depth's either way). Scaling by
    # the median ratio of the depth to the triangulated depth instead (DF-VO's) gave 4.0, 11.0,
    # 16.9 %: shorter on every sequence, so the 06 figure was a cancellation, not a fix.
    essential: bool = False
    essential_threshold_px: float = 0.5  # px at the working resolution (robust estimator, Sampson distance)
    essential_min_parallax_px: float = 2.0
    essential_max_rot_diff_deg: float = 2.0
    # Monocular: the length of each geometric motion comes from the depth net's depth of one frame,
    # whose scale wobbles from frame to frame. length_smoothing = a in (0, 1): the speed (length / dt)
    # goes through an alpha-beta filter (speed and its rate of change; gain alpha = 1 - a, beta =
    # alpha^2 / (2 - alpha), Benedict-Bordner), and the motion keeps its direction and rotation with
    # length speed * dt. The rate term is why not a plain running average: that lags behind a car
    # that brakes (0.23 s at a = 0.7, metres too far at every stop: KITTI 07 Sim(3) ATE 0.36 -> 0.74
    # m), the filter follows a steady change of speed without lag (0.43 m). 0 = off (stereo and
    # sensor depth measure the length well).
    length_smoothing: float = 0.0
    refine: bool = False                 # hybrid / fallback: direct photometric refinement after
    refine_width: int = 416              # resolution of the direct refinement
    refine_max_points: int = 3000
    # Covariance of the net's motion (std), used for 'net' and 'fallback': the pose net has no
    # uncertainty output; these say "dead reckoning at best" to a fusion filter.
    net_std_xyz: float = 0.5             # m per frame
    net_std_rpy: float = 0.05            # rad per frame
    cov_floor_xyz: float = 0.01          # m, added to the PnP covariance (depth errors, see pnp.py)
    cov_floor_rpy: float = 0.001         # rad

    def __post_init__(self):
        if self.pose_source not in POSE_SOURCES:
            raise ValueError(f"pose_source must be one of {', '.join(POSE_SOURCES)}, got {self.pose_source!r}")
        if self.min_inliers < 6:
            raise ValueError(f"min_inliers must be >= 6 (PnP has 6 unknowns), got {self.min_inliers}")
        if not 0 < self.min_depth < self.max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got {self.min_depth}, {self.max_depth}")
        if not 0 <= self.length_smoothing < 1:
            raise ValueError(f"length_smoothing must be in [0, 1), got {self.length_smoothing}")

    def tracking(self) -> TrackingConfig:
        return TrackingConfig(max_features=self.max_features, fb_threshold=self.fb_threshold, win_size=self.lk_window,
                              levels=self.lk_levels)

    def pnp(self) -> PnpConfig:
        return PnpConfig(ransac_threshold=self.ransac_threshold, ransac_iterations=self.ransac_iterations,
                         min_inliers=self.min_inliers, cov_floor_xyz=self.cov_floor_xyz,
                         cov_floor_rpy=self.cov_floor_rpy)

    def net_covariance(self) -> np.ndarray:
        return np.diag([self.net_std_xyz ** 2] * 3 + [self.net_std_rpy ** 2] * 3)


@dataclass
class PoseEstimate:
    stamp: float
    t_prev_cur: np.ndarray               # (4, 4) current camera in the previous camera (metres)
    covariance: np.ndarray               # (6, 6) x y z roll pitch yaw, current camera frame
    source: str                          # start | net | geometric | hybrid | fallback
    tracked: int = 0                     # corners tracked (forward-backward consistent)
    with_depth: int = 0                  # of those, with valid depth (the PnP input)
    inliers: int = 0
    inlier_ratio: float = 0.0            # inliers / with_depth
    rmse_px: float = float("nan")        # inlier reprojection RMSE at the working resolution
    refined: bool = False                # direct refinement accepted
    reason: str = ""                     # why a fallback happened
    dt: float = 0.0                      # s since the previous frame
    time_ms: float = 0.0                 # time spent in step()
    extra: dict = field(default_factory=dict)


def _check_image(image: np.ndarray) -> np.ndarray:
    import cv2

    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if img.ndim != 2 or min(img.shape) < 16:
        raise ValueError(f"image must be (H, W) grey or (H, W, 3) RGB of at least 16x16, got shape {img.shape}")
    return np.ascontiguousarray(img)


def _check_k(k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, np.float64)
    if k.shape != (3, 3) or not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ValueError(f"K must be a finite (3, 3) pinhole matrix with fx, fy > 0, got {k.tolist()}")
    return k


def _check_depth(depth: np.ndarray | None) -> np.ndarray | None:
    if depth is None:
        return None
    d = np.asarray(depth)
    if d.ndim == 3 and d.shape[0] == 1:
        d = d[0]
    if d.ndim == 3 and d.shape[2] == 1:
        d = d[:, :, 0]
    if d.ndim != 2 or min(d.shape) < 2 or not np.issubdtype(d.dtype, np.number):
        raise ValueError(f"depth must be a numeric (H, W) map in metres, got shape {d.shape}, dtype {d.dtype}")
    return d.astype(np.float32, copy=False)


def _check_motion(t: np.ndarray | None) -> np.ndarray | None:
    if t is None:
        return None
    t = np.asarray(t, np.float64)
    if t.shape != (4, 4) or not np.all(np.isfinite(t)):
        raise ValueError(f"net_t_prev_cur must be a finite (4, 4) transform, got shape {t.shape}")
    return t


def rotation_angle(t: np.ndarray) -> float:
    """Rotation angle (rad) of a (4, 4) or (3, 3)."""
    return float(np.arccos(np.clip((np.trace(t[:3, :3]) - 1) / 2, -1.0, 1.0)))


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
        self._speed: float | None = None               # length_smoothing: filtered speed, m/s
        self._speed_rate = 0.0                         # and its rate of change, m/s^2
        # The reference frame the corners come from (_prev_gray, _prev_pts, _prev_depth, _prev_full):
        # the previous frame, or with keyframes an older one. _t_ref_prev: the previous frame's pose
        # in it (identity when the reference is the previous frame).
        self._ref_stamp: float | None = None
        self._t_ref_prev = np.eye(4)
        self._t_ref_cur: np.ndarray | None = None       # set by _estimate when geometry worked
        self._ref_inliers0 = 0                          # inliers of the first frame tracked from the reference

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
        self._prev_depth = _check_depth(depth)
        return True

    def reconfigure(self, config: PoseEstimatorConfig) -> None:
        """Take new settings between steps; the sequence goes on unless the working resolution changed."""
        restart = config.work_width != self.config.work_width    # the kept frame is at the old resolution
        self.config = config
        self._tracking = config.tracking()
        self._pnp = config.pnp()
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
        t, info = refine_pose(prev, cur, depth, k_r, t_prev_cur, levels=levels,
                              max_points=self.config.refine_max_points)
        return t, info.used

    def _essential(self, uv_prev: np.ndarray, uv_cur: np.ndarray, k_w: np.ndarray, p3_inliers: np.ndarray,
                   t_pnp: np.ndarray, est: PoseEstimate) -> np.ndarray | None:
        """Tracked corners (N, 2) in both frames and the PnP solution (its inlier points (M, 3),
        T_cur_prev) -> T_cur_prev with the essential matrix's rotation and direction and PnP's
        length, or None where PnP's motion is kept (see essential.py)."""
        cfg = self.config
        parallax = translation_parallax(p3_inliers, t_pnp, k_w)
        est.extra["parallax_px"] = parallax
        if parallax < cfg.essential_min_parallax_px:
            return None
        res = essential_motion(uv_prev, uv_cur, k_w, cfg.essential_threshold_px, cfg.min_inliers)
        if res is None:
            return None
        out = np.eye(4)
        out[:3, :3] = res.rotation
        out[:3, 3] = res.direction * np.linalg.norm(t_pnp[:3, 3])
        if math.degrees(rotation_angle(invert_se3(out) @ t_pnp)) > cfg.essential_max_rot_diff_deg:
            return None
        est.extra["essential_inliers"] = int(res.inliers.sum())
        return out

    def _two_view(self, p3_prev: np.ndarray, uv_prev: np.ndarray, uv_cur: np.ndarray, depth_cur: np.ndarray,
                  k_w: np.ndarray, t_cur_prev: np.ndarray, est: PoseEstimate) -> np.ndarray | None:
        """PnP inliers (N, 3) lifted in the previous frame and their (N, 2) pixels in both frames,
        with this frame's depth -> T_prev_cur refined on both directions, or None (too few)."""
        cfg = self.config
        z1, has1 = sample_depth(depth_cur, uv_cur, (self._prev_gray.shape[1], self._prev_gray.shape[0]),
                                cfg.min_depth, cfg.max_depth)
        t_prev_cur = invert_se3(t_cur_prev)
        p3_cur = backproject(uv_cur[has1], z1[has1], k_w)
        # The current depth is a new measurement RANSAC never saw: gate it at the PnP pose.
        uv_b, zb = project(p3_cur, t_prev_cur, k_w)
        ok = (zb > 1e-3) & (np.linalg.norm(uv_b - uv_prev[has1], axis=1) < cfg.ransac_threshold)
        est.extra["two_view_points"] = int(ok.sum())
        if ok.sum() < cfg.min_inliers:
            return None
        t, _ = refine_two_view(t_prev_cur, p3_prev, uv_cur, p3_cur[ok], uv_prev[has1][ok], k_w,
                               huber_px=cfg.two_view_huber_px)
        return t if np.all(np.isfinite(t)) else None

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
        gray_full = _check_image(image)
        k = _check_k(k)
        depth = _check_depth(depth)
        net = _check_motion(net_t_prev_cur)
        size = (gray_full.shape[1], gray_full.shape[0])
        if cfg.pose_source == "net" and net is None and self.started:
            raise ValueError("pose_source 'net' needs net_t_prev_cur on every frame after the first")
        gray, k_w = self._work(gray_full, k)

        if (not self.started or self._prev_size != size
                or (self._prev_stamp is not None and stamp < self._prev_stamp)):
            est = PoseEstimate(stamp, np.eye(4), np.zeros((6, 6)), "start")
            self._speed, self._speed_rate = None, 0.0     # a new sequence: no speed carried over
        else:
            est = self._estimate(gray, gray_full, k, k_w, net, depth)
            est.stamp, est.dt = stamp, stamp - self._prev_stamp
            self._smooth_length(est)
            self._last_motion = est.t_prev_cur.copy()

        # Keep what the next step needs: corners and depth of the reference frame.
        if self._keeps_reference(est):
            self._t_ref_prev = self._t_ref_cur
        else:
            if cfg.pose_source != "net":
                self._prev_pts = detect_corners(gray, self._tracking)
            self._prev_gray, self._prev_full, self._prev_depth = gray, gray_full, depth
            self._ref_stamp, self._t_ref_prev, self._ref_inliers0 = stamp, np.eye(4), 0
        self._prev_stamp, self._prev_size = stamp, size
        est.time_ms = (time.perf_counter() - t0) * 1e3
        return est

    def _smooth_length(self, est: PoseEstimate) -> None:
        """length_smoothing on a geometric motion (see the config). Not with keyframes: there the
        motion is a difference of two poses in the reference frame, not one measurement."""
        a = self.config.length_smoothing
        if a <= 0 or self.config.keyframes or est.source not in ("geometric", "hybrid") or est.dt <= 0:
            return
        t = est.t_prev_cur[:3, 3]
        length = float(np.linalg.norm(t))
        if length < 1e-9:
            return
        measured = length / est.dt
        if self._speed is None:
            self._speed, self._speed_rate = measured, 0.0
        else:
            alpha = 1.0 - a
            beta = alpha * alpha / (2.0 - alpha)
            predicted = self._speed + self._speed_rate * est.dt
            residual = measured - predicted
            self._speed = predicted + alpha * residual
            self._speed_rate += beta * residual / est.dt
            if self._speed < 0.0:                  # braked to a stop: no speed below zero, no rate left
                self._speed, self._speed_rate = 0.0, 0.0
        est.t_prev_cur[:3, 3] = t * (self._speed * est.dt / length)
        est.extra["length_measured_m"] = length

    def _keeps_reference(self, est: PoseEstimate) -> bool:
        """Keyframes: whether the next step still tracks from the current reference frame."""
        cfg = self.config
        if not cfg.keyframes or est.source not in ("geometric", "hybrid") or self._t_ref_cur is None:
            return False
        if self._ref_inliers0 == 0:
            self._ref_inliers0 = est.inliers
        return est.inliers >= max(2 * cfg.min_inliers, cfg.keyframe_min_ratio * self._ref_inliers0)

    def _estimate(self, gray: np.ndarray, gray_full: np.ndarray, k: np.ndarray, k_w: np.ndarray,
                  net: np.ndarray | None, depth: np.ndarray | None) -> PoseEstimate:
        self._t_ref_cur = None
        cfg = self.config
        if cfg.pose_source == "net":
            return PoseEstimate(0.0, net.copy(), cfg.net_covariance(), "net")
        hybrid = cfg.pose_source == "hybrid"
        est = PoseEstimate(0.0, np.eye(4), np.zeros((6, 6)), "geometric" if not hybrid else "hybrid")
        pts0 = self._prev_pts
        result = None
        older_ref = self._ref_stamp != self._prev_stamp                  # keyframe before the previous frame
        # Predicted motion reference -> current: the net's (or constant velocity) after the
        # reference -> previous motion. Guides LK and RANSAC where the reference is older.
        step_guess = net if net is not None else (self._last_motion if older_ref else None)
        pred_ref_cur = self._t_ref_prev @ step_guess if step_guess is not None else None
        if self._prev_depth is None:
            est.reason = "no depth for the previous frame"
        elif pts0 is None or len(pts0) < cfg.min_inliers:
            est.reason = f"{0 if pts0 is None else len(pts0)} corners on the previous frame (low texture)"
        else:
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
                        est.extra["net_guided_tracking"] = True
            est.tracked = int(ok.sum())
            use = ok & has_z
            est.with_depth = int(use.sum())
            if est.with_depth < cfg.min_inliers:
                est.reason = f"{est.with_depth} tracked corners with depth < min_inliers {cfg.min_inliers}"
            else:
                p3 = backproject(pts0[use], z[use], k_w)
                hypothesis = pred_ref_cur if (hybrid and net is not None) or older_ref else None
                result = solve_pnp(p3, pts1[use], k_w, self._pnp,
                                   invert_se3(hypothesis) if hypothesis is not None else None)
                if result is None:
                    est.reason = f"PnP found fewer than {cfg.min_inliers} inliers"
                else:
                    est.inliers = int(result.inliers.sum())
                    est.inlier_ratio = est.inliers / est.with_depth
                    est.rmse_px = result.rmse
                    if est.inlier_ratio < cfg.min_inlier_ratio:
                        est.reason = f"inlier ratio {est.inlier_ratio:.2f} < {cfg.min_inlier_ratio}"
                        result = None
                    elif cfg.two_view and depth is not None:
                        t_two = self._two_view(p3[result.inliers], pts0[use][result.inliers],
                                               pts1[use][result.inliers], depth, k_w, result.t_cur_prev, est)
                        if t_two is not None:
                            result.t_cur_prev = invert_se3(t_two)
                    if result is not None and cfg.essential:
                        # The covariance stays PnP's: the same corners, and the length is PnP's.
                        t_e = self._essential(pts0[ok], pts1[ok], k_w, p3[result.inliers], result.t_cur_prev, est)
                        if t_e is not None:
                            result.t_cur_prev = t_e
        if result is not None:
            self._t_ref_cur = invert_se3(result.t_cur_prev)
            if cfg.refine and hybrid and self._prev_depth is not None:
                self._t_ref_cur, est.refined = self._refine(self._prev_full, gray_full, k, self._t_ref_cur)
            # With a keyframe the covariance is that of the whole reference -> current motion:
            # an over-estimate for the last step (conservative for a fusion filter).
            est.t_prev_cur = invert_se3(self._t_ref_prev) @ self._t_ref_cur
            est.covariance = inflate_for_inlier_ratio(result.covariance, est.inlier_ratio)
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
