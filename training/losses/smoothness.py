"""Inverse-depth smoothness priors. All take disp (B, 1, H, W) and return a scalar.

- ``edge_aware_smoothness``: first-order gradients of the mean-normalised inverse depth,
  down-weighted by exp(-|image gradient|) (monodepth / monodepth2); the normalisation stops
  the trivial "shrink the inverse depth" solution.
- ``second_order_smoothness``: SfMLearner's L1 of second derivatives (xx, xy, yx, yy), which
  allows planar (linearly varying) inverse depth at no cost.
- ``multiscale_smoothness``: either over a pyramid of inverse depths, scale s weighted 1 / 2^s,
  the image area-averaged to each scale: what every method's smoothness term computes
  (``vode_training.methods.smoothness_term.SmoothnessTerm``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

KINDS = ("edge_aware", "second_order")


def _dx(t: torch.Tensor) -> torch.Tensor:
    return t[:, :, :, :-1] - t[:, :, :, 1:]


def _dy(t: torch.Tensor) -> torch.Tensor:
    return t[:, :, :-1, :] - t[:, :, 1:, :]


def edge_aware_smoothness(disp: torch.Tensor, image: torch.Tensor, normalise: bool = True) -> torch.Tensor:
    """disp (B, 1, H, W), image (B, C, H, W) in [0, 1] -> scalar."""
    if normalise:
        disp = disp / (disp.mean(dim=(2, 3), keepdim=True) + 1e-7)
    wx = torch.exp(-_dx(image).abs().mean(1, keepdim=True))
    wy = torch.exp(-_dy(image).abs().mean(1, keepdim=True))
    return (_dx(disp).abs() * wx).mean() + (_dy(disp).abs() * wy).mean()


def second_order_smoothness(disp: torch.Tensor, normalise: bool = False) -> torch.Tensor:
    """disp (B, 1, H, W) -> mean |d2/dx2| + |d2/dxdy| + |d2/dydx| + |d2/dy2| (SfMLearner)."""
    if normalise:
        disp = disp / (disp.mean(dim=(2, 3), keepdim=True) + 1e-7)
    gx, gy = _dx(disp), _dy(disp)
    return _dx(gx).abs().mean() + _dy(gx).abs().mean() + _dx(gy).abs().mean() + _dy(gy).abs().mean()


def multiscale_smoothness(disps: Sequence[torch.Tensor], images: torch.Tensor | Sequence[torch.Tensor],
                          kind: str = "edge_aware", normalise: bool = True, reduce: str = "mean") -> torch.Tensor:
    """disps: inverse depths (B, 1, h_s, w_s), finest first; images: the image (B, C, H, W) at the
    finest scale (area-averaged to each scale) or one per scale. -> the scales' smoothness, scale s
    weighted 1 / 2^s, their mean (``reduce`` "mean") or sum ("sum")."""
    if kind not in KINDS:
        raise ValueError(f"loss.smoothness must be 'edge_aware' or 'second_order', got {kind!r}")
    losses = []
    for s, disp in enumerate(disps):
        if kind == "second_order":
            losses.append(second_order_smoothness(disp, normalise=normalise) / 2 ** s)
            continue
        img = images[s] if isinstance(images, (list, tuple)) else images
        if img.shape[-2:] != disp.shape[-2:]:
            img = F.interpolate(img, size=disp.shape[-2:], mode="area")
        losses.append(edge_aware_smoothness(disp, img, normalise=normalise) / 2 ** s)
    stacked = torch.stack(losses)
    return stacked.sum() if reduce == "sum" else stacked.mean()
