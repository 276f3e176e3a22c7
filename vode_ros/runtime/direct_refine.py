"""Run-time pose refinement by direct photometric alignment (numpy, no torch, no ROS).

The numpy twin of ``vode_training.solvers.ddvo`` (LKVOLearner's DDVO): Gauss-Newton /
Lucas-Kanade, inverse compositional, coarse to fine over a 2x2-average image pyramid, started
from the pose net's estimate. Same maths, same sampling (bilinear, border padding, pixel
centres at integer coordinates), same pyramid and K scaling; a test holds ``direct_align``
equal to the torch solver on the same inputs.

    T_prev_cur, info = refine_motion(prev_gray, cur_gray, prev_depth, k_net, T_prev_cur_from_net)

- grey images (H, W) at the network resolution (any consistent intensity scale; [0, 1] is what
  ``huber`` is meant for), ``prev_depth`` (H, W) of the previous frame in the units of the pose
  net's translation (the same model export: depth.onnx and pose.onnx trained together), K of
  the network resolution.
- The previous frame is the reference (it has the depth): the solver refines T_cur_prev (maps
  previous-camera points into the current camera) and returns its inverse, T_prev_cur, the
  convention of the pose net and the odometry integrator (vode_ros.core.geometry).
- With ``fallback`` (default) the pose net's estimate is returned unchanged when alignment
  does not lower the photometric cost at full resolution, or too few pixels overlap.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vode_ros.core.geometry import backproject, invert_se3, project, rescale_intrinsics, se3_exp, transform_points


def _avg_pool2(x: np.ndarray) -> np.ndarray:
    """2x2 average, odd last row / column dropped (torch avg_pool2d(2))."""
    h, w = x.shape[0] // 2, x.shape[1] // 2
    return x[:2 * h, :2 * w].reshape(h, 2, w, 2).mean(axis=(1, 3))


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


def _project(t: np.ndarray, pts: np.ndarray, k: np.ndarray, h: int, w: int):
    """Reference points (3, N) through T (4, 4) into the other (h, w) image -> u, v (N,) and validity (N,)."""
    pix, z = project(transform_points(t, pts), k)
    u, v, z = pix[0], pix[1], z[0]
    valid = (z > 1e-3) & (u >= -0.5) & (u <= w - 0.5) & (v >= -0.5) & (v <= h - 0.5)
    return u, v, valid


def _weights(r: np.ndarray, valid: np.ndarray, mask: np.ndarray | None, huber: float | None) -> np.ndarray:
    wts = valid.astype(np.float64)
    if mask is not None:
        wts = wts * mask.ravel()
    if huber is not None and huber > 0:
        wts = wts * np.minimum(huber / np.maximum(np.abs(r), 1e-12), 1.0)
    return wts


def _select(grad_mag: np.ndarray, usable: np.ndarray, max_points: int | None) -> np.ndarray | None:
    """Indices (M,) of the pixels a level aligns: the ``max_points`` strongest gradients among the
    usable ones (flat-region pixels add cost, not information: DSO / LSD-style selection).
    None = every pixel (the torch solver's behaviour)."""
    if max_points is None:
        return None if usable.all() else np.flatnonzero(usable)
    idx = np.flatnonzero(usable)
    if idx.size > max_points:
        idx = idx[np.argpartition(-grad_mag[idx], max_points - 1)[:max_points]]
    return np.sort(idx)


def _align_level(ref, cur, depth, k, t, iters, damping, huber, mask, usable=None, max_points=None,
                 min_step=0.0):
    h, w = ref.shape
    gx, gy = (g.ravel() for g in _gradients(ref))
    idx = _select(np.abs(gx) + np.abs(gy), usable.ravel() if usable is not None else np.ones(h * w, bool),
                  max_points)
    ref_flat = ref.ravel()
    mask_flat = mask.ravel() if mask is not None else None
    pts = backproject(depth, k)
    if idx is not None:
        pts, gx, gy, ref_flat = pts[:, idx], gx[idx], gy[idx], ref_flat[idx]
        mask_flat = mask_flat[idx] if mask_flat is not None else None
    x, y, z = pts
    fx, fy = k[0, 0], k[1, 1]
    ix, iy = gx * fx / z, gy * fy / z
    iz = -(gx * fx * x + gy * fy * y) / (z * z)
    jac = np.stack([ix, iy, iz, iz * y - iy * z, ix * z - iz * x, iy * x - ix * y], -1)   # (N, 6)
    costs = []
    for _ in range(iters):
        u, v, valid = _project(t, pts, k, h, w)
        r = bilinear(cur, u, v) - ref_flat
        wts = _weights(r, valid, mask_flat, huber)
        costs.append(float((r * r * wts).sum() / max(wts.sum(), 1e-12)))
        jw = jac * wts[:, None]
        hess = jw.T @ jac
        grad = jw.T @ r
        hess = hess + np.diag(damping * np.diag(hess) + 1e-9)
        xi = np.linalg.solve(hess, grad)
        t = t @ se3_exp(-xi)
        if min_step > 0 and np.abs(xi).max() < min_step:    # converged: further steps change nothing
            break
    return t, costs


def _valid_depth(depth: np.ndarray, max_depth: float | None) -> np.ndarray:
    """(H, W) bool: depth usable for warping (finite, > 0, within ``max_depth``)."""
    ok = np.isfinite(depth) & (depth > 0)
    if max_depth is not None:
        ok &= depth <= max_depth
    return ok


def direct_align(ref: np.ndarray, cur: np.ndarray, ref_depth: np.ndarray, k: np.ndarray, t_init: np.ndarray,
                 levels: int = 3, iters: int = 10, damping: float = 1e-3, huber: float | None = None,
                 mask: np.ndarray | None = None, return_costs: bool = False, max_points: int | None = None,
                 min_step: float = 0.0, max_depth: float | None = None):
    """Refine T_cur_ref (maps reference-camera points into the other camera) from ``t_init``.

    ref, cur (H, W) grey; ref_depth (H, W) metres; k (3, 3) at (W, H); mask (H, W) optional weights
    of the reference pixels. -> T (4, 4) [, per level (coarsest first) the per-iteration weighted
    mean squared residuals]. Same algorithm and arguments as ``ddvo_solver.ddvo_align``.

    Invalid depth (0, NaN, inf, beyond ``max_depth``: stereo holes, sky) takes no part, and the
    pyramid averages inverse depth over the valid pixels only: a placeholder value or a zero would
    otherwise leak into the coarse levels and pull the translation off the depth's metric scale.
    ``max_points``: per level, align only that many pixels of strongest gradient (speed; None = all,
    as the torch solver). ``min_step``: stop a level once the update's largest entry is below it.
    """
    ref = np.asarray(ref, np.float64)
    cur = np.asarray(cur, np.float64)
    depth = np.asarray(ref_depth, np.float64)
    if ref.ndim != 2 or ref.shape != cur.shape or ref.shape != depth.shape:
        raise ValueError(f"ref, cur and ref_depth must be (H, W) of one size, got {ref.shape}, {cur.shape}, "
                         f"{depth.shape}")
    k = np.asarray(k, np.float64)
    m = None if mask is None else np.asarray(mask, np.float64)
    ok = _valid_depth(depth, max_depth)
    all_valid = bool(ok.all())
    if not ok.any():
        raise ValueError("ref_depth has no valid pixel (all 0, NaN, inf or beyond max_depth)")
    okf = ok.astype(np.float64)
    inv = np.where(ok, 1.0 / np.where(ok, depth, 1.0), 0.0)
    fill = float(np.median(depth[ok]))          # finite stand-in where invalid (weight 0 there)

    def level_depth(inv_l, ok_l):
        return np.where(ok_l > 0, 1.0 / np.maximum(inv_l, 1e-12), fill)

    data = [(ref, cur, depth if all_valid else level_depth(inv, okf), k, m, None if all_valid else ok)]
    for _ in range(1, levels):
        ref, cur = _avg_pool2(ref), _avg_pool2(cur)
        m = _avg_pool2(m) if m is not None else None
        k = rescale_intrinsics(k, 0.5, 0.5)
        if all_valid:          # exactly the torch solver's pyramid
            inv = _avg_pool2(inv)
            data.append((ref, cur, 1.0 / inv, k, m, None))
        else:                  # mean inverse depth of the valid pixels of each 2x2 block
            inv_sum, okf = _avg_pool2(inv), _avg_pool2(okf)
            inv = np.where(okf > 0, inv_sum / np.maximum(okf, 1e-12), 0.0)
            data.append((ref, cur, level_depth(inv, okf), k, m, okf > 0))
    t = np.asarray(t_init, np.float64).copy()
    all_costs = []
    for ref_l, cur_l, depth_l, k_l, m_l, ok_l in reversed(data):
        usable = ok_l
        if max_points is not None and m_l is not None:
            usable = (m_l > 0) if usable is None else usable & (m_l > 0)
        t, costs = _align_level(ref_l, cur_l, depth_l, k_l, t, iters, damping, huber,
                                m_l if ok_l is None else (m_l if m_l is not None else 1.0) * ok_l,
                                usable, max_points, min_step)
        all_costs.append(costs)
    return (t, all_costs) if return_costs else t


def photometric_cost(ref: np.ndarray, cur: np.ndarray, ref_depth: np.ndarray, k: np.ndarray, t_cur_ref: np.ndarray,
                     mask: np.ndarray | None = None, max_depth: float | None = None) -> tuple[float, float]:
    """-> (mean squared residual over the overlapping pixels, fraction of the pixels with valid depth
    that overlap) at full size. Invalid depth (see direct_align) counts nowhere."""
    ref = np.asarray(ref, np.float64)
    h, w = ref.shape
    depth = np.asarray(ref_depth, np.float64)
    ok = _valid_depth(depth, max_depth)
    if not ok.all():
        depth = np.where(ok, depth, 1.0)
        mask = ok if mask is None else np.asarray(mask, np.float64) * ok
    u, v, valid = _project(np.asarray(t_cur_ref, np.float64), backproject(depth, k), k, h, w)
    valid &= ok.ravel()
    r = bilinear(np.asarray(cur, np.float64), u, v) - ref.ravel()
    wts = _weights(r, valid, mask, None)
    return float((r * r * wts).sum() / max(wts.sum(), 1e-12)), float(valid.sum() / max(ok.sum(), 1))


@dataclass
class RefineInfo:
    used: bool                    # False: the pose net's estimate was kept (fallback)
    cost_init: float              # mean squared residual at full resolution, before / after
    cost_final: float
    overlap: float                # fraction of previous-frame pixels seen in the current frame
    reason: str = ""
    level_costs: list = field(default_factory=list)


def refine_motion(previous_gray: np.ndarray, current_gray: np.ndarray, previous_depth: np.ndarray, k: np.ndarray,
                t_prev_cur: np.ndarray, levels: int = 4, iters: int = 10, damping: float = 1e-3,
                huber: float | None = None, fallback: bool = True, min_overlap: float = 0.2,
                mask: np.ndarray | None = None, max_points: int | None = 3000, min_step: float = 1e-5,
                max_depth: float | None = None) -> tuple[np.ndarray, RefineInfo]:
    """Refine the pose net's T_previous_current by direct alignment -> (T_prev_cur (4, 4), info).

    ``mask`` (H, W): optional weights of the previous frame's pixels (e.g. 0 on the sky).
    ``levels`` 4 (coarsest 26x8 at 416x128): on the KITTI clip with stereo depth, 3 levels let a few
    frames settle in a wrong minimum (ATE-5 0.017 +- 0.022 m), 4 levels none (0.011 +- 0.004 m).
    ``previous_depth`` in metres keeps the result metric; 0 / NaN / inf / beyond ``max_depth`` mark
    pixels without depth (stereo holes), which take no part. ``max_points`` (3000 of the strongest
    gradients per level) and ``min_step`` (early stop) make it ~5x faster than aligning every pixel
    at 416x128 with the same accuracy; None / 0 align all pixels for all ``iters``."""
    t_init = np.asarray(t_prev_cur, np.float64)
    k = np.asarray(k, np.float64)
    if not np.any(_valid_depth(np.asarray(previous_depth, np.float64), max_depth)):
        return t_init.copy(), RefineInfo(False, float("nan"), float("nan"), 0.0, "no valid depth")
    t_cur_prev0 = invert_se3(t_init)
    cost0, overlap0 = photometric_cost(previous_gray, current_gray, previous_depth, k, t_cur_prev0, mask, max_depth)
    t_cur_prev, level_costs = direct_align(previous_gray, current_gray, previous_depth, k, t_cur_prev0, levels,
                                           iters, damping, huber, mask, return_costs=True, max_points=max_points,
                                           min_step=min_step, max_depth=max_depth)
    if not np.all(np.isfinite(t_cur_prev)):
        return t_init.copy(), RefineInfo(False, cost0, float("nan"), overlap0, "non-finite result", level_costs)
    cost1, overlap1 = photometric_cost(previous_gray, current_gray, previous_depth, k, t_cur_prev, mask, max_depth)
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
