"""Lite depth and pose nets for real-time CPU inference (ONNX Runtime, 2 threads, 416x128).

``LiteDepthNet`` keeps ``DepthNet``'s interface: image (B, C, H, W) normalised -> list of
``num_scales`` inverse-depth maps in 1/m, finest first, scale s (B, 1, H/2^s, W/2^s), each
``1/max_depth + (1/min_depth - 1/max_depth) * sigmoid(x)``. H and W must be multiples of 32.
``LitePoseNet`` keeps ``PoseNet``'s: frames (B, 2C, H, W) = [target, source] -> (B, 6)
[tx, ty, tz, rx, ry, rz] of T_source_target, head scaled by ``output_scale`` / ``trans_scale``.

Design (Lite-Mono flavoured, shaped by what ONNX Runtime's CPU kernels do fast; profiled with
ORT's profiler on AVX-512, where ORT runs convs in NCHWc blocks of 16 channels):
- encoder (5 stride-2 stages, 16, 32, 64, 128, 256 channels): a 3x3 stem, then per stage a
  stride-2 depthwise-separable conv and residual blocks "dilated depthwise 3x3 -> pointwise
  expand (x2) -> ReLU -> pointwise project" (Lite-Mono's consecutive dilated convolutions,
  dilations 1, 2, 3, without its attention block); BatchNorm (folded into the convs at export),
  ReLU only (fused into Conv, friendly to int8), zero padding (no Pad nodes); channel counts
  are multiples of 16 (fewer cost the same in NCHWc);
- decoder at H/16 .. H/2: 1x1 reduce, nearest 2x upsampling, the encoder skip *added* after a
  1x1 projection (no Concat copies), one depthwise-separable 3x3 per level;
- heads: 3x3 conv + sigmoid at H/2, H/4, H/8; the full-resolution map is a sub-pixel head
  (3x3 conv to 4 maps at H/2 + pixel shuffle): no full-resolution feature map at all, which
  was half the run time of a decoder level at full resolution.
Default: blocks per stage 0, 1, 3, 4, 3; ~1.27 M parameters (in_channels 1 or 3). In torch on CPU it is
not faster than DepthNet (depthwise convs, unfolded BN); the speed is an ONNX Runtime property.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import (ConvBNReLU, PooledPoseHead, SepConv, bounded_inv_depth, check_num_scales, init_depth_logit,
                     inv_depth_range)

__all__ = ["ConvBNReLU", "SepConv", "DilatedBlock", "LiteDepthNet", "LitePoseNet"]


class DilatedBlock(nn.Module):
    """x + project(relu(expand(dwconv_dilated(x)))) — Lite-Mono's CDC block with ReLU, no attention."""

    def __init__(self, c: int, dilation: int = 1, expand: int = 2):
        super().__init__()
        self.dw = ConvBNReLU(c, c, 3, groups=c, dilation=dilation, relu=False)
        self.pw1 = ConvBNReLU(c, c * expand, 1)
        self.pw2 = ConvBNReLU(c * expand, c, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.pw2(self.pw1(self.dw(x))))


class LiteDepthNet(nn.Module):
    def __init__(self, in_channels: int = 1, enc_channels=(16, 32, 64, 128, 256), enc_blocks=(0, 1, 3, 4, 3),
                 dec_channels=(16, 32, 64, 128), num_scales: int = 4, min_depth: float = 0.1,
                 max_depth: float = 100.0, init_depth: float | None = None, expand: int = 2, head_kernel: int = 3):
        super().__init__()
        if len(enc_channels) != 5 or len(enc_blocks) != 5:
            raise ValueError("enc_channels and enc_blocks need 5 entries (five stride-2 stages)")
        if len(dec_channels) != 4:
            raise ValueError("dec_channels needs 4 entries (decoder levels at H/2, H/4, H/8, H/16)")
        check_num_scales(num_scales)
        self.num_scales = num_scales
        self.min_disp, self.max_disp = inv_depth_range(min_depth, max_depth)
        self.encoder = nn.ModuleList()
        cin = in_channels
        for i, (c, nb) in enumerate(zip(enc_channels, enc_blocks)):   # stage i -> H / 2^(i+1)
            down = ConvBNReLU(cin, c, 3, stride=2) if i == 0 else SepConv(cin, c, stride=2)
            blocks = [DilatedBlock(c, dilation=(1, 2, 3)[b % 3], expand=expand) for b in range(nb)]
            self.encoder.append(nn.Sequential(down, *blocks))
            cin = c
        self.reduce = nn.ModuleList()    # 1x1 projection of the coarser features before upsampling
        self.skip = nn.ModuleList()      # 1x1 projection of the encoder skip (added)
        self.fuse = nn.ModuleList()      # depthwise-separable 3x3 after the sum
        for i in range(4, 0, -1):        # decoder level i -> resolution H / 2^i
            d = dec_channels[i - 1]
            self.reduce.append(ConvBNReLU(cin, d, 1, bn=False))
            self.skip.append(ConvBNReLU(enc_channels[i - 1], d, 1, relu=False, bn=False))
            self.fuse.append(SepConv(d, d, bn=False))
            cin = d
        # Scale 0 (full resolution) is a sub-pixel head on the H/2 features: 4 maps + pixel shuffle.
        pad = head_kernel // 2
        self.heads = nn.ModuleList(
            [nn.Conv2d(dec_channels[0], 4, head_kernel, padding=pad)]
            + [nn.Conv2d(dec_channels[s - 1], 1, head_kernel, padding=pad) for s in range(1, num_scales)])
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, DilatedBlock):             # residual blocks start as identity
                nn.init.zeros_(m.pw2[1].weight)
        for head in self.heads:
            nn.init.normal_(head.weight, std=1e-2)
            nn.init.zeros_(head.bias)
        if init_depth is not None:
            bias = init_depth_logit(init_depth, self.min_disp, self.max_disp)
            for head in self.heads:
                nn.init.constant_(head.bias, bias)

    def _map(self, x: torch.Tensor) -> torch.Tensor:
        return bounded_inv_depth(x, self.min_disp, self.max_disp)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """image (B, C, H, W) normalised -> [inv_depth (B, 1, H/2^s, W/2^s) for s = 0..num_scales-1]."""
        feats = []
        x = image
        for stage in self.encoder:
            x = stage(x)
            feats.append(x)                          # feats[i]: H / 2^(i+1)
        outs: dict[int, torch.Tensor] = {}
        for j, level in enumerate(range(4, 0, -1)):
            x = F.interpolate(self.reduce[j](x), scale_factor=2.0, mode="nearest")
            x = self.fuse[j](x + self.skip[j](feats[level - 1]))
            if 0 < level < self.num_scales:
                outs[level] = self._map(self.heads[level](x))
        outs[0] = F.pixel_shuffle(self._map(self.heads[0](x)), 2)
        return [outs[s] for s in range(self.num_scales)]


class LitePoseNet(PooledPoseHead, nn.Module):
    """Pose CNN on [target, source]: strided 3x3 stem, depthwise-separable strided stages, mean-pooled 1x1 head."""

    def __init__(self, in_channels: int = 1, channels=(16, 32, 64, 128, 256, 256, 256), output_scale: float = 0.01,
                 trans_scale: float | None = None):
        super().__init__()
        layers: list[nn.Module] = [ConvBNReLU(2 * in_channels, channels[0], 3, stride=2, bn=False)]
        cin = channels[0]
        for c in channels[1:]:
            layers.append(SepConv(cin, c, stride=2, bn=False))
            cin = c
        self.features = nn.Sequential(*layers)
        self.add_pose_head(cin, output_scale, trans_scale)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, 2C, H, W) = [target, source] -> (B, 6) T_source_target pose vector."""
        return self.pose_vector(self.features(frames))
