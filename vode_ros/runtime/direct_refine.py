"""Run-time pose refinement by direct photometric alignment (numpy, no torch, no ROS).

The numpy twin of ``vode_training.nets.ddvo_solver`` (LKVOLearner's DDVO): Gauss-Newton /
Lucas-Kanade, inverse compositional, coarse to fine over a 2x2-average image pyramid, started
from the pose net's estimate. Same maths, same sampling (bilinear, border padding, pixel
centres at integer coordinates), same pyramid and K scaling; a test holds ``direct_align``
equal to the torch solver on the same inputs.

    T_prev_cur, info = refine_pose(prev_gray, cur_gray, prev_depth, k_net, T_prev_cur_from_net)

- grey images (H, W) at the network resolution (any consistent intensity scale; [0, 1] is what
  ``huber`` is meant for), ``prev_depth`` (H, W) of the previous frame in the units of the pose
  net's translation (the same model export: depth.onnx and pose.onnx trained together), K of
  the network resolution.
- The previous frame is the reference (it has the depth): the solver refines T_cur_prev (maps
  previous-camera points into the current camera) and returns its inverse, T_prev_cur, the
  convention of the pose net and the odometry integrator (vode_ros.geometry).
- With ``fallback`` (default) the pose net's estimate is returned unchanged when alignment
  does not lower the photometric cost at full resolution, or too few pixels overlap.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vode_ros.geometry import invert_se3


def se3_exp(xi: np.ndarray) -> np.ndarray:
    """(6,) [v, w] -> (4, 4) exp of the twist (same series as the torch solver)."""
    v, w = xi[:3], xi[3:]
    theta2 = float(w @ w)
    if theta2 < 1e-8:
        a, b, c = 1 - theta2 / 6, 0.5 - theta2 / 24, 1.0 / 6 - theta2 / 120
    else:
        theta = np.sqrt(theta2)
        a, b, c = np.sin(theta) / theta, (1 - np.cos(theta)) / theta2, (theta - np.sin(theta)) / (theta2 * theta)
    wx = np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])
    wx2 = wx @ wx
    out = np.eye(4)
    out[:3, :3] = np.eye(3) + a * wx + b * wx2
    out[:3, 3] = (np.eye(3) + b * wx + c * wx2) @ v
    return out


def _avg_pool2(x: np.ndarray) -> np.ndarray:
    """2x2 average, odd last row / column dropped (torch avg_pool2d(2))."""
    h, w = x.shape[0] // 2, x.shape[1] // 2
    return x[:2 * h, :2 * w].reshape(h, 2, w, 2).mean(axis=(1, 3))


def _scale_k_half(k: np.ndarray) -> np.ndarray:
    out = np.array(k, dtype=np.float64)
    out[0, 0] /= 2
    out[1, 1] /= 2
    out[0, 2] = (k[0, 2] + 0.5) / 2 - 0.5
    out[1, 2] = (k[1, 2] + 0.5) / 2 - 0.5
    return out


def _gradients(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.pad(img, 1, mode="edge")
    return (p[1:-1, 2:] - p[1:-1, :-2]) / 2, (p[2:, 1:-1] - p[:-2, 1:-1]) / 2


def bilinear(img: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sample img (H, W) at pixel coords (border padding, as grid_sample align_corners=False)."""
    h, w = img.shape
    x = np.clip(u, 0.0, w - 1.0)
    y = np.clip(v, 0.0, h - 1.0)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    ax, ay = x - x0, y - y0
    return (img[y0, x0] * (1 - ax) * (1 - ay) + img[y0, x1] * ax * (1 - ay)
            + img[y1, x0] * (1 - ax) * ay + img[y1, x1] * ax * ay)


def _points(depth: np.ndarray, k: np.ndarray) -> np.ndarray:
    h, w = depth.shape
    v, u = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    pix = np.stack([u.ravel(), v.ravel(), np.ones(h * w)])
    return (np.linalg.inv(k) @ pix) * depth.reshape(1, -1)          # (3, N)


def _project(t: np.ndarray, pts: np.ndarray, k: np.ndarray, h: int, w: int):
    q = t[:3, :3] @ pts + t[:3, 3:]
    z = q[2]
    zc = np.maximum(z, 1e-6)
    u = k[0, 0] * q[0] / zc + k[0, 2]
    v = k[1, 1] * q[1] / zc + k[1, 2]
    valid = (z > 1e-3) & (u >= -0.5) & (u <= w - 0.5) & (v >= -0.5) & (v <= h - 0.5)
    return u, v, valid


def _weights(r: np.ndarray, valid: np.ndarray, mask: np.ndarray | None, huber: float | None) -> np.ndarray:
    wts = valid.astype(np.float64)
    if mask is not None:
        wts = wts * mask.ravel()
    if huber is not None and huber > 0:
        wts = wts * np.minimum(huber / np.maximum(np.abs(r), 1e-12), 1.0)
    return wts


def _align_level(ref, cur, depth, k, t, iters, damping, huber, mask):
    h, w = ref.shape
    pts = _points(depth, k)
    x, y, z = pts
    gx, gy = (g.ravel() for g in _gradients(ref))
    fx, fy = k[0, 0], k[1, 1]
    ix, iy = gx * fx / z, gy * fy / z
    iz = -(gx * fx * x + gy * fy * y) / (z * z)
    jac = np.stack([ix, iy, iz, iz * y - iy * z, ix * z - iz * x, iy * x - ix * y], -1)   # (N, 6)
    ref_flat = ref.ravel()
    costs = []
    for _ in range(iters):
        u, v, valid = _project(t, pts, k, h, w)
        r = bilinear(cur, u, v) - ref_flat
        wts = _weights(r, valid, mask, huber)
        costs.append(float((r * r * wts).sum() / max(wts.sum(), 1e-12)))
        jw = jac * wts[:, None]
        hess = jw.T @ jac
        grad = jw.T @ r
        hess = hess + np.diag(damping * np.diag(hess) + 1e-9)
        xi = np.linalg.solve(hess, grad)
        t = t @ se3_exp(-xi)
    return t, costs


def direct_align(ref: np.ndarray, cur: np.ndarray, ref_depth: np.ndarray, k: np.ndarray, t_init: np.ndarray,
                 levels: int = 3, iters: int = 10, damping: float = 1e-3, huber: float | None = None,
                 mask: np.ndarray | None = None, return_costs: bool = False):
    """Refine T_cur_ref (maps reference-camera points into the other camera) from ``t_init``.

    ref, cur (H, W) grey; ref_depth (H, W) > 0; k (3, 3) at (W, H); mask (H, W) optional weights
    of the reference pixels. -> T (4, 4) [, per level (coarsest first) the per-iteration weighted
    mean squared residuals]. Same algorithm and arguments as ``ddvo_solver.ddvo_align``.
    """
    ref = np.asarray(ref, np.float64)
    cur = np.asarray(cur, np.float64)
    depth = np.asarray(ref_depth, np.float64)
    if ref.ndim != 2 or ref.shape != cur.shape or ref.shape != depth.shape:
        raise ValueError(f"ref, cur and ref_depth must be (H, W) of one size, got {ref.shape}, {cur.shape}, "
                         f"{depth.shape}")
    k = np.asarray(k, np.float64)
    m = None if mask is None else np.asarray(mask, np.float64)
    data = [(ref, cur, depth, k, m)]
    inv = 1.0 / depth
    for _ in range(1, levels):
        ref, cur, inv = _avg_pool2(ref), _avg_pool2(cur), _avg_pool2(inv)
        m = _avg_pool2(m) if m is not None else None
        k = _scale_k_half(k)
        data.append((ref, cur, 1.0 / inv, k, m))
    t = np.asarray(t_init, np.float64).copy()
    all_costs = []
    for ref_l, cur_l, depth_l, k_l, m_l in reversed(data):
        t, costs = _align_level(ref_l, cur_l, depth_l, k_l, t, iters, damping, huber, m_l)
        all_costs.append(costs)
    return (t, all_costs) if return_costs else t


def photometric_cost(ref: np.ndarray, cur: np.ndarray, ref_depth: np.ndarray, k: np.ndarray, t_cur_ref: np.ndarray,
                     mask: np.ndarray | None = None) -> tuple[float, float]:
    """-> (mean squared residual over the overlapping pixels, fraction of pixels overlapping) at full size."""
    ref = np.asarray(ref, np.float64)
    h, w = ref.shape
    u, v, valid = _project(np.asarray(t_cur_ref, np.float64), _points(np.asarray(ref_depth, np.float64), k), k, h, w)
    r = bilinear(np.asarray(cur, np.float64), u, v) - ref.ravel()
    wts = _weights(r, valid, mask, None)
    return float((r * r * wts).sum() / max(wts.sum(), 1e-12)), float(valid.mean())


@dataclass
class RefineInfo:
    used: bool                    # False: the pose net's estimate was kept (fallback)
    cost_init: float              # mean squared residual at full resolution, before / after
    cost_final: float
    overlap: float                # fraction of previous-frame pixels seen in the current frame
    reason: str = ""
    level_costs: list = field(default_factory=list)


def refine_pose(previous_gray: np.ndarray, current_gray: np.ndarray, previous_depth: np.ndarray, k: np.ndarray,
                t_prev_cur: np.ndarray, levels: int = 4, iters: int = 10, damping: float = 1e-3,
                huber: float | None = None, fallback: bool = True, min_overlap: float = 0.2,
                mask: np.ndarray | None = None) -> tuple[np.ndarray, RefineInfo]:
    """Refine the pose net's T_previous_current by direct alignment -> (T_prev_cur (4, 4), info).

    ``mask`` (H, W): optional weights of the previous frame's pixels (e.g. 0 on the sky).
    ``levels`` 4 (coarsest 26x8 at 416x128): on the KITTI clip with stereo depth, 3 levels let a few
    frames settle in a wrong minimum (ATE-5 0.017 +- 0.022 m), 4 levels none (0.011 +- 0.004 m)."""
    t_init = np.asarray(t_prev_cur, np.float64)
    k = np.asarray(k, np.float64)
    t_cur_prev0 = invert_se3(t_init)
    cost0, overlap0 = photometric_cost(previous_gray, current_gray, previous_depth, k, t_cur_prev0, mask)
    t_cur_prev, level_costs = direct_align(previous_gray, current_gray, previous_depth, k, t_cur_prev0, levels,
                                           iters, damping, huber, mask, return_costs=True)
    if not np.all(np.isfinite(t_cur_prev)):
        return t_init.copy(), RefineInfo(False, cost0, float("nan"), overlap0, "non-finite result", level_costs)
    cost1, overlap1 = photometric_cost(previous_gray, current_gray, previous_depth, k, t_cur_prev, mask)
    if fallback:
        if overlap1 < min_overlap:
            return t_init.copy(), RefineInfo(False, cost0, cost1, overlap1, f"overlap {overlap1:.2f} < {min_overlap}",
                                             level_costs)
        if not cost1 < cost0:
            return t_init.copy(), RefineInfo(False, cost0, cost1, overlap1, "cost did not decrease", level_costs)
    return invert_se3(t_cur_prev), RefineInfo(True, cost0, cost1, overlap1, "", level_costs)


def gray_from_net_input(net_input: np.ndarray, mean, std) -> np.ndarray:
    """Normalised net input (C, H, W) -> grey (H, W) in [0, 1] (channel mean)."""
    c = net_input.shape[0]
    mean = np.asarray(mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(std, np.float32).reshape(-1, 1, 1)
    img = net_input * std + mean
    return img.mean(0) if c > 1 else img[0]
