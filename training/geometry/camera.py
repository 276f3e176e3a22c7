"""Pinhole camera (torch, batched): pixel grid, back-projection, projection, intrinsics, depth.

Conventions (the same as ``vode_ros.core.geometry``):
- Optical camera frames: x right, y down, z forward.
- Pixel centres sit at integer coordinates (OpenCV): pixel (u, v) covers [u - 0.5, u + 0.5].
  Resizing by (sx, sy) maps u -> (u + 0.5) * sx - 0.5 (``rescale_intrinsics``).

Shapes: B batch, H x W image, N = H * W points.
"""
from __future__ import annotations

import torch

from vode_ros.core.shapes import check_shape


def pixel_grid(height: int, width: int, dtype: torch.dtype = torch.float32,
               device: torch.device | str | None = None) -> torch.Tensor:
    """Homogeneous pixel centres (1, 3, N), rows [u, v, 1], row-major (v slow, u fast)."""
    v, u = torch.meshgrid(torch.arange(height, dtype=dtype, device=device),
                          torch.arange(width, dtype=dtype, device=device), indexing="ij")
    ones = torch.ones_like(u)
    return torch.stack([u, v, ones], dim=0).reshape(1, 3, height * width)


def backproject(depth: torch.Tensor, k_inv: torch.Tensor) -> torch.Tensor:
    """Depth (B, 1, H, W) in metres, K^-1 (B, 3, 3) -> camera points (B, 3, N): X = D * K^-1 [u, v, 1]."""
    check_shape(depth, "B,1,H,W", "depth")
    check_shape(k_inv, "B,3,3", "k_inv")
    batch, _, height, width = depth.shape
    pix = pixel_grid(height, width, depth.dtype, depth.device)        # (1, 3, N)
    rays = k_inv @ pix.expand(batch, -1, -1)                           # (B, 3, N)
    return rays * depth.reshape(batch, 1, height * width)              # (B, 3, N)


def backproject_points(pix: torch.Tensor, z: torch.Tensor, k_inv: torch.Tensor) -> torch.Tensor:
    """Pixels (B, 2, N) and their depths (B, 1, N), K^-1 (B, 3, 3) -> camera points (B, 3, N): z K^-1 [u, v, 1]."""
    check_shape(pix, "B,2,N", "pix")
    check_shape(z, "B,1,N", "z")
    check_shape(k_inv, "B,3,3", "k_inv")
    ones = torch.ones_like(pix[:, :1])
    return (k_inv @ torch.cat([pix, ones], dim=1)) * z


def project(points: torch.Tensor, k: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera points (B, 3, N), K (B, 3, 3) -> pixels (B, 2, N) and depth z (B, 1, N).

    z is clamped to eps before dividing, so points behind the camera give finite (invalid) pixels.
    """
    check_shape(points, "B,3,N", "points")
    check_shape(k, "B,3,3", "k")
    cam = k @ points                                                   # (B, 3, N)
    z = cam[:, 2:3]
    pix = cam[:, :2] / z.clamp(min=eps)
    return pix, z


def transform_points(mat: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, 4, 4) @ points (B, 3, N) -> (B, 3, N)."""
    check_shape(mat, "B,4,4", "mat")
    check_shape(points, "B,3,N", "points")
    return mat[:, :3, :3] @ points + mat[:, :3, 3:]


def rescale_intrinsics(k: torch.Tensor, sx: float, sy: float) -> torch.Tensor:
    """K (B, 3, 3) of an image resized by (sx, sy): f * s, c -> (c + 0.5) * s - 0.5."""
    check_shape(k, "B,3,3", "k")
    out = k.clone()
    out[:, 0, 0] = k[:, 0, 0] * sx
    out[:, 1, 1] = k[:, 1, 1] * sy
    out[:, 0, 2] = (k[:, 0, 2] + 0.5) * sx - 0.5
    out[:, 1, 2] = (k[:, 1, 2] + 0.5) * sy - 0.5
    return out


def scale_intrinsics(k: torch.Tensor, src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> torch.Tensor:
    """K (B, 3, 3) of an image of size src (w, h) resized to dst (w, h)."""
    return rescale_intrinsics(k, dst_wh[0] / src_wh[0], dst_wh[1] / src_wh[1])


def disp_to_depth(disp: torch.Tensor, min_depth: float = 0.1, max_depth: float = 100.0) -> torch.Tensor:
    """Network inverse depth (1/m) -> depth (m), clipped to [min_depth, max_depth]."""
    return 1.0 / disp.clamp(min=1.0 / max_depth, max=1.0 / min_depth)
