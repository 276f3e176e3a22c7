"""Inverse-depth smoothness priors. All take disp (B, 1, H, W) and return a scalar.

- ``edge_aware_smoothness``: first-order gradients of the mean-normalised inverse depth,
  down-weighted by exp(-|image gradient|) (monodepth / monodepth2); the normalisation stops
  the trivial "shrink the inverse depth" solution.
- ``second_order_smoothness``: SfMLearner's L1 of second derivatives (xx, xy, yx, yy), which
  allows planar (linearly varying) inverse depth at no cost.
"""
from __future__ import annotations

import torch


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
