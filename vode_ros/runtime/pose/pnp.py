"""Frame-to-frame motion from 3D-2D correspondences (PnP-RANSAC) and its covariance.

Points are the previous frame's corners lifted with its depth (metres), observations their
positions in the current frame: PnP gives T_cur_prev in metres, so the scale is the depth's.

Covariance convention (used by PoseEstimate): 6x6 of the twist δ = [x, y, z, roll, pitch, yaw]
with T_prev_cur = T̂_prev_cur · exp(δ), i.e. in the current camera frame (the child frame of the
motion, as the twist of nav_msgs/Odometry); angles are the rotation-vector components about the
camera's x, y, z axes (equal to roll, pitch, yaw to first order).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vode_ros.runtime.pose.tracking import project


@dataclass(frozen=True)
class PnpConfig:
    ransac_threshold: float = 2.0     # px at the working resolution: inlier reprojection error
    ransac_iterations: int = 100
    ransac_confidence: float = 0.999
    min_inliers: int = 20             # fewer: no geometric estimate
    # Floor added to the Gauss-Newton covariance: (JᵀJ)⁻¹σ² treats the lifted points as exact, but
    # the depth (net or SGBM) has errors of its own that shift the translation.
    cov_floor_xyz: float = 0.01       # m (std)
    cov_floor_rpy: float = 0.001      # rad (std)


@dataclass
class PnpResult:
    t_cur_prev: np.ndarray            # (4, 4)
    inliers: np.ndarray               # (N,) bool over the correspondences given
    rmse: float                       # px, inlier reprojection RMSE
    covariance: np.ndarray            # (6, 6), see the module docstring
    sigma2: float                     # px², per-coordinate residual variance


def _skew(v: np.ndarray) -> np.ndarray:
    """(N, 3) -> (N, 3, 3) cross-product matrices."""
    z = np.zeros(len(v))
    return np.stack([np.stack([z, -v[:, 2], v[:, 1]], -1), np.stack([v[:, 2], z, -v[:, 0]], -1),
                     np.stack([-v[:, 1], v[:, 0], z], -1)], axis=1)


def reprojection_jacobian(pts3d_prev: np.ndarray, t_cur_prev: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(2N, 6) d(projection)/dδ at the solution, δ the right perturbation of T_prev_cur (module docstring).

    X_cur(δ) = exp(-δ) X̂_cur ≈ X̂_cur - v + [X̂_cur]x ω, chained with the pinhole derivative."""
    q = pts3d_prev @ t_cur_prev[:3, :3].T + t_cur_prev[:3, 3]          # (N, 3) in the current camera
    x, y, z = q[:, 0], q[:, 1], q[:, 2]
    zero = np.zeros_like(z)
    d_proj = np.stack([np.stack([k[0, 0] / z, zero, -k[0, 0] * x / z**2], -1),
                       np.stack([zero, k[1, 1] / z, -k[1, 1] * y / z**2], -1)], axis=1)   # (N, 2, 3)
    d_point = np.concatenate([-np.broadcast_to(np.eye(3), (len(q), 3, 3)), _skew(q)], axis=2)   # (N, 3, 6)
    return (d_proj @ d_point).reshape(-1, 6)


def gauss_newton_covariance(jac: np.ndarray, sigma2: float) -> np.ndarray:
    """(JᵀJ)⁻¹σ² (6, 6); pseudo-inverse so a degenerate geometry gives huge, not NaN, variances."""
    info = jac.T @ jac
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(info)
    if not np.all(np.isfinite(cov)):
        cov = np.eye(6) * 1e6
    return 0.5 * (cov + cov.T) * sigma2


def _to_rt(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    return cv2.Rodrigues(np.ascontiguousarray(t[:3, :3]))[0], t[:3, 3].reshape(3, 1).copy()


def _from_rt(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    import cv2

    out = np.eye(4)
    out[:3, :3] = cv2.Rodrigues(np.asarray(rvec, np.float64).reshape(3))[0]
    out[:3, 3] = np.asarray(tvec, np.float64).reshape(3)
    return out


def _residuals(pts3d: np.ndarray, pts2d: np.ndarray, t_cur_prev: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(N,) reprojection error (px); inf behind the camera."""
    uv, z = project(pts3d, t_cur_prev, k)
    err = np.linalg.norm(uv - pts2d, axis=1)
    return np.where(z > 1e-3, err, np.inf)


def solve_pnp(pts3d_prev: np.ndarray, pts2d_cur: np.ndarray, k: np.ndarray, cfg: PnpConfig,
              guess_t_cur_prev: np.ndarray | None = None) -> PnpResult | None:
    """PnP-RANSAC, then Levenberg-Marquardt on the inliers, inliers re-selected at the refined pose.

    pts3d_prev (N, 3) metres in the previous camera; pts2d_cur (N, 2) px; k (3, 3). ``guess``: a
    starting T_cur_prev (the pose net's), used when RANSAC's own hypothesis explains fewer points.
    -> PnpResult, or None with fewer than ``cfg.min_inliers`` inliers."""
    import cv2

    n = len(pts3d_prev)
    if n < max(cfg.min_inliers, 6):
        return None
    obj = np.ascontiguousarray(pts3d_prev, np.float64).reshape(-1, 1, 3)
    img = np.ascontiguousarray(pts2d_cur, np.float64).reshape(-1, 1, 2)
    k = np.asarray(k, np.float64)
    ok, rvec, tvec, _ = cv2.solvePnPRansac(obj, img, k, None, iterationsCount=cfg.ransac_iterations,
                                           reprojectionError=cfg.ransac_threshold,
                                           confidence=cfg.ransac_confidence, flags=cv2.SOLVEPNP_EPNP)
    candidates = []
    if ok:
        candidates.append(_from_rt(rvec, tvec))
    if guess_t_cur_prev is not None and np.all(np.isfinite(guess_t_cur_prev)):
        candidates.append(np.asarray(guess_t_cur_prev, np.float64))
    best, best_in = None, None
    for cand in candidates:
        inl = _residuals(pts3d_prev, pts2d_cur, cand, k) < cfg.ransac_threshold
        if best_in is None or inl.sum() > best_in.sum():
            best, best_in = cand, inl
    if best is None or best_in.sum() < max(cfg.min_inliers, 6):
        return None
    t = best
    for _ in range(2):      # refine on the inliers, then take the inliers of the refined pose
        r, tv = _to_rt(t)
        r, tv = cv2.solvePnPRefineLM(obj[best_in], img[best_in], k, None, r, tv)
        t = _from_rt(r, tv)
        res = _residuals(pts3d_prev, pts2d_cur, t, k)
        new_in = res < cfg.ransac_threshold
        if new_in.sum() < max(cfg.min_inliers, 6):
            break
        best_in = new_in
    res = _residuals(pts3d_prev, pts2d_cur, t, k)
    m = int(best_in.sum())
    if m < max(cfg.min_inliers, 6) or not np.all(np.isfinite(t)):
        return None
    sse = float(np.sum(res[best_in] ** 2))
    rmse = float(np.sqrt(sse / m))
    # σ² per image coordinate, 2m residuals minus 6 parameters; at least (0.1 px)², because
    # a near-perfect fit on a handful of points is not a near-perfect pose.
    sigma2 = max(sse / max(2 * m - 6, 1), 0.01)
    cov = gauss_newton_covariance(reprojection_jacobian(pts3d_prev[best_in], t, k), sigma2)
    cov += np.diag([cfg.cov_floor_xyz ** 2] * 3 + [cfg.cov_floor_rpy ** 2] * 3)
    return PnpResult(t, best_in, rmse, cov, sigma2)


def inflate_for_inlier_ratio(cov: np.ndarray, inlier_ratio: float) -> np.ndarray:
    """Covariance / ratio²: outliers that slipped under the RANSAC threshold grow in number with the
    outliers that did not, and the Gauss-Newton covariance knows nothing of them. At a ratio of 0.9
    the variances grow by 1.2x, at 0.3 by 11x (below ``min_inlier_ratio`` the estimator falls back)."""
    return np.asarray(cov, np.float64) / max(float(inlier_ratio), 1e-3) ** 2
