"""Motion refinement that uses the depth of both frames of a pair (stereo, RGB-D).

PnP lifts the corners with the previous frame's depth only, so the errors of that one depth map
go straight into the motion. Where the current frame has depth too (SGBM of its own stereo pair,
a depth sensor), each correspondence gives a second, independent constraint: the current frame's
point reprojected into the previous image. Minimising both (robust Gauss-Newton, Huber loss on
the pixel error) averages the two depth maps' errors instead of inheriting one of them.

Conventions as pnp.py: T_prev_cur = T̂_prev_cur · exp(δ), δ = [v, ω] (se3_exp order).
"""
from __future__ import annotations

import numpy as np

from vode_ros.core.geometry import invert_se3, se3_exp
from vode_ros.runtime.pose.pnp import _skew, reprojection_jacobian
from vode_ros.runtime.pose.tracking import project


def _pinhole_jacobian(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(N, 3) camera points -> (N, 2, 3) d(pixel)/d(point)."""
    x, y, z = q[:, 0], q[:, 1], q[:, 2]
    zero = np.zeros_like(z)
    return np.stack([np.stack([k[0, 0] / z, zero, -k[0, 0] * x / z**2], -1),
                     np.stack([zero, k[1, 1] / z, -k[1, 1] * y / z**2], -1)], axis=1)


def backward_jacobian(pts3d_cur: np.ndarray, t_prev_cur: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(2M, 6) d(projection into the previous image)/dδ of (M, 3) current-camera points.

    X_prev(δ) = T̂ exp(δ) X_cur ≈ T̂ (X_cur + v + ω × X_cur): dX_prev/dδ = R̂ [I, -[X_cur]x]."""
    r = t_prev_cur[:3, :3]
    q = pts3d_cur @ r.T + t_prev_cur[:3, 3]
    d_point = np.concatenate([np.broadcast_to(r, (len(q), 3, 3)), -r @ _skew(pts3d_cur)], axis=2)   # (M, 3, 6)
    return (_pinhole_jacobian(q, k) @ d_point).reshape(-1, 6)


def refine_two_view(t_prev_cur: np.ndarray, pts3d_prev: np.ndarray, uv_cur: np.ndarray, pts3d_cur: np.ndarray,
                    uv_prev: np.ndarray, k: np.ndarray, huber_px: float = 1.0, iterations: int = 5
                    ) -> tuple[np.ndarray, int]:
    """Refine T_prev_cur (4, 4) on both directions of the correspondences.

    pts3d_prev (N, 3) metres in the previous camera, seen at uv_cur (N, 2) px in the current image;
    pts3d_cur (M, 3) in the current camera, seen at uv_prev (M, 2) in the previous image; k (3, 3).
    Residuals beyond ``huber_px`` count linearly (Huber), so the odd depth outlier that passed
    RANSAC (it saw only the forward direction) pulls little. -> (T_prev_cur, iterations done);
    the input is returned where the system is degenerate or the points fall behind a camera."""
    t = np.asarray(t_prev_cur, np.float64).copy()
    done = 0
    for _ in range(iterations):
        t_cp = invert_se3(t)
        uv_f, z_f = project(pts3d_prev, t_cp, k)
        uv_b, z_b = project(pts3d_cur, t, k)
        if np.any(z_f <= 1e-3) or np.any(z_b <= 1e-3):
            break
        res = np.concatenate([(uv_f - uv_cur).reshape(-1), (uv_b - uv_prev).reshape(-1)])
        jac = np.concatenate([reprojection_jacobian(pts3d_prev, t_cp, k), backward_jacobian(pts3d_cur, t, k)])
        err = np.linalg.norm(res.reshape(-1, 2), axis=1)
        w = np.repeat(np.where(err <= huber_px, 1.0, huber_px / np.maximum(err, 1e-12)), 2)
        h = jac.T @ (jac * w[:, None])
        g = jac.T @ (w * res)
        try:
            delta = -np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(delta)):
            break
        t = t @ se3_exp(delta)
        done += 1
        if np.linalg.norm(delta) < 1e-7:
            break
    return t, done
