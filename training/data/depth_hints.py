"""Depth hints: SGBM depth of the training stereo pair, computed per snippet at the training size.

Depth Hints (Watson et al., ICCV 2019) add to monodepth2-style stereo training a supervised term
on a semi-global-matching depth, used only where that depth reprojects the right image better
than the network's own (``vode_training.losses.depth_hints``). The photometric loss alone has
many near-equal minima on textureless road and sky; the hint picks the one a stereo matcher finds.

The hint is computed on the images the loss sees — after the scale-crop augmentation, which
scales both images of a rectified pair alike and so keeps them rectified (disparity scales with
fx, and ``K`` carries the new fx) — so it always matches the item's geometry. No torch RNG is
drawn here: turning hints on does not change the items of a seeded run.
"""
from __future__ import annotations

import numpy as np
import torch

from vode_ros.core.stereo_depth import sgbm_depth

# At 416 px wide on KITTI (fx ~ 245 px, b = 0.54 m) 64 disparities reach down to ~2 m; the
# block stays at 5 px as at full size (low resolution already averages).
HINT_DISPARITIES = 64
HINT_BLOCK = 5


def _as_u8_image(img: torch.Tensor) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W) or (H, W, 3) uint8; ``sgbm_depth`` makes colour grey."""
    x = (img.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).contiguous().numpy()


def stereo_hint(left: torch.Tensor, right: torch.Tensor, k: torch.Tensor, baseline: float,
                max_depth: float = 100.0) -> torch.Tensor:
    """left, right (C, H, W) in [0, 1] of a rectified pair, k (3, 3) -> hint depth (1, H, W) metres, 0 = none.

    All zeros when ``baseline`` <= 0 (a mono sequence in a mixed set)."""
    height, width = left.shape[-2:]
    if baseline <= 0:
        return torch.zeros(1, height, width)
    depth = sgbm_depth(_as_u8_image(left), _as_u8_image(right), float(k[0, 0]), float(baseline),
                       num_disparities=HINT_DISPARITIES, block_size=HINT_BLOCK, max_depth=max_depth)
    return torch.from_numpy(depth)[None]
