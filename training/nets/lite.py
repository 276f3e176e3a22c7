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

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, dilation: int = 1,
                 relu: bool = True, bn: bool = True):
        pad = dilation * (k - 1) // 2
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, groups=groups, bias=not bn)]
        if bn:
            layers.append(nn.BatchNorm2d(cout))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class SepConv(nn.Sequential):
    """Depthwise kxk (stride, dilation) + pointwise 1x1, ReLU after each (MobileNet v1 block)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1, bn: bool = True, k: int = 3):
        super().__init__(ConvBNReLU(cin, cin, k, stride, groups=cin, dilation=dilation, bn=bn),
                         ConvBNReLU(cin, cout, 1, bn=bn))


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
        if not 1 <= num_scales <= 4:
            raise ValueError("num_scales must be 1..4")
        self.num_scales = num_scales
        self.min_disp, self.max_disp = 1.0 / max_depth, 1.0 / min_depth
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
            frac = (1.0 / init_depth - self.min_disp) / (self.max_disp - self.min_disp)
            frac = min(max(frac, 1e-4), 1 - 1e-4)
            for head in self.heads:
                nn.init.constant_(head.bias, math.log(frac / (1 - frac)))

    def _map(self, x: torch.Tensor) -> torch.Tensor:
        return self.min_disp + (self.max_disp - self.min_disp) * torch.sigmoid(x)

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


class LitePoseNet(nn.Module):
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
        self.head = nn.Conv2d(cin, 6, 1)
        self.output_scale = float(output_scale)
        self.trans_scale = float(output_scale if trans_scale is None else trans_scale)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, 2C, H, W) = [target, source] -> (B, 6) T_source_target pose vector."""
        x = self.head(self.features(frames)).mean(dim=(2, 3))
        return torch.cat([self.trans_scale * x[:, :3], self.output_scale * x[:, 3:]], dim=1)
