"""Optical-flow pieces of GeoNet (Yin & Shi, CVPR 2018): rigid flow, flow warping, flow losses.

Conventions as ``vode_training.geometry``: pixel centres at integer coordinates, a flow
``f (B, 2, H, W)`` of a target pixel p = (u, v) says where p is seen in the other image,
p' = p + f(p), in pixels of the full image (u right, v down).

- ``rigid_flow(depth_t, T_s_t, K)``: the flow a static scene induces, project(T_s_t ·
  backproject(depth_t)) - p (GeoNet eq. 2), built from geometry.backproject / project.
- ``flow_warp(img_s, flow)``: sample the source at p + f(p) (bilinear, border padding) -> the
  target view synthesised from the source, and a validity mask (lands inside the source).
  ``flow_warp(img_s, rigid_flow(...))`` equals ``geometry.inverse_warp`` (a test holds them equal).
- ``flow_smoothness``: GeoNet's edge-aware first-order smoothness on both flow components.
- ``forward_backward_check``: the backward flow sampled at p + f_fwd(p) should cancel the forward
  flow; |f_fwd + f_bwd(p + f_fwd)| < max(alpha, beta |f_fwd|) marks consistent pixels (GeoNet's
  alpha = 3 px, beta = 0.05); where it fails (occlusions, flow leaving the image) the mask is 0.
- ``flow_consistency_loss``: GeoNet's geometric consistency term, the L1 forward-backward
  difference averaged over all pixels with the failed ones (occlusion) masked out.
"""
from __future__ import annotations

import torch

from ..geometry import in_image, pixel_grid, rigid_pixels, sample_pixels


def rigid_flow(depth: torch.Tensor, t_src_tgt: torch.Tensor, k: torch.Tensor,
               return_valid: bool = False):
    """depth (B, 1, H, W) of the target (m), T_src_tgt (B, 4, 4), K (B, 3, 3) -> flow (B, 2, H, W).

    With ``return_valid`` also where the point lies in front of the source camera and inside its
    image (B, 1, H, W) float {0, 1}, as ``geometry.rigid_pixels``.
    """
    batch, _, height, width = depth.shape
    pix, valid = rigid_pixels(depth, t_src_tgt, k)                     # (B, 2, H, W), (B, 1, H, W)
    grid = pixel_grid(height, width, depth.dtype, depth.device)[:, :2].reshape(1, 2, height, width)
    flow = pix - grid
    if return_valid:
        return flow, valid
    return flow


def flow_warp(img: torch.Tensor, flow: torch.Tensor, padding_mode: str = "border") -> tuple[torch.Tensor, torch.Tensor]:
    """Sample img (B, C, H, W) at p + flow(p) -> (warped (B, C, H, W), valid (B, 1, H, W) float).

    valid = the sample point lies inside the image (pixel centres u in [-0.5, W - 0.5]).
    """
    batch, _, height, width = img.shape
    grid = pixel_grid(height, width, flow.dtype, flow.device)[:, :2].reshape(1, 2, height, width)
    coords = grid + flow                                                # (B, 2, H, W)
    valid = in_image(coords[:, 0], coords[:, 1], width, height)
    warped = sample_pixels(img, coords, padding_mode)
    return warped, valid.unsqueeze(1).to(img.dtype)


def rigid_warp(img: torch.Tensor, depth: torch.Tensor, t_src_tgt: torch.Tensor,
               k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rigid-flow warp of a source image into the target -> (warped, valid, flow).

    valid also requires the point to lie in front of the source camera (as inverse_warp).
    """
    flow, in_front_inside = rigid_flow(depth, t_src_tgt, k, return_valid=True)
    warped, _ = flow_warp(img, flow)
    return warped, in_front_inside.to(img.dtype), flow


def _dx(t: torch.Tensor) -> torch.Tensor:
    return t[:, :, :, :-1] - t[:, :, :, 1:]


def _dy(t: torch.Tensor) -> torch.Tensor:
    return t[:, :, :-1, :] - t[:, :, 1:, :]


def flow_smoothness(flow: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """GeoNet's flow smoothness: edge-aware first-order smoothness of each flow component.

    flow (B, 2, H, W) in pixels, image (B, C, H, W) in [0, 1] at the same size -> scalar.
    """
    wx = torch.exp(-_dx(image).abs().mean(1, keepdim=True))
    wy = torch.exp(-_dy(image).abs().mean(1, keepdim=True))
    return (_dx(flow).abs() * wx).mean() * 2 + (_dy(flow).abs() * wy).mean() * 2   # summed over u, v


def _norm2(flow: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) -> (B, 1, H, W) Euclidean length (faster than Tensor.norm(dim=1) on CPU)."""
    return (flow[:, :1] ** 2 + flow[:, 1:2] ** 2).sqrt()


def forward_backward_check(fwd: torch.Tensor, bwd: torch.Tensor, alpha: float = 3.0,
                           beta: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """fwd: target->source flow on the target grid, bwd: source->target flow on the source grid.

    -> (diff (B, 2, H, W) = fwd + bwd(p + fwd(p)), consistent (B, 1, H, W) float: 1 where
    |diff| < max(alpha, beta |fwd|) and p + fwd(p) lies inside the source, 0 elsewhere (occluded).
    """
    bwd_at, inside = flow_warp(bwd, fwd)
    diff = fwd + bwd_at
    bound = torch.clamp(beta * _norm2(fwd), min=alpha)
    ok = (_norm2(diff) < bound).to(fwd.dtype) * inside
    return diff, ok.detach()


def flow_consistency_loss(fwd: torch.Tensor, bwd: torch.Tensor, alpha: float = 3.0,
                          beta: float = 0.05) -> torch.Tensor:
    """GeoNet's geometric consistency: mean over pixels of |fwd + bwd(p + fwd)|_1 where the
    forward-backward check holds (0 where it fails), both directions averaged. Pixels."""
    d_f, m_f = forward_backward_check(fwd, bwd, alpha, beta)
    d_b, m_b = forward_backward_check(bwd, fwd, alpha, beta)
    return 0.5 * ((d_f.abs().sum(1, keepdim=True) * m_f).mean() + (d_b.abs().sum(1, keepdim=True) * m_b).mean())
