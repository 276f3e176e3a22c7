"""Building blocks shared by the nets: conv layers, the bounded inverse-depth output, the pose
vector scaling, and the ConvELU skip encoder-decoder of DepthNet, RecurrentDepthNet and ResFlowNet.

The encoder-decoder keeps monodepth2's split (resnet_encoder: image -> list of features;
depth_decoder: features -> per-scale maps) as two methods, ``encode`` and ``decode``, on a
base class whose subclasses add their own heads. It owns its layers as attributes (``encoder``,
``up``, ``fuse``) of the net itself, not as ``encoder`` / ``decoder`` sub-modules, because the
parameter names are part of the checkpoint format (``encoder.0.0.1.weight``, ``up.0.1.weight``,
``fuse.0.1.weight``, ``heads.0.1.weight``).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


# --------------------------------------------------------------------------- layers

class ConvELU(nn.Sequential):
    """3x3 conv (reflection padding) + ELU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3, stride=stride), nn.ELU(inplace=True))


class ConvBNReLU(nn.Sequential):
    """kxk conv (zero padding keeping the size at stride 1) [+ BatchNorm] [+ ReLU]."""

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


# --------------------------------------------------------------------------- outputs

def check_num_scales(num_scales: int) -> None:
    if not 1 <= num_scales <= 4:
        raise ValueError("num_scales must be 1..4")


def inv_depth_range(min_depth: float, max_depth: float) -> tuple[float, float]:
    """-> (min_disp, max_disp) = (1 / max_depth, 1 / min_depth) in 1/m."""
    return 1.0 / max_depth, 1.0 / min_depth


def bounded_inv_depth(logits: torch.Tensor, min_disp: float, max_disp: float) -> torch.Tensor:
    """monodepth2's disp_to_depth mapping: min_disp + (max_disp - min_disp) * sigmoid(logits), any shape."""
    return min_disp + (max_disp - min_disp) * torch.sigmoid(logits)


def init_depth_logit(init_depth: float, min_disp: float, max_disp: float) -> float:
    """The head bias whose bounded output is 1 / init_depth, so training starts from a plausible
    constant depth instead of sigmoid(0) (about 0.2 m for 0.1..100 m)."""
    frac = (1.0 / init_depth - min_disp) / (max_disp - min_disp)
    frac = min(max(frac, 1e-4), 1 - 1e-4)
    return math.log(frac / (1 - frac))


def scaled_pose(v: torch.Tensor, trans_scale: float, rot_scale: float) -> torch.Tensor:
    """(B, 6) raw head output -> [trans_scale * t, rot_scale * euler] (SfMLearner's 0.01 head scale)."""
    return torch.cat([trans_scale * v[:, :3], rot_scale * v[:, 3:]], dim=1)


class PooledPoseHead:
    """Mixin for pose CNNs: a 1x1 conv to 6 values (attribute ``head``, a checkpoint name),
    global average pooling, the head scaled by ``trans_scale`` / ``output_scale`` (rotation)."""

    def add_pose_head(self, cin: int, output_scale: float, trans_scale: float | None) -> None:
        """Add the head and initialise the whole net (call last in ``__init__``)."""
        self.head = nn.Conv2d(cin, 6, 1)
        self.output_scale = float(output_scale)
        self.trans_scale = float(output_scale if trans_scale is None else trans_scale)
        self._init_pose_weights()

    def _init_pose_weights(self) -> None:
        """He init of the ReLU convs; the head starts near the identity motion.

        Why: PyTorch's default conv init shrinks ReLU activations about sixfold per layer. After
        the 7 to 14 stride-2 layers of these nets the pooled features vanish, the output is the
        head's bias for every input pair, and the net learned one constant motion for all frames
        (a lite pose net at init gave the same vector to four random inputs). With a metric
        translation scale (``trans_scale`` 1) the default head also starts at ~0.3 m in a random
        direction; auto-masking then rejects every warped pixel and no gradient ever turns it.
        The translation rows are scaled so the first motion is SfMLearner's 0.01 x raw output.
        """
        for body in (getattr(self, "features", None), getattr(self, "convs", None)):
            for m in body.modules() if body is not None else ():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.head.weight[:3].mul_(min(1.0, 0.01 / max(self.trans_scale, 1e-12)))
            self.head.bias.zero_()

    def pose_vector(self, features: torch.Tensor) -> torch.Tensor:
        """features (B, cin, h, w) -> (B, 6) [t, euler]."""
        return scaled_pose(self.head(features).mean(dim=(2, 3)), self.trans_scale, self.output_scale)


# --------------------------------------------------------------------------- encoder-decoder

class SkipEncoderDecoder(nn.Module):
    """Five stride-2 stages of two ConvELU (encoder), then decoder levels 4..0 of ConvELU, nearest
    2x upsampling, the encoder skip concatenated and a fusing ConvELU. H and W must be multiples
    of 32. Subclasses add ``heads`` after calling this ``__init__`` (parameter order = name order
    of the checkpoints)."""

    def __init__(self, in_channels: int, enc_channels, dec_channels, num_scales: int):
        super().__init__()
        if len(enc_channels) != 5 or len(dec_channels) != 5:
            raise ValueError("enc_channels and dec_channels need 5 entries (five stride-2 stages)")
        check_num_scales(num_scales)
        self.num_scales = num_scales
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

    def encode(self, x: torch.Tensor,
               after_stage: Callable[[int, torch.Tensor], torch.Tensor] | None = None) -> list[torch.Tensor]:
        """x (B, C, H, W) -> feats, feats[i] (B, enc[i], H/2^(i+1), W/2^(i+1)); ``after_stage(i, f)``
        may replace stage i's output (the recurrent net's ConvLSTM) before the next stage and the skip."""
        feats = []
        for i, stage in enumerate(self.encoder):
            x = stage(x)
            if after_stage is not None:
                x = after_stage(i, x)
            feats.append(x)
        return feats

    def decode(self, feats: list[torch.Tensor]) -> dict[int, torch.Tensor]:
        """Encoder features -> {level s: decoder features (B, dec[s], H/2^s, W/2^s)} for s < num_scales."""
        x = feats[-1]
        levels: dict[int, torch.Tensor] = {}
        for j, level in enumerate(range(4, -1, -1)):
            x = F.interpolate(self.up[j](x), scale_factor=2.0, mode="nearest")
            if level > 0:
                x = torch.cat([x, feats[level - 1]], dim=1)
            x = self.fuse[j](x)
            if level < self.num_scales:
                levels[level] = x
        return levels
