"""SfMLearner-style pose CNN: [target, source] stacked on channels -> 6-DoF T_source_target.

Input (B, 2C, H, W) normalised, target first; output (B, 6) pose vector [tx, ty, tz, rx, ry, rz]
(metres, radians; vode_ros.core.geometry convention) of T_source_target, i.e. it maps target-camera
points into the source camera. As SfMLearner, the global-average-pooled head is scaled by
``output_scale`` (0.01) so the initial motion is near zero.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .blocks import PooledPoseHead


class PoseNet(PooledPoseHead, nn.Module):
    def __init__(self, in_channels: int = 1, channels=(16, 32, 64, 128, 256, 256, 256),
                 output_scale: float = 0.01, trans_scale: float | None = None):
        super().__init__()
        layers = []
        cin = 2 * in_channels
        kernels = [7, 5] + [3] * (len(channels) - 2)
        for c, k in zip(channels, kernels):
            layers += [nn.Conv2d(cin, c, k, stride=2, padding=k // 2), nn.ReLU(inplace=True)]
            cin = c
        self.features = nn.Sequential(*layers)
        self.add_pose_head(cin, output_scale, trans_scale)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, 2C, H, W) = [target, source] -> (B, 6) T_source_target pose vector."""
        return self.pose_vector(self.features(frames))
