"""Rotation and direction of travel from the essential matrix of tracked corners (monocular).

With a monocular camera the depth comes from the depth net, and its errors of *shape* (a
smoothed ground ramp where the scene has a wall) go straight into a PnP motion: the lifted 3D
points are wrong, and so is the motion that projects them onto the tracked corners. The
essential matrix needs no depth: rotation and the direction of translation come from the 2D
correspondences alone (five-point solver in a robust estimator, cv2.findEssentialMat +
recoverPose), as in DF-VO (Zhan et al. 2020). The estimator is OpenCV's USAC_ACCURATE
(graph-cut RANSAC with local optimisation; plain RANSAC where OpenCV predates 4.5.1): with the
shipped model's depth, mono hybrid, ATE-5 on the model's training sequences KITTI 07 / 00
100-199 / 00 14-99 went from 0.0183 / 0.0236 / 0.0276 m (RANSAC, 1 px) to 0.0124 / 0.0223 /
0.0136 m (0.5 px); MAGSAC++ was as good, LMedS a little worse and 2.5x slower. The length of
the translation still has to come from the depth; the caller keeps PnP's (see the estimator for
what was measured).

Where the translation gives too little parallax the essential matrix is ill-posed (pure rotation,
standing still); the caller keeps the PnP motion there (``translation_parallax``).

Conventions as pnp.py: T_cur_prev maps previous-camera points into the current camera.
numpy + OpenCV only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vode_ros.core.geometry import project as geometry_project
from vode_ros.runtime.pose.tracking import backproject, project


@dataclass
class EssentialResult:
    rotation: np.ndarray              # (3, 3) R_cur_prev
    direction: np.ndarray             # (3,) unit translation of T_cur_prev
    inliers: np.ndarray               # (N,) bool over the correspondences given


def translation_parallax(pts3d_prev: np.ndarray, t_cur_prev: np.ndarray, k: np.ndarray) -> float:
    """Median pixel shift that the translation of T_cur_prev alone causes at (N, 3) previous-camera points.

    The corners' displacement minus what the rotation explains: the baseline the essential
    matrix sees. Pure rotation gives 0 whatever the flow."""
    rot_only = t_cur_prev.copy()
    rot_only[:3, 3] = 0.0
    uv_full, z_full = project(pts3d_prev, t_cur_prev, k)
    uv_rot, z_rot = project(pts3d_prev, rot_only, k)
    ok = (z_full > 1e-3) & (z_rot > 1e-3)
    if not ok.any():
        return 0.0
    return float(np.median(np.linalg.norm(uv_full[ok] - uv_rot[ok], axis=1)))


def essential_motion(uv_prev: np.ndarray, uv_cur: np.ndarray, k: np.ndarray, threshold_px: float = 0.5,
                     min_inliers: int = 30, confidence: float = 0.999) -> EssentialResult | None:
    """Rotation and unit translation of T_cur_prev from (N, 2) corners in the previous and current
    image (pixels, K (3, 3)); None where RANSAC keeps fewer than ``min_inliers`` correspondences."""
    import cv2

    if len(uv_prev) < max(5, min_inliers):
        return None
    a = np.ascontiguousarray(uv_prev, np.float64)
    b = np.ascontiguousarray(uv_cur, np.float64)
    try:
        method = getattr(cv2, "USAC_ACCURATE", cv2.RANSAC)
        e, mask = cv2.findEssentialMat(a, b, k, method=method, prob=confidence, threshold=threshold_px)
        if e is None or e.shape[0] < 3:
            return None
        # Several solutions may come stacked (3k x 3); recoverPose's cheirality test picks among
        # the four decompositions of the first, the one RANSAC scored best.
        _, r, t, mask = cv2.recoverPose(e[:3], a, b, k, mask=mask)
    except cv2.error:                     # degenerate configurations (all points on a line, ...)
        return None
    inliers = mask.ravel() > 0
    if inliers.sum() < min_inliers:
        return None
    return EssentialResult(r, t.ravel() / max(float(np.linalg.norm(t)), 1e-12), inliers)


def length_from_depth(uv_prev: np.ndarray, uv_cur: np.ndarray, z_prev: np.ndarray, rotation: np.ndarray,
                      direction: np.ndarray, k: np.ndarray, min_points: int = 10) -> float | None:
    """The length of the translation along ``direction`` that the depth gives, point by point.

    (N, 2) corners in the previous and current image, their (N,) depth in the previous camera
    (metres), the essential matrix's R_cur_prev (3, 3) and unit direction (3,) of T_cur_prev ->
    metres, or None with fewer than ``min_points`` points that see any parallax.

    Each point alone fixes the length: R X + s d must lie on the ray of its current corner, one
    unknown s from two equations (least squares in normalised coordinates). The point's parallax
    at that length (pixels the translation moves it) is how well it fixes s (σ_s / s = σ_px /
    parallax), so the length is the median of the s_i weighted by parallax².

    A diagnostic beside PnP's length (``essential_length: parallax``), not the default: with the
    shipped depth net it is too long (KITTI 06 mono stride 1 path +33 % against PnP's -9 %),
    because the near points it trusts are the ones the net makes too far (x1.05-1.17 at 5-20 m
    against SGBM, while it compresses far depth: x0.67 at 30-50 m). See docs/odometry.md."""
    if len(uv_prev) < min_points:
        return None
    rays0 = backproject(uv_prev, np.ones(len(uv_prev)), k)            # (N, 3), z = 1
    rays1 = backproject(uv_cur, np.ones(len(uv_cur)), k)
    a = (rotation @ (rays0 * z_prev[:, None]).T).T                     # R X, (N, 3)
    d = np.asarray(direction, np.float64)
    b = np.stack([d[0] - rays1[:, 0] * d[2], d[1] - rays1[:, 1] * d[2]], 1)          # (N, 2)
    c = np.stack([a[:, 0] - rays1[:, 0] * a[:, 2], a[:, 1] - rays1[:, 1] * a[:, 2]], 1)
    bb = np.sum(b * b, 1)
    s = -np.sum(b * c, 1) / np.maximum(bb, 1e-12)
    q = a + s[:, None] * d
    uv_rot, z_rot = geometry_project(a.T, k)
    uv_full, z_full = geometry_project(q.T, k)
    parallax = np.linalg.norm(uv_full - uv_rot, axis=0)
    ok = (s > 0) & (z_rot[0] > 1e-3) & (z_full[0] > 1e-3) & np.isfinite(parallax) & (bb > 1e-12)
    if ok.sum() < min_points:
        return None
    return weighted_median(s[ok], parallax[ok] ** 2)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value at half the total weight (N,) values, (N,) non-negative weights."""
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])
