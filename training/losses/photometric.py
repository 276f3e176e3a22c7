"""Photometric reconstruction losses.

``photometric_error`` returns a per-pixel error map (B, 1, H, W) averaged over channels:
- "l1":      |a - b|
- "ssim_l1": alpha * (1 - SSIM) / 2 + (1 - alpha) * |a - b|  (monodepth2, alpha = 0.85,
             SSIM on 3x3 windows with reflection padding)
``reprojection_loss`` combines the maps of several sources: masked mean over all of them, or
monodepth2's per-pixel minimum over sources (occlusion handling), optionally with auto-masking
(pixels where an un-warped source already matches better than any warp are ignored).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def box_mean3(x: torch.Tensor) -> torch.Tensor:
    """Mean over 3x3 windows, no padding: (..., H, W) -> (..., H - 2, W - 2). The same numbers as
    avg_pool2d(3, stride 1), as two passes of shifted-slice sums (rows, then columns), which run
    about three times faster forward + backward on CPU than the pooling kernel at these sizes
    (one-channel maps, where avg_pool2d finds nothing to vectorise over)."""
    s = x[..., :-2] + x[..., 1:-1] + x[..., 2:]
    return (s[..., :-2, :] + s[..., 1:-1, :] + s[..., 2:, :]) * (1.0 / 9.0)


class SSIM(nn.Module):
    """Per-pixel SSIM (B, C, H, W) of two images in [0, 1] on 3x3 windows (reflection padded).
    window_mean: the 3x3 window mean of a padded map (box_mean3; `vode bench train` times
    nn.AvgPool2d(3, 1), monodepth2's layer, against it)."""

    def __init__(self, c1: float = 0.01 ** 2, c2: float = 0.03 ** 2, window_mean=box_mean3):
        super().__init__()
        self.c1, self.c2, self.window_mean = c1, c2, window_mean

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        mean = self.window_mean
        x, y = F.pad(x, (1, 1, 1, 1), mode="reflect"), F.pad(y, (1, 1, 1, 1), mode="reflect")
        mu_x, mu_y = mean(x), mean(y)
        sigma_x = mean(x * x) - mu_x ** 2
        sigma_y = mean(y * y) - mu_y ** 2
        sigma_xy = mean(x * y) - mu_x * mu_y
        num = (2 * mu_x * mu_y + self.c1) * (2 * sigma_xy + self.c2)
        den = (mu_x ** 2 + mu_y ** 2 + self.c1) * (sigma_x + sigma_y + self.c2)
        return (num / den).clamp(-1, 1)


_SSIM = SSIM()


def photometric_error(pred: torch.Tensor, target: torch.Tensor, kind: str = "ssim_l1",
                      ssim_weight: float = 0.85) -> torch.Tensor:
    """pred, target (B, C, H, W) in [0, 1] -> per-pixel error (B, 1, H, W)."""
    l1 = (pred - target).abs().mean(1, keepdim=True)
    if kind == "l1":
        return l1
    if kind == "ssim_l1":
        ssim = ((1 - _SSIM(pred, target)) / 2).mean(1, keepdim=True)
        return ssim_weight * ssim + (1 - ssim_weight) * l1
    raise ValueError(f"photometric kind must be 'l1' or 'ssim_l1', got {kind!r}")


def masked_mean(err: torch.Tensor, mask: torch.Tensor | None, eps: float = 1e-7) -> torch.Tensor:
    """Mean of err (B, 1, H, W) over pixels where mask (B, 1, H, W) is 1 (all pixels if None)."""
    if mask is None:
        return err.mean()
    return (err * mask).sum() / (mask.sum() + eps)


def reprojection_loss(errors: list[torch.Tensor], masks: list[torch.Tensor] | None = None,
                      min_over_sources: bool = True,
                      identity_errors: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Combine per-source error maps (each (B, 1, H, W)) into one scalar.

    masks: per-source validity (1 = the warp lands inside the source); invalid pixels get a
    large error so the minimum picks another source, and are excluded from the mean.
    min_over_sources: monodepth2's per-pixel minimum; else the masked mean over all sources.
    identity_errors: errors of the un-warped sources (auto-masking, needs min_over_sources).
    """
    if masks is None:
        masks = [torch.ones_like(e) for e in errors]
    if not min_over_sources:
        err = torch.cat(errors, 1)
        mask = torch.cat(masks, 1)
        return masked_mean(err, mask)
    big = 1e3
    err = torch.cat([e + big * (1 - m) for e, m in zip(errors, masks)], 1)   # (B, S, H, W)
    best, _ = err.min(1, keepdim=True)
    valid = (best < big).to(best.dtype)
    if identity_errors:
        ident = torch.cat(identity_errors, 1)
        ident = ident + 1e-5 * torch.randn_like(ident)          # break ties (monodepth2)
        ident_best, _ = ident.min(1, keepdim=True)
        valid = valid * (best < ident_best).to(best.dtype)
    return masked_mean(best * valid, valid)
