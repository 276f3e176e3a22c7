"""Sampling at pixel coordinates and differentiable inverse warping (torch).

``grid_sample(align_corners=False)`` puts normalised -1 / +1 at the outer *edges* of the
image, while pixel centres sit at integer coordinates; ``pixel_to_grid`` maps
u -> (2u + 1) / W - 1 so both conventions agree. Every sampler in the training code goes
through :func:`sample_pixels`. A pixel is inside the image when its centre coordinate lies in
[-0.5, W - 0.5] (``in_image``).

Shapes: B batch, C channels, H x W image, N = H * W points.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vode_ros.core.shapes import check_shape

from .camera import backproject, project, transform_points


def pixel_to_grid(u: torch.Tensor, v: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Pixel coordinates u, v (any equal shape S) -> grid_sample coordinates (S..., 2)."""
    return torch.stack([(2.0 * u + 1.0) / width - 1.0, (2.0 * v + 1.0) / height - 1.0], dim=-1)


def in_image(u: torch.Tensor, v: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Bool mask (shape of u): the pixel coordinate falls inside a W x H image."""
    return (u >= -0.5) & (u <= width - 0.5) & (v >= -0.5) & (v <= height - 0.5)


def sample_pixels(img: torch.Tensor, pix: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """Bilinear sample img (B, C, H, W) at pixel coordinates pix (B, 2, H', W') -> (B, C, H', W').

    ``padding_mode="border"`` (monodepth2) keeps the half-pixel rim of valid samples from being
    blended with zeros.
    """
    check_shape(img, "B,C,H,W", "img")
    check_shape(pix, "B,2,H,W", "pix")
    height, width = img.shape[-2:]
    grid = pixel_to_grid(pix[:, 0], pix[:, 1], width, height)          # (B, H', W', 2)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def rigid_pixels(tgt_depth: torch.Tensor, t_src_tgt: torch.Tensor, k: torch.Tensor,
                 points: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Where target pixels land in the source image.

    tgt_depth (B, 1, H, W) metres, t_src_tgt (B, 4, 4), k (B, 3, 3) -> pixel coordinates
    (B, 2, H, W) [u, v] and valid (B, 1, H, W) float {0, 1}: in front of the source camera and
    inside its image. ``points``: the target's back-projected points (B, 3, N) when already computed.
    """
    check_shape(tgt_depth, "B,1,H,W", "tgt_depth")
    batch, _, height, width = tgt_depth.shape
    if points is None:
        points = backproject(tgt_depth, torch.linalg.inv(k))          # (B, 3, N) target camera
    pix, z = project(transform_points(t_src_tgt, points), k)          # (B, 2, N), (B, 1, N)
    valid = (z[:, 0] > 1e-3) & in_image(pix[:, 0], pix[:, 1], width, height)
    return pix.reshape(batch, 2, height, width), valid.reshape(batch, 1, height, width).to(tgt_depth.dtype)


def inverse_warp(src_img: torch.Tensor, tgt_depth: torch.Tensor, t_src_tgt: torch.Tensor,
                 k: torch.Tensor, padding_mode: str = "border") -> tuple[torch.Tensor, torch.Tensor]:
    """Synthesise the target view from a source image.

    src_img (B, C, H, W), tgt_depth (B, 1, H, W) metres, t_src_tgt (B, 4, 4), k (B, 3, 3)
    -> warped (B, C, H, W), valid (B, 1, H, W) float {0, 1} (see :func:`rigid_pixels`).
    """
    check_shape(src_img, "B,C,H,W", "src_img")
    pix, valid = rigid_pixels(tgt_depth, t_src_tgt, k)
    warped = sample_pixels(src_img, pix, padding_mode)
    return warped, valid.to(src_img.dtype)
