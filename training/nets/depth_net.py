"""Small DispNet-style encoder-decoder with skips predicting multi-scale inverse depth.

Output: a list of ``num_scales`` inverse-depth maps in 1/m, finest first; scale s has shape
(B, 1, H / 2^s, W / 2^s). Each is ``1/max_depth + (1/min_depth - 1/max_depth) * sigmoid(x)``
(monodepth2's disp_to_depth), so depth = 1 / inv_depth lies in [min_depth, max_depth].
H and W must be multiples of 32 (five stride-2 stages).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .blocks import ConvELU, SkipEncoderDecoder, bounded_inv_depth, init_depth_logit, inv_depth_range

__all__ = ["ConvELU", "DepthNet"]


class DepthNet(SkipEncoderDecoder):
    def __init__(self, in_channels: int = 1, enc_channels=(16, 32, 64, 128, 192),
                 dec_channels=(16, 32, 48, 64, 96), num_scales: int = 4,
                 min_depth: float = 0.1, max_depth: float = 100.0, init_depth: float | None = None):
        super().__init__(in_channels, enc_channels, dec_channels, num_scales)
        self.min_disp, self.max_disp = inv_depth_range(min_depth, max_depth)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dec_channels[s], 1, 3)) for s in range(num_scales))
        if init_depth is not None:
            bias = init_depth_logit(init_depth, self.min_disp, self.max_disp)
            for head in self.heads:
                nn.init.constant_(head[1].bias, bias)
                head[1].weight.data.mul_(0.1)

    def inv_depths(self, levels: dict[int, torch.Tensor]) -> list[torch.Tensor]:
        """Decoder features per level -> [inv_depth (B, 1, H/2^s, W/2^s) for s = 0..num_scales-1]."""
        return [bounded_inv_depth(self.heads[s](levels[s]), self.min_disp, self.max_disp)
                for s in range(self.num_scales)]

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """image (B, C, H, W) normalised -> [inv_depth (B, 1, H/2^s, W/2^s) for s = 0..num_scales-1]."""
        return self.inv_depths(self.decode(self.encode(image)))
