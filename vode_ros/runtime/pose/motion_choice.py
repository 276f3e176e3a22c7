"""Which geometric motion a frame gets once PnP has found one: PnP's own, the essential matrix's
rotation and direction with PnP's length (monocular), or PnP refined on both directions
(two_view, with this frame's depth too). Each returns None where PnP's motion is kept.

numpy + OpenCV only; no ROS, no torch.
"""
from __future__ import annotations

import math

import numpy as np

from vode_ros.core.geometry import invert_se3
from vode_ros.runtime.pose.config import PoseEstimatorConfig
from vode_ros.runtime.pose.essential import essential_motion, length_from_depth, translation_parallax
from vode_ros.runtime.pose.tracking import backproject, project, sample_depth
from vode_ros.runtime.pose.two_view import refine_two_view
from vode_ros.runtime.pose.validators import rotation_angle


def essential_choice(cfg: PoseEstimatorConfig, uv_prev: np.ndarray, uv_cur: np.ndarray, z_prev: np.ndarray,
                     has_z: np.ndarray, k_w: np.ndarray, p3_inliers: np.ndarray, t_pnp: np.ndarray, extra: dict
                     ) -> np.ndarray | None:
    """Tracked corners (N, 2) in both frames with the previous frame's depth ((N,) m, (N,) valid)
    and the PnP solution (its inlier points (M, 3), T_cur_prev) -> T_cur_prev with the essential
    matrix's rotation and direction and the depth's length (``essential_length``: PnP's, or each
    inlier's weighted by its parallax), or None where PnP's motion is kept (see essential.py).
    ``extra`` gets the figures."""
    parallax = translation_parallax(p3_inliers, t_pnp, k_w)
    extra["parallax_px"] = parallax
    if parallax < cfg.essential_min_parallax_px:
        return None
    res = essential_motion(uv_prev, uv_cur, k_w, cfg.essential_threshold_px, cfg.min_inliers)
    if res is None:
        return None
    out = np.eye(4)
    out[:3, :3] = res.rotation
    length = float(np.linalg.norm(t_pnp[:3, 3]))
    if cfg.essential_length == "parallax":
        use = res.inliers & has_z
        by_points = length_from_depth(uv_prev[use], uv_cur[use], z_prev[use], res.rotation, res.direction, k_w,
                                      cfg.min_inliers)
        if by_points is not None:
            extra["length_pnp_m"], length = length, by_points
    out[:3, 3] = res.direction * length
    if math.degrees(rotation_angle(invert_se3(out) @ t_pnp)) > cfg.essential_max_rot_diff_deg:
        return None
    extra["essential_inliers"] = int(res.inliers.sum())
    return out


def two_view_choice(cfg: PoseEstimatorConfig, p3_prev: np.ndarray, uv_prev: np.ndarray, uv_cur: np.ndarray,
                    depth_cur: np.ndarray, work_wh: tuple[int, int], k_w: np.ndarray, t_cur_prev: np.ndarray,
                    extra: dict) -> np.ndarray | None:
    """PnP inliers (N, 3) lifted in the previous frame and their (N, 2) pixels in both frames (at
    the working resolution ``work_wh``), with this frame's depth -> T_prev_cur refined on both
    directions, or None (too few)."""
    z1, has1 = sample_depth(depth_cur, uv_cur, work_wh, cfg.min_depth, cfg.max_depth)
    t_prev_cur = invert_se3(t_cur_prev)
    p3_cur = backproject(uv_cur[has1], z1[has1], k_w)
    # The current depth is a new measurement RANSAC never saw: gate it at the PnP pose.
    uv_b, zb = project(p3_cur, t_prev_cur, k_w)
    ok = (zb > 1e-3) & (np.linalg.norm(uv_b - uv_prev[has1], axis=1) < cfg.ransac_threshold)
    extra["two_view_points"] = int(ok.sum())
    if ok.sum() < cfg.min_inliers:
        return None
    t, _ = refine_two_view(t_prev_cur, p3_prev, uv_cur, p3_cur[ok], uv_prev[has1][ok], k_w,
                           huber_px=cfg.two_view_huber_px)
    return t if np.all(np.isfinite(t)) else None
