"""Differentiable direct visual odometry (DDVO, Wang et al. CVPR 2018) in torch.

Gauss-Newton / Lucas-Kanade photometric alignment of two grey images, inverse-compositional,
coarse to fine over an image pyramid, with every step differentiable, so the refined pose is a
function of the reference depth and the photometric loss that uses it trains the depth net
(LKVOLearner stage 2).

Problem: given the reference image I_r with its depth D_r, the other image I_c and K, find
T = T_c_r (maps reference-camera points into the other camera) minimising

    sum_p  w(p) [ I_c(pi(T X(p))) - I_r(p) ]^2,      X(p) = D_r(p) K^-1 [u, v, 1]^T.

Inverse compositional step: linearise the *reference* side around the identity,
I_r(pi(exp(xi) X)) ~ I_r(p) + J(p) xi with J = grad I_r(p) . dpi/dX(X) . [I | -[X]x] (fixed per
level), solve (J^T W J + lambda diag(J^T W J)) xi = J^T W r for the residual
r = I_c(pi(T X)) - I_r(p), and update T <- T exp(xi)^-1. xi = [v, w] (translation, rotation).

Pyramid: level l halves level l-1 by 2x2 averaging (``avg_pool2d``; the inverse depth is averaged,
then inverted); K follows OpenCV's pixel-centre convention (f / 2, (c + 0.5) / 2 - 0.5). Levels
are solved coarsest first, ``iters`` steps each. Sampling: bilinear, border padding,
align_corners=False (pixel centres at integer coordinates; vode_training.geometry's sampler); w(p) = 1
where the point is in front of the other camera and lands inside it (u in [-0.5, W - 0.5]),
times optional Huber weights min(1, delta / |r|). Image gradients: central differences with
replicated borders.

``vode_ros.runtime.direct_refine`` is the numpy twin used at run time; a test holds the two equal.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vode_ros.core.shapes import check_shape

from ..geometry import backproject, in_image, project, rescale_intrinsics, sample_pixels, se3_exp, transform_points


def image_gradients(img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 1, H, W) -> central differences d/du, d/dv (replicated borders)."""
    p = F.pad(img, (1, 1, 1, 1), mode="replicate")
    gx = (p[:, :, 1:-1, 2:] - p[:, :, 1:-1, :-2]) / 2
    gy = (p[:, :, 2:, 1:-1] - p[:, :, :-2, 1:-1]) / 2
    return gx, gy


def sample(img: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Bilinear sample (border padding) of img (B, 1, H, W) at pixel coords u, v (B, N) -> (B, N)."""
    pix = torch.stack([u, v], dim=1).unsqueeze(2)                     # (B, 2, 1, N)
    return sample_pixels(img, pix)[:, 0, 0]


def pyramid(ref: torch.Tensor, cur: torch.Tensor, ref_depth: torch.Tensor, k: torch.Tensor, levels: int,
            mask: torch.Tensor | None = None):
    """-> [(ref_l, cur_l, depth_l, K_l, mask_l)] finest first (mask_l: 2x2 averages, None without a mask)."""
    out = [(ref, cur, ref_depth, k, mask)]
    inv = 1.0 / ref_depth
    for _ in range(1, levels):
        ref, cur, inv = F.avg_pool2d(ref, 2), F.avg_pool2d(cur, 2), F.avg_pool2d(inv, 2)
        mask = F.avg_pool2d(mask, 2) if mask is not None else None
        k = rescale_intrinsics(k, 0.5, 0.5)
        out.append((ref, cur, 1.0 / inv, k, mask))
    return out


def _project(cur, t, pts, k):
    """Reference points (B, 3, N) through T (B, 4, 4) into the other camera -> pixel coords u, v (B, N)
    and validity (B, N)."""
    height, width = cur.shape[-2:]
    pix, z = project(transform_points(t, pts), k)                     # (B, 2, N), (B, 1, N)
    u, v, z = pix[:, 0], pix[:, 1], z[:, 0]
    valid = (z > 1e-3) & in_image(u, v, width, height)
    return u, v, valid


def align_level(ref, cur, depth, k, t, iters: int, damping: float, huber: float | None,
                mask: torch.Tensor | None = None):
    """Gauss-Newton steps at one pyramid level. ref/cur (B, 1, h, w), depth (B, 1, h, w), t (B, 4, 4),
    mask (B, 1, h, w) weights of the reference pixels or None."""
    batch, _, height, width = ref.shape
    pts = backproject(depth, torch.linalg.inv(k))                     # (B, 3, N)
    x, y, z = pts[:, 0], pts[:, 1], pts[:, 2]
    fx, fy = k[:, 0, 0:1], k[:, 1, 1:2]
    gx, gy = image_gradients(ref)
    gx, gy = gx.reshape(batch, -1), gy.reshape(batch, -1)
    # d I / d X = grad I . d pi / d X  (B, N, 3)
    di_dx = torch.stack([gx * fx / z, gy * fy / z, -(gx * fx * x + gy * fy * y) / (z * z)], -1)
    # d X / d xi = [I | -[X]x]; J = dI/dX . dX/dxi  (B, N, 6)
    ix, iy, iz = di_dx.unbind(-1)
    jac = torch.stack([ix, iy, iz, iz * y - iy * z, ix * z - iz * x, iy * x - ix * y], -1)
    ref_flat = ref.reshape(batch, -1)
    costs = []
    for _ in range(iters):
        u, v, valid = _project(cur, t, pts, k)
        r = sample(cur, u, v) - ref_flat
        w = valid.to(r.dtype)
        if mask is not None:
            w = w * mask.reshape(batch, -1)
        if huber is not None and huber > 0:
            w = w * torch.clamp(huber / r.abs().clamp(min=1e-12), max=1.0)
        costs.append(((r * r * w).sum(1) / w.sum(1).clamp(min=1e-12)).detach())
        jw = jac * w.unsqueeze(-1)
        hess = jw.transpose(1, 2) @ jac                               # (B, 6, 6)
        grad = (jw * r.unsqueeze(-1)).sum(1)                          # (B, 6)
        diag = torch.diagonal(hess, dim1=1, dim2=2)
        hess = hess + torch.diag_embed(damping * diag + 1e-9)
        xi = torch.linalg.solve(hess, grad.unsqueeze(-1)).squeeze(-1)
        t = t @ se3_exp(-xi)
    return t, costs


def ddvo_align(ref: torch.Tensor, cur: torch.Tensor, ref_depth: torch.Tensor, k: torch.Tensor,
               t_init: torch.Tensor, levels: int = 3, iters: int = 10, damping: float = 1e-3,
               huber: float | None = None, mask: torch.Tensor | None = None, return_costs: bool = False):
    """Refine T_cur_ref from ``t_init`` by direct alignment; differentiable w.r.t. every input.

    ref, cur (B, 1, H, W) grey in [0, 1]; ref_depth (B, 1, H, W) > 0; k (B, 3, 3) at (W, H);
    t_init (B, 4, 4); mask (B, 1, H, W) optional weights in [0, 1] of the reference pixels (e.g. 0 where
    the depth is unknown; 2x2-averaged down the pyramid). -> T (B, 4, 4) [, per level (coarsest first)
    the list of per-iteration weighted mean squared residuals (B,), measured before each step,
    Huber weights included].
    """
    check_shape(ref, "B,1,H,W", "ref (grey)")
    check_shape(cur, "B,1,H,W", "cur (grey)")
    check_shape(ref_depth, "B,1,H,W", "ref_depth")
    check_shape(t_init, "B,4,4", "t_init")
    levels_data = pyramid(ref, cur, ref_depth, k, levels, mask)
    t = t_init
    all_costs = []
    for ref_l, cur_l, depth_l, k_l, mask_l in reversed(levels_data):
        t, costs = align_level(ref_l, cur_l, depth_l, k_l, t, iters, damping, huber, mask_l)
        all_costs.append(costs)
    return (t, all_costs) if return_costs else t


def to_gray(img: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, 1, H, W) mean over channels."""
    return img if img.shape[1] == 1 else img.mean(1, keepdim=True)
