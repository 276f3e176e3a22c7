"""The pose estimator's settings (with the measurements behind each default) and its per-frame result.

numpy only; no ROS, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vode_ros.runtime.pose.descriptor_matching import DESCRIPTORS, DescriptorConfig
from vode_ros.runtime.pose.plausibility import PlausibilityConfig
from vode_ros.runtime.pose.pnp import PnpConfig
from vode_ros.runtime.pose.tracking import TrackingConfig

POSE_SOURCES = ("net", "geometric", "hybrid")
MATCHERS = ("auto", "lk", "descriptor")
ESSENTIAL_LENGTHS = ("pnp", "parallax")


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
    # The length along the essential direction: PnP's, or each inlier's weighted by its parallax
    # (essential.length_from_depth; too long with the shipped depth net, docs/odometry.md).
    essential_length: str = "pnp"        # pnp | parallax
    # Monocular: the length of each geometric motion comes from the depth net's depth of one frame,
    # whose scale wobbles from frame to frame. length_smoothing = a in (0, 1): the speed (length / dt)
    # goes through an alpha-beta filter (speed and its rate of change; gain alpha = 1 - a, beta =
    # alpha^2 / (2 - alpha), Benedict-Bordner), and the motion keeps its direction and rotation with
    # length speed * dt. The rate term is why not a plain running average: that lags behind a car
    # that brakes (0.23 s at a = 0.7, metres too far at every stop: KITTI 07 Sim(3) ATE 0.36 -> 0.74
    # m), the filter follows a steady change of speed without lag (0.43 m). 0 = off (stereo and
    # sensor depth measure the length well).
    length_smoothing: float = 0.0
    # s: the frame interval a is meant for, the prediction weighing a^(dt / this) at dt; 0 = a per
    # frame whatever dt. 0.1 (KITTI's rate) against 0, leave-one-sequence-out over the KITTI mono
    # rows at strides 1-4: chosen only for 07 (end drift better on 11 of 16 rows, ATE-5 worse on all).
    length_smoothing_dt: float = 0.0
    # Correspondences (descriptor_matching.py): 'lk' tracks Shi-Tomasi corners by pyramidal LK (small
    # motions, sub-pixel); 'descriptor' matches ORB / SIFT features guided by the motion prior (any
    # motion the frames share a view across); 'auto' tracks by LK and matches descriptors where LK
    # gives no motion or an implausible one (a turn or a dropped frame beyond LK's reach).
    matcher: str = "auto"
    descriptor: str = "orb"              # orb | sift
    descriptor_features: int = 2000
    descriptor_window_px: float = 40.0   # guided search radius at the working resolution
    # Descriptors found on the caller's image (positions mapped to the working resolution) rather than
    # on the downscaled one: at the working resolution a long step keeps few near features, so the
    # length rests on far points, whose depth the depth net compresses (KITTI 06 mono at stride 3,
    # length / truth per frame 0.87 at 640 px, 1.00 on the full image). Chosen leave-one-sequence-out
    # over the KITTI sequences (docs/odometry.md): 06 mono stride 3 end drift 9.1 -> 3.8 %, stride 4
    # 19.7 -> 15.5 %; 06 stereo stride 4 1.46 -> 0.72 %. Images no wider than work_width: no change.
    descriptor_full_res: bool = True
    # auto: also match descriptors, and prefer them, where LK's median track is longer than this (px
    # at the working resolution; 0 = only where LK gives no motion): past a few tens of pixels LK
    # keeps the far, slow corners and loses the near ones that fix the translation.
    descriptor_flow_px: float = 0.0
    # A motion whose length disagrees with the recent speed beyond what the speed change, an
    # acceleration of plausible_max_accel and 3 sigma of its own covariance allow is not taken
    # (plausibility.py): another matcher is tried, else the frame falls back.
    plausibility: bool = True
    plausible_max_accel: float = 3.0     # m/s²
    plausible_speed_change: float = 1.0  # relative change of speed between two frames
    plausible_net: bool = True           # the pose net's length held to the recent speed too (plausibility.py)
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
        if self.matcher not in MATCHERS:
            raise ValueError(f"matcher must be one of {', '.join(MATCHERS)}, got {self.matcher!r}")
        if self.essential_length not in ESSENTIAL_LENGTHS:
            raise ValueError(f"essential_length must be one of {', '.join(ESSENTIAL_LENGTHS)}, "
                             f"got {self.essential_length!r}")
        if self.descriptor not in DESCRIPTORS:
            raise ValueError(f"descriptor must be one of {', '.join(DESCRIPTORS)}, got {self.descriptor!r}")

    def tracking(self) -> TrackingConfig:
        return TrackingConfig(max_features=self.max_features, fb_threshold=self.fb_threshold, win_size=self.lk_window,
                              levels=self.lk_levels)

    def pnp(self) -> PnpConfig:
        return PnpConfig(ransac_threshold=self.ransac_threshold, ransac_iterations=self.ransac_iterations,
                         min_inliers=self.min_inliers, cov_floor_xyz=self.cov_floor_xyz,
                         cov_floor_rpy=self.cov_floor_rpy)

    def descriptors(self) -> DescriptorConfig:
        return DescriptorConfig(kind=self.descriptor, max_features=self.descriptor_features,
                                window_px=self.descriptor_window_px, min_guided=self.min_inliers)

    def plausible(self) -> PlausibilityConfig:
        return PlausibilityConfig(max_speed_change=self.plausible_speed_change, max_accel=self.plausible_max_accel)

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
