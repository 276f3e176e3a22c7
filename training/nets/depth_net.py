"""Small DispNet-style encoder-decoder with skips predicting multi-scale inverse depth.

Output: a list of ``num_scales`` inverse-depth maps in 1/m, finest first; scale s has shape
(B, 1, H / 2^s, W / 2^s). Each is ``1/max_depth + (1/min_depth - 1/max_depth) * sigmoid(x)``
(monodepth2's disp_to_depth), so depth = 1 / inv_depth lies in [min_depth, max_depth].
H and W must be multiples of 32 (five stride-2 stages).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvELU(nn.Sequential):
    """3x3 conv (reflection padding) + ELU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, stride=stride), nn.ELU(inplace=True))


class DepthNet(nn.Module):
    def __init__(self, in_channels: int = 1, enc_channels=(16, 32, 64, 128, 192),
                 dec_channels=(16, 32, 48, 64, 96), num_scales: int = 4,
                 min_depth: float = 0.1, max_depth: float = 100.0, init_depth: float | None = None):
        super().__init__()
        if len(enc_channels) != 5 or len(dec_channels) != 5:
            raise ValueError("enc_channels and dec_channels need 5 entries (five stride-2 stages)")
        if not 1 <= num_scales <= 4:
            raise ValueError("num_scales must be 1..4")
        self.num_scales = num_scales
        self.min_disp, self.max_disp = 1.0 / max_depth, 1.0 / min_depth
        self.encoder = nn.ModuleList()
        cin = in_channels
        for c in enc_channels:                      # stage i -> resolution H / 2^(i+1)
            self.encoder.append(nn.Sequential(ConvELU(cin, c, stride=2), ConvELU(c, c)))
            cin = c
        self.up = nn.ModuleList()
        self.fuse = nn.ModuleList()
        for i in range(4, -1, -1):                  # decoder level i -> resolution H / 2^i
            self.up.append(ConvELU(cin, dec_channels[i]))
            skip = enc_channels[i - 1] if i > 0 else 0
            self.fuse.append(ConvELU(dec_channels[i] + skip, dec_channels[i]))
            cin = dec_channels[i]
        self.heads = nn.ModuleList(
            nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dec_channels[s], 1, 3)) for s in range(num_scales))
        if init_depth is not None:
            # Start from a plausible constant depth instead of sigmoid(0) -> ~0.2 m.
            frac = (1.0 / init_depth - self.min_disp) / (self.max_disp - self.min_disp)
            frac = min(max(frac, 1e-4), 1 - 1e-4)
            for head in self.heads:
                nn.init.constant_(head[1].bias, math.log(frac / (1 - frac)))
                head[1].weight.data.mul_(0.1)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """image (B, C, H, W) normalised -> [inv_depth (B, 1, H/2^s, W/2^s) for s = 0..num_scales-1]."""
        feats = []
        x = image
        for stage in self.encoder:
            x = stage(x)
            feats.append(x)                          # feats[i]: (B, enc[i], H/2^(i+1), W/2^(i+1))
        outs: dict[int, torch.Tensor] = {}
        for j, level in enumerate(range(4, -1, -1)):
            x = self.up[j](x)
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            if level > 0:
                x = torch.cat([x, feats[level - 1]], dim=1)
            x = self.fuse[j](x)
            if level < self.num_scales:
                outs[level] = self.min_disp + (self.max_disp - self.min_disp) * torch.sigmoid(self.heads[level](x))
        return [outs[s] for s in range(self.num_scales)]
