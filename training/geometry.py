"""Torch twin of ``vode_ros.core.geometry``: poses, projection and differentiable inverse warping.

Conventions (the same as vode_ros.core.geometry; a test holds pose_vec2mat equal to the numpy one):
- Optical camera frames: x right, y down, z forward.
- Pose vector ``[tx, ty, tz, rx, ry, rz]``, R = Rz(rz) @ Ry(ry) @ Rx(rx), translation in metres.
- ``T_src_tgt`` maps points of the target camera into the source camera: X_s = T_s_t @ X_t.
- Pixel centres sit at integer coordinates (OpenCV, and ``scale_intrinsics``): pixel (u, v)
  covers [u - 0.5, u + 0.5]. ``grid_sample(align_corners=False)`` puts normalised -1 / +1 at
  the outer *edges* of the image, so u -> (2u + 1) / W - 1 keeps both conventions aligned.

Shapes: B batch, C channels, H x W image, N = H * W points.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def euler2mat(angles: torch.Tensor) -> torch.Tensor:
    """(B, 3) [rx, ry, rz] radians -> (B, 3, 3) R = Rz @ Ry @ Rx."""
    rx, ry, rz = angles[:, 0], angles[:, 1], angles[:, 2]
    zeros = torch.zeros_like(rx)
    ones = torch.ones_like(rx)
    cx, sx = torch.cos(rx), torch.sin(rx)
    cy, sy = torch.cos(ry), torch.sin(ry)
    cz, sz = torch.cos(rz), torch.sin(rz)
    rot_x = torch.stack([ones, zeros, zeros, zeros, cx, -sx, zeros, sx, cx], dim=1).view(-1, 3, 3)
    rot_y = torch.stack([cy, zeros, sy, zeros, ones, zeros, -sy, zeros, cy], dim=1).view(-1, 3, 3)
    rot_z = torch.stack([cz, -sz, zeros, sz, cz, zeros, zeros, zeros, ones], dim=1).view(-1, 3, 3)
    return rot_z @ rot_y @ rot_x


def pose_vec2mat(vec: torch.Tensor) -> torch.Tensor:
    """(B, 6) [t, euler] -> (B, 4, 4) homogeneous transform (same as vode_ros.core.geometry.pose_vec_to_mat)."""
    batch = vec.shape[0]
    rot = euler2mat(vec[:, 3:])                       # (B, 3, 3)
    top = torch.cat([rot, vec[:, :3].unsqueeze(-1)], dim=2)  # (B, 3, 4)
    bottom = torch.zeros(batch, 1, 4, dtype=vec.dtype, device=vec.device)
    bottom[:, 0, 3] = 1.0
    return torch.cat([top, bottom], dim=1)            # (B, 4, 4)


def invert_se3(mat: torch.Tensor) -> torch.Tensor:
    """(B, 4, 4) rigid transform -> its inverse (R^T, -R^T t)."""
    rot_t = mat[:, :3, :3].transpose(1, 2)
    trans = -rot_t @ mat[:, :3, 3:]
    out = torch.zeros_like(mat)
    out[:, :3, :3] = rot_t
    out[:, :3, 3:] = trans
    out[:, 3, 3] = 1.0
    return out


def stereo_transform(baseline: torch.Tensor | float, batch: int = 1,
                     dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """T_right_left (B, 4, 4) for a rectified pair, right camera at +baseline along x.

    X_right = X_left - [b, 0, 0]. ``baseline`` is a float or a (B,) tensor in metres.
    """
    b = torch.as_tensor(baseline, dtype=dtype, device=device).reshape(-1)
    if b.numel() == 1 and batch > 1:
        b = b.expand(batch)
    out = torch.eye(4, dtype=dtype, device=b.device).repeat(b.numel(), 1, 1)
    out[:, 0, 3] = -b
    return out


def pixel_grid(height: int, width: int, dtype: torch.dtype = torch.float32,
               device: torch.device | str | None = None) -> torch.Tensor:
    """Homogeneous pixel centres (1, 3, N), rows [u, v, 1], row-major (v slow, u fast)."""
    v, u = torch.meshgrid(torch.arange(height, dtype=dtype, device=device),
                          torch.arange(width, dtype=dtype, device=device), indexing="ij")
    ones = torch.ones_like(u)
    return torch.stack([u, v, ones], dim=0).reshape(1, 3, height * width)


def backproject(depth: torch.Tensor, k_inv: torch.Tensor) -> torch.Tensor:
    """Depth (B, 1, H, W) in metres, K^-1 (B, 3, 3) -> camera points (B, 3, N): X = D * K^-1 [u, v, 1]."""
    batch, _, height, width = depth.shape
    pix = pixel_grid(height, width, depth.dtype, depth.device)        # (1, 3, N)
    rays = k_inv @ pix.expand(batch, -1, -1)                           # (B, 3, N)
    return rays * depth.reshape(batch, 1, height * width)              # (B, 3, N)


def project(points: torch.Tensor, k: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera points (B, 3, N), K (B, 3, 3) -> pixels (B, 2, N) and depth z (B, 1, N).

    z is clamped to eps before dividing, so points behind the camera give finite (invalid) pixels.
    """
    cam = k @ points                                                   # (B, 3, N)
    z = cam[:, 2:3]
    pix = cam[:, :2] / z.clamp(min=eps)
    return pix, z


def transform_points(mat: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, 4, 4) @ points (B, 3, N) -> (B, 3, N)."""
    return mat[:, :3, :3] @ points + mat[:, :3, 3:]


def inverse_warp(src_img: torch.Tensor, tgt_depth: torch.Tensor, t_src_tgt: torch.Tensor,
                 k: torch.Tensor, padding_mode: str = "border") -> tuple[torch.Tensor, torch.Tensor]:
    """Synthesise the target view from a source image.

    src_img (B, C, H, W), tgt_depth (B, 1, H, W) metres, t_src_tgt (B, 4, 4), k (B, 3, 3)
    -> warped (B, C, H, W), valid (B, 1, H, W) float {0, 1}: the point is in front of the source
    camera and lands inside the source image (pixel centres u in [-0.5, W - 0.5]).
    ``padding_mode="border"`` (monodepth2) keeps the half-pixel rim of valid samples from being
    blended with zeros.
    """
    batch, _, height, width = src_img.shape
    points = backproject(tgt_depth, torch.linalg.inv(k))               # (B, 3, N) target camera
    pix, z = project(transform_points(t_src_tgt, points), k)          # (B, 2, N), (B, 1, N)
    u = pix[:, 0]
    v = pix[:, 1]
    valid = (z[:, 0] > 1e-3) & (u >= -0.5) & (u <= width - 0.5) & (v >= -0.5) & (v <= height - 0.5)
    grid = torch.stack([(2.0 * u + 1.0) / width - 1.0, (2.0 * v + 1.0) / height - 1.0], dim=-1)
    grid = grid.reshape(batch, height, width, 2)                       # (B, H, W, 2)
    warped = F.grid_sample(src_img, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)
    return warped, valid.reshape(batch, 1, height, width).to(src_img.dtype)


def disp_to_depth(disp: torch.Tensor, min_depth: float = 0.1, max_depth: float = 100.0) -> torch.Tensor:
    """Network inverse depth (1/m) -> depth (m), clipped to [min_depth, max_depth]."""
    return 1.0 / disp.clamp(min=1.0 / max_depth, max=1.0 / min_depth)
