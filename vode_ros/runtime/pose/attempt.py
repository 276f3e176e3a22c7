"""One geometric try at a frame pair's motion: correspondences (LK tracks or descriptor matches)
lifted with the reference frame's depth -> PnP-RANSAC, the inlier-ratio check, the optional
two-view refinement and essential-matrix rotation; and the choice among tries by plausibility.

The estimator (estimator.py) makes one try per matcher it runs and keeps the first plausible
one (see plausibility.py); these functions hold what every try shares.

numpy + OpenCV only; no ROS, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vode_ros.core.geometry import invert_se3
from vode_ros.runtime.pose.config import PoseEstimatorConfig
from vode_ros.runtime.pose.descriptor_matching import DescriptorMatcher, Features, predict_positions
from vode_ros.runtime.pose.motion_choice import essential_choice, two_view_choice
from vode_ros.runtime.pose.plausibility import Verdict
from vode_ros.runtime.pose.pnp import PnpConfig, PnpResult, inflate_for_inlier_ratio, solve_pnp
from vode_ros.runtime.pose.tracking import backproject


@dataclass
class Attempt:
    matcher: str                          # lk | descriptor
    result: PnpResult | None = None       # its t_cur_prev: reference -> current (after two-view / essential)
    tracked: int = 0                      # correspondences found
    with_depth: int = 0                   # of those, with the reference's depth
    inliers: int = 0
    inlier_ratio: float = 0.0
    reason: str = ""                      # why no motion
    verdict: Verdict | None = None        # the plausibility of its step motion
    extra: dict = field(default_factory=dict)

    @property
    def covariance(self) -> np.ndarray:
        return inflate_for_inlier_ratio(self.result.covariance, self.inlier_ratio)


def solve(cfg: PoseEstimatorConfig, pnp: PnpConfig, attempt: Attempt, uv0: np.ndarray, uv1: np.ndarray,
          z: np.ndarray, has_z: np.ndarray, hypothesis_cur_ref: np.ndarray | None, depth_cur: np.ndarray | None,
          k_w: np.ndarray, work_wh: tuple[int, int]) -> Attempt:
    """(N, 2) correspondences reference -> current at the working resolution, the reference's
    depth at them ((N,) m, (N,) valid), a RANSAC hypothesis T_cur_ref -> ``attempt`` filled."""
    attempt.tracked = len(uv0)
    attempt.with_depth = int(has_z.sum())
    if attempt.with_depth < cfg.min_inliers:
        attempt.reason = f"{attempt.with_depth} {attempt.matcher} correspondences with depth < min_inliers {cfg.min_inliers}"
        return attempt
    p3 = backproject(uv0[has_z], z[has_z], k_w)
    result = solve_pnp(p3, uv1[has_z], k_w, pnp, hypothesis_cur_ref)
    if result is None:
        attempt.reason = f"PnP found fewer than {cfg.min_inliers} inliers ({attempt.matcher})"
        return attempt
    attempt.inliers = int(result.inliers.sum())
    attempt.inlier_ratio = attempt.inliers / attempt.with_depth
    if attempt.inlier_ratio < cfg.min_inlier_ratio:
        attempt.reason = f"inlier ratio {attempt.inlier_ratio:.2f} < {cfg.min_inlier_ratio} ({attempt.matcher})"
        return attempt
    if cfg.two_view and depth_cur is not None:
        inl = result.inliers
        t_two = two_view_choice(cfg, p3[inl], uv0[has_z][inl], uv1[has_z][inl], depth_cur, work_wh, k_w,
                                result.t_cur_prev, attempt.extra)
        if t_two is not None:
            result.t_cur_prev = invert_se3(t_two)
    if cfg.essential:
        # The covariance stays PnP's: the same correspondences, and the length is PnP's (by default;
        # essential_length parallax: each inlier's, see motion_choice.py).
        t_e = essential_choice(cfg, uv0, uv1, z, has_z, k_w, p3[result.inliers], result.t_cur_prev, attempt.extra)
        if t_e is not None:
            result.t_cur_prev = t_e
    attempt.result = result
    return attempt


def descriptor_correspondences(matcher: DescriptorMatcher, ref: Features, cur: Features, depth_ref: np.ndarray,
                               sample, k_w: np.ndarray, prior_cur_ref: np.ndarray | None
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """Matches of the reference's features in the current frame, guided by the prior T_cur_ref
    (None: the whole image) -> ((M, 2) reference px, (M, 2) current px, (M,) depth, (M,) valid,
    whether the prior's window held). ``sample(depth, uv)`` -> (depth, valid) at the working resolution."""
    z, has = sample(depth_ref, ref.uv)
    predicted = None
    if prior_cur_ref is not None and len(ref.uv):
        predicted = predict_positions(ref.uv.astype(np.float64), np.where(has, z, np.nan), k_w, prior_cur_ref)
    i, j, guided = matcher.match(ref, cur, predicted)
    return ref.uv[i], cur.uv[j], z[i], has[i], guided


def choose(attempts: list[Attempt], use_plausibility: bool) -> tuple[Attempt | None, str]:
    """The try whose motion is taken -> (attempt or None, why none). The first with a motion that
    is plausible (or any motion, without the check)."""
    reasons = []
    for a in attempts:
        if a.result is None:
            reasons.append(a.reason)
        elif not use_plausibility or a.verdict is None or a.verdict.plausible:
            return a, ""
        else:
            v = a.verdict
            reasons.append(f"{a.matcher}: implausible length {v.length:.3f} m (recent motion {v.expected:.3f} m, "
                           f"allowed ±{v.allowed:.3f})")
    return None, "; ".join(r for r in reasons if r)
