"""The depth-hint loss of Depth Hints (Watson et al., ICCV 2019), for stereo-trained depth nets.

Per pixel, the hint (an SGBM depth of the same stereo pair, ``vode_training.data.depth_hints``)
supervises the predicted depth only where warping the right image with the hint reconstructs the
left image better than warping it with the prediction; there ``log(1 + |d - d_hint|)`` pulls the
prediction to the hint. Elsewhere the photometric loss alone decides. Shapes: B batch.
"""
from __future__ import annotations

import torch

from ..geometry import inverse_warp
from .photometric import photometric_error


def hint_error(right: torch.Tensor, tgt: torch.Tensor, hint: torch.Tensor, t_right_left: torch.Tensor,
               k: torch.Tensor, kind: str = "ssim_l1", ssim_weight: float = 0.85) -> torch.Tensor:
    """Photometric error of the right image warped into the left with the hint: (B, 1, H, W), +inf
    where there is no hint or the warp leaves the image (so the hint never wins there).

    right, tgt (B, C, H, W); hint (B, 1, H, W) metres, 0 = no hint; t_right_left (B, 4, 4); k (B, 3, 3)."""
    has = hint > 0
    warped, valid = inverse_warp(right, torch.where(has, hint, torch.ones_like(hint)), t_right_left, k)
    err = photometric_error(warped, tgt, kind, ssim_weight)
    return torch.where(has & (valid > 0), err, torch.full_like(err, float("inf")))


def hint_loss(depth: torch.Tensor, hint: torch.Tensor, err_pred: torch.Tensor, err_hint: torch.Tensor
              ) -> torch.Tensor:
    """Mean of log(1 + |depth - hint|) where the hint reconstructs better (err_hint < err_pred).

    depth, hint, err_pred, err_hint (B, 1, H, W); 0 where the hint never wins."""
    mask = (err_hint < err_pred.detach()).to(depth.dtype)
    err = torch.log1p((depth - hint).abs()) * mask
    return err.sum() / mask.sum().clamp(min=1.0)
