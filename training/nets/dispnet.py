"""The SfMLearner depth network (DispNet, Zhou et al. CVPR 2017), as in the official TF code and
ClementPinard's SfmLearner-Pytorch (``DispNetS``), with the forward interface of ``DepthNet``.

Architecture (reproduced):
- encoder: 7 stages, channels 32, 64, 128, 256, 512, 512, 512, kernel sizes 7, 5, 3, 3, 3, 3, 3;
  each stage is conv(stride 2) + ReLU, conv(stride 1) + ReLU, zero "same" padding;
- decoder: 7 levels; ``upconv`` = ConvTranspose2d 3x3 stride 2 (+ ReLU) to 512, 512, 256, 128,
  64, 32, 16 channels, cropped to the skip's size, concatenated with the encoder skip (and, at
  the three finest levels, the 2x bilinearly upsampled coarser disparity), ``iconv`` 3x3 + ReLU;
- 4 disparity heads (3x3 conv + sigmoid) at H/8, H/4, H/2, H.

Output: a list of ``num_scales`` maps, finest first, scale s of shape (B, 1, H/2^s, W/2^s) (as
``DepthNet``). ``output`` picks the mapping of the sigmoid:
- ``'sfmlearner'``: ``10 * sigmoid(x) + 0.01`` (DISP_SCALING, MIN_DISP of the original), a
  disparity of arbitrary unit (monocular SfMLearner);
- ``'bounded'`` (default): ``1/max_depth + (1/min_depth - 1/max_depth) * sigmoid(x)``, inverse
  depth in 1/m like ``DepthNet`` (monodepth2's disp_to_depth), so depth lies in
  [min_depth, max_depth]; with ``init_depth`` the heads start near that constant depth.
In both modes the coarser map fed to the next decoder level is the mapped output (as the original).
Any H, W work (outputs are cropped like the original's ``crop_like``); multiples of 128 need no crop.
About 31.6 M parameters at in_channels=3.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .blocks import check_num_scales, init_depth_logit

CONV_CHANNELS = (32, 64, 128, 256, 512, 512, 512)
CONV_KERNELS = (7, 5, 3, 3, 3, 3, 3)
UPCONV_CHANNELS = (512, 512, 256, 128, 64, 32, 16)
DISP_SCALING, MIN_DISP = 10.0, 0.01


def _downsample_conv(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=2, padding=(k - 1) // 2), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, k, padding=(k - 1) // 2), nn.ReLU(inplace=True))


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True))


def _upconv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
                         nn.ReLU(inplace=True))


def _crop_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return x[:, :, :ref.shape[2], :ref.shape[3]]


class DispNet(nn.Module):
    def __init__(self, in_channels: int = 3, num_scales: int = 4, min_depth: float = 0.1,
                 max_depth: float = 100.0, init_depth: float | None = None, output: str = "bounded"):
        super().__init__()
        if output not in ("sfmlearner", "bounded"):
            raise ValueError(f"output must be 'sfmlearner' or 'bounded', got {output!r}")
        check_num_scales(num_scales)
        self.output, self.num_scales = output, num_scales
        if output == "sfmlearner":
            self.disp_scale, self.disp_offset = DISP_SCALING, MIN_DISP
        else:
            self.disp_offset = 1.0 / max_depth
            self.disp_scale = 1.0 / min_depth - 1.0 / max_depth
        cp, up = CONV_CHANNELS, UPCONV_CHANNELS
        self.convs = nn.ModuleList()
        cin = in_channels
        for c, k in zip(cp, CONV_KERNELS):
            self.convs.append(_downsample_conv(cin, c, k))
            cin = c
        # Decoder levels 7..1 (level l ends at the resolution of encoder stage l-1, i.e. H / 2^(l-1)).
        self.upconvs = nn.ModuleList()
        self.iconvs = nn.ModuleList()
        for j in range(7):                              # j = 0 -> level 7, j = 6 -> level 1
            self.upconvs.append(_upconv(cin, up[j]))
            skip = cp[5 - j] if j < 6 else 0            # level 7 skips conv6, ..., level 2 conv1
            extra = 1 if j >= 4 else 0                  # levels 3, 2, 1 also take the upsampled disparity
            self.iconvs.append(_conv(up[j] + skip + extra, up[j]))
            cin = up[j]
        # Heads at levels 4, 3, 2, 1 (decoder j = 3..6): H/8, H/4, H/2, H.
        self.heads = nn.ModuleList(nn.Conv2d(up[j], 1, 3, padding=1) for j in range(3, 7))
        for m in self.modules():                        # SfmLearner-Pytorch init_weights
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        if init_depth is not None and output == "bounded":
            bias = init_depth_logit(init_depth, self.disp_offset, self.disp_offset + self.disp_scale)
            for head in self.heads:
                nn.init.constant_(head.bias, bias)
                head.weight.data.mul_(0.1)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """image (B, C, H, W) normalised -> [inv_depth (B, 1, H/2^s, W/2^s) for s = 0..num_scales-1]."""
        feats = []
        x = image
        for conv in self.convs:
            x = conv(x)
            feats.append(x)                              # feats[i]: stage i+1, H / 2^(i+1)
        disps = []                                       # coarsest first
        disp = None
        for j in range(7):
            ref = feats[5 - j] if j < 6 else image
            x = _crop_like(self.upconvs[j](x), ref)
            parts = [x]
            if j < 6:
                parts.append(feats[5 - j])
            if disp is not None:
                up = F.interpolate(disp, scale_factor=2.0, mode="bilinear", align_corners=False)
                parts.append(_crop_like(up, ref))
            x = self.iconvs[j](torch.cat(parts, dim=1) if len(parts) > 1 else x)
            if j >= 3:
                disp = self.disp_scale * torch.sigmoid(self.heads[j - 3](x)) + self.disp_offset
                disps.append(disp)
        return disps[::-1][:self.num_scales]
