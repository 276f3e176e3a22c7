"""Deep-feature reconstruction (Zhan et al., CVPR 2018): warp CNN feature maps like images.

If a pixel's neighbourhood looks the same from two views, a CNN's features there are the same
too, so the source feature map warped into the target with the predicted depth and pose must
match the target's feature map. Features vary more smoothly than raw intensities and are less
sensitive to brightness changes, which widens the basin of the photometric loss.

Zhan et al. used a pretrained dense descriptor network; nothing can be downloaded here, so the
feature extractor is one of (``loss.feature`` of the method):
- ``random`` (default): ``FixedRandomFeatures``, a small fixed conv stack with random weights
  drawn from a seeded generator (not trained, not in the checkpoint: the seed rebuilds it);
  3x3 convs with dilations 1, 2, 4 (15x15 receptive field), no biases, ReLU between, so the
  features are positively homogeneous in the input; each pixel's feature vector is then
  L2-normalised, which removes local contrast (gain) changes.
- ``depth_encoder``: the first stages of the depth net's encoder (``net.encoder``, a
  ModuleList of stages, as in the 'small' and 'lite' depth nets), run without gradient
  (detached: the features are a moving but fixed-per-step target, so they cannot collapse to
  make the loss trivially zero), bilinearly upsampled to the image size, per-pixel L2-normalised.
Features are computed at full resolution so the same full-resolution depth warps them. Features
within ``margin`` pixels of an image border see the padding, not the scene, so they differ
between views even at the true pose: ``feature_reconstruction_loss(margin=...)`` leaves out
target pixels in that rim and those whose sample in the source falls in the source's rim
(``FixedRandomFeatures.margin`` is its receptive-field radius, 7 px by default).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..geometry import inverse_warp
from .photometric import masked_mean


class FixedRandomFeatures(nn.Module):
    """image (B, C, H, W) (normalised) -> unit-norm features (B, F, H, W); weights fixed by ``seed``."""

    def __init__(self, in_channels: int, channels: int = 16, dilations=(1, 2, 4), seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(int(seed))
        convs = []
        cin = in_channels
        for d in dilations:
            conv = nn.Conv2d(cin, channels, 3, padding=d, dilation=d, bias=False, padding_mode="reflect")
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2.0 / (cin * 9)) ** 0.5)
            convs.append(conv)
            cin = channels
        self.convs = nn.ModuleList(convs)
        self.margin = int(sum(dilations))          # receptive-field radius in pixels
        self.requires_grad_(False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < len(self.convs) - 1:
                x = F.relu(x)
        return F.normalize(x, dim=1, eps=1e-6)


@torch.no_grad()
def encoder_features(depth_net: nn.Module, image: torch.Tensor, levels: int = 2) -> torch.Tensor:
    """Detached features of the first ``levels`` encoder stages of ``depth_net`` (the last one),
    upsampled to the image size and per-pixel L2-normalised -> (B, F, H, W)."""
    stages = getattr(depth_net, "encoder", None)
    if not isinstance(stages, nn.ModuleList) or not 1 <= levels <= len(stages):
        raise ValueError(f"feature 'depth_encoder' needs a depth net with an 'encoder' ModuleList of >= {levels} "
                         f"stages ({type(depth_net).__name__} has none); use feature 'random'")
    x = image
    for stage in stages[:levels]:
        x = stage(x)
    x = F.interpolate(x, size=image.shape[-2:], mode="bilinear", align_corners=False)
    return F.normalize(x, dim=1, eps=1e-6)


def feature_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, F, H, W) x 2 -> per-pixel L1 averaged over channels (B, 1, H, W)."""
    return (pred - target).abs().mean(1, keepdim=True)


def interior(like: torch.Tensor, margin: int) -> torch.Tensor:
    """(B, 1, H, W) of ones with a rim of ``margin`` zero pixels."""
    b, _, h, w = like.shape
    out = torch.zeros(b, 1, h, w, dtype=like.dtype, device=like.device)
    out[:, :, margin:h - margin, margin:w - margin] = 1.0
    return out


def feature_reconstruction_loss(src_feat: torch.Tensor, tgt_feat: torch.Tensor, tgt_depth: torch.Tensor,
                                t_src_tgt: torch.Tensor, k: torch.Tensor,
                                mask: torch.Tensor | None = None, margin: int = 0) -> torch.Tensor:
    """Warp ``src_feat`` (B, F, H, W) into the target with tgt_depth (B, 1, H, W) m and T_src_tgt
    (B, 4, 4), K (B, 3, 3); mean L1 to ``tgt_feat`` over the valid (and ``mask``ed) pixels, without
    the ``margin``-pixel rims of both feature maps."""
    if margin > 0:
        warped, valid = inverse_warp(torch.cat([src_feat, interior(src_feat, margin)], 1), tgt_depth, t_src_tgt, k)
        return feature_loss_from_warp(warped[:, :-1], tgt_feat, valid, warped[:, -1:], margin, mask)
    warped, valid = inverse_warp(src_feat, tgt_depth, t_src_tgt, k)
    return feature_loss_from_warp(warped, tgt_feat, valid, mask=mask)


def feature_loss_from_warp(warped: torch.Tensor, tgt_feat: torch.Tensor, valid: torch.Tensor,
                           warped_interior: torch.Tensor | None = None, margin: int = 0,
                           mask: torch.Tensor | None = None) -> torch.Tensor:
    """The same loss on a warp done elsewhere: ``warped_interior`` is ``interior(src, margin)``
    warped along with the features (pixels sampled from the source rim are left out)."""
    if margin > 0:
        valid = valid * interior(valid, margin)
        if warped_interior is not None:
            valid = valid * (warped_interior > 0.999).to(valid.dtype)
    if mask is not None:
        valid = valid * mask
    return masked_mean(feature_error(warped, tgt_feat), valid)
