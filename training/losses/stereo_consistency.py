"""UnDeepVO's geometric consistency losses (Li et al., ICRA 2018). All return a scalar.

- ``lr_disparity_consistency``: the left disparity map must equal the right disparity map
  sampled where each left pixel lands in the right image (and vice versa): rectified stereo,
  disparity d = fx * b / z is the same for a 3D point seen from both cameras. Disparities are
  expressed as a fraction of the image width (monodepth's unit) so the value does not depend on
  the resolution.
- ``pose_consistency``: the motion of the right camera predicted from the right image pair must
  equal the motion predicted from the left pair. The paper compares the two directly; that is
  exact only for pure translation. With ``conjugate=True`` (default) the left motion T_L is
  first carried to the right camera, T_R = S T_L S^-1 with S = T_right_left, which holds for
  any motion of a rigid rig. L1 on translation (m) + ``rot_weight`` * L1 on Euler angles (rad).
- ``registration_3d``: 3D point-cloud registration between k (target) and k+1 (source):
  the target cloud (target depth back-projected) moved by the predicted T_source_target must
  equal the source cloud (source depth back-projected) sampled at the projected pixels. L1 in
  metres per point (sum over x, y, z), or relative to the point depth with ``relative=True``.
Every loss takes an optional extra ``mask`` (B, 1, H, W) (e.g. pixels without ground truth in a
test) on top of the validity of the warp (in front of the camera, inside the other image).
``disparity_error`` and ``registration_error`` are the same losses on warps done elsewhere (a
method stacks several maps into one ``inverse_warp`` call to save time).
"""
from __future__ import annotations

import torch

from ..geometry import backproject, invert_se3, inverse_warp, mat2euler, transform_points
from .photometric import masked_mean


def _combine(valid: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return valid if mask is None else valid * mask


def depth_to_disparity(depth: torch.Tensor, k: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    """Depth (B, 1, H, W) m, K (B, 3, 3), baseline (B,) m -> disparity (B, 1, H, W) as a fraction of W."""
    width = depth.shape[-1]
    fb = (k[:, 0, 0] * baseline).view(-1, 1, 1, 1)
    return fb / depth / width


def lr_disparity_consistency(depth_left: torch.Tensor, depth_right: torch.Tensor, k: torch.Tensor,
                             t_right_left: torch.Tensor, baseline: torch.Tensor,
                             mask_left: torch.Tensor | None = None,
                             mask_right: torch.Tensor | None = None) -> torch.Tensor:
    """Mean |d_L - d_R sampled into the left view| + |d_R - d_L sampled into the right view|.

    depth_left / depth_right (B, 1, H, W) metres of the two cameras at the same time,
    t_right_left (B, 4, 4) the stereo transform (geometry.stereo_transform), baseline (B,) m.
    """
    disp_l = depth_to_disparity(depth_left, k, baseline)
    disp_r = depth_to_disparity(depth_right, k, baseline)
    r_in_l, valid_l = inverse_warp(disp_r, depth_left, t_right_left, k)
    l_in_r, valid_r = inverse_warp(disp_l, depth_right, invert_se3(t_right_left), k)
    return disparity_error(disp_l, r_in_l, valid_l, mask_left) + disparity_error(disp_r, l_in_r, valid_r, mask_right)


def disparity_error(disp: torch.Tensor, other_warped: torch.Tensor, valid: torch.Tensor,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean |disp - the other view's disparity sampled into this view| over valid pixels (one direction)."""
    return masked_mean((disp - other_warped).abs(), _combine(valid, mask))


def pose_consistency(t_left: torch.Tensor, t_right: torch.Tensor, t_right_left: torch.Tensor | None = None,
                     conjugate: bool = True, rot_weight: float = 1.0) -> torch.Tensor:
    """t_left, t_right (B, 4, 4): T_source_target of the left and of the right camera, predicted
    independently; t_right_left (B, 4, 4) the stereo transform (needed when ``conjugate``).
    -> mean L1 of the translations + rot_weight * mean L1 of the Euler angles."""
    expected = t_left
    if conjugate:
        if t_right_left is None:
            raise ValueError("pose_consistency(conjugate=True) needs t_right_left")
        expected = t_right_left @ t_left @ invert_se3(t_right_left)
    trans = (t_right[:, :3, 3] - expected[:, :3, 3]).abs().sum(1).mean()
    rot = (mat2euler(t_right[:, :3, :3]) - mat2euler(expected[:, :3, :3])).abs().sum(1).mean()
    return trans + rot_weight * rot


def registration_3d(depth_tgt: torch.Tensor, depth_src: torch.Tensor, t_src_tgt: torch.Tensor, k: torch.Tensor,
                    relative: bool = False, mask: torch.Tensor | None = None) -> torch.Tensor:
    """depth_tgt, depth_src (B, 1, H, W) metres, t_src_tgt (B, 4, 4), K (B, 3, 3) -> scalar.

    error(p) = || T_src_tgt P_tgt(p) - P_src(pi(T_src_tgt P_tgt(p))) ||_1, P = K^-1 [u, v, 1] D,
    pi the projection into the source image with bilinear sampling of the source cloud; averaged
    over the pixels whose point lands inside the source image. ``relative``: divided by the depth
    of the moved target point (scale-free, far points weigh less).
    """
    b, _, h, w = depth_tgt.shape
    k_inv = torch.linalg.inv(k)
    cloud_src = backproject(depth_src, k_inv).view(b, 3, h, w)                  # source camera frame
    sampled, valid = inverse_warp(cloud_src, depth_tgt, t_src_tgt, k)          # (B, 3, H, W)
    return registration_error(moved_cloud(depth_tgt, t_src_tgt, k_inv), sampled, valid, relative, mask)


def moved_cloud(depth_tgt: torch.Tensor, t_src_tgt: torch.Tensor, k_inv: torch.Tensor) -> torch.Tensor:
    """Target cloud in the source camera: T_src_tgt K^-1 [u, v, 1] D -> (B, 3, H, W)."""
    b, _, h, w = depth_tgt.shape
    return transform_points(t_src_tgt, backproject(depth_tgt, k_inv)).view(b, 3, h, w)


def registration_error(moved: torch.Tensor, sampled: torch.Tensor, valid: torch.Tensor, relative: bool = False,
                       mask: torch.Tensor | None = None) -> torch.Tensor:
    """moved (B, 3, H, W) target cloud in the source frame, sampled (B, 3, H, W) source cloud at
    the projections -> mean L1 (sum over x, y, z) over valid pixels, / depth if ``relative``."""
    err = (moved - sampled).abs().sum(1, keepdim=True)                          # (B, 1, H, W)
    if relative:
        err = err / moved[:, 2:3].clamp(min=1e-3)
    return masked_mean(err, _combine(valid, mask))
