"""A supervised depth term from a depth sensor (RGB-D cameras: Kinect, RealSense, a depth topic).

An RGB-D robot already measures depth where its sensor sees (about 70 % of the pixels indoors,
none on glass, black or far surfaces). Pulling the net to it there is legitimate supervision and
teaches metric scale; the photometric loss and the smoothness prior fill the holes. The error is
the absolute log ratio ``|log d - log d_gt|`` (scale-aware, and equal for 10 % too near or too
far at 0.5 m and at 5 m), averaged over pixels with a valid reading. Shapes: B batch.
"""
from __future__ import annotations

import torch


def sensor_depth_loss(depth: torch.Tensor, gt: torch.Tensor, min_depth: float, max_depth: float) -> torch.Tensor:
    """Mean |log depth - log gt| over pixels where ``min_depth < gt < max_depth``.

    depth (B, 1, H, W) metres, gt (B, 1, H, W) metres with 0 = no reading -> scalar (0 when no pixel
    of the batch has a reading, so batches of sequences without a sensor train as before)."""
    valid = (gt > min_depth) & (gt < max_depth)
    if not bool(valid.any()):
        return depth.new_zeros(())
    safe_gt = torch.where(valid, gt, torch.ones_like(gt))
    err = (depth.clamp(min=1e-3).log() - safe_gt.log()).abs()
    return err[valid].mean()
