"""GeoNet's ResFlowNet: residual optical flow on top of the rigid flow (moving objects, depth errors).

Input (GeoNet, Yin & Shi 2018, Fig. 2): channel-stacked
    [I_t, I_s, f_rig(t->s), I_s warped by f_rig, |I_t - warped|]
    = C + C + 2 + C + C = 4C + 2 channels (images normalised as for the other nets; the rigid
    flow divided by ``flow_norm`` pixels so it is O(1)).
Output: a list of ``num_scales`` residual flows, finest first, scale s of shape (B, 2, H/2^s, W/2^s),
each in pixels of its own scale (added to the rigid flow of that scale, as GeoNet).

Architecture: an encoder-decoder with skips and multi-scale heads, like the DepthNet
(five stride-2 stages of 3x3 conv + ELU pairs, nearest upsampling, skip concatenation); the
paper uses a ResNet-50 encoder, a smaller one fits the CPU budget of this project. The linear
2-channel heads start near zero (weights * 1e-2, zero bias), so training starts from
full flow = rigid flow. H and W must be multiples of 32.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .blocks import SkipEncoderDecoder


def resflow_input_channels(channels: int) -> int:
    """Input channels of ResFlowNet for images with ``channels`` channels."""
    return 4 * channels + 2


class ResFlowNet(SkipEncoderDecoder):
    def __init__(self, in_channels: int, enc_channels=(16, 32, 64, 128, 192), dec_channels=(16, 32, 48, 64, 96),
                 num_scales: int = 4, output_scale: float = 1.0):
        super().__init__(in_channels, enc_channels, dec_channels, num_scales)
        self.output_scale = float(output_scale)
        self.heads = nn.ModuleList(
            nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dec_channels[s], 2, 3)) for s in range(num_scales))
        for head in self.heads:
            head[1].weight.data.mul_(1e-2)
            nn.init.zeros_(head[1].bias)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x (B, 4C+2, H, W) -> [residual flow (B, 2, H/2^s, W/2^s) in pixels of scale s]."""
        levels = self.decode(self.encode(x))
        return [self.output_scale * self.heads[s](levels[s]) for s in range(self.num_scales)]
