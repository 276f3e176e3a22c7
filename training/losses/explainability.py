"""SfMLearner's explainability-weighted view synthesis loss and the mask regulariser (Zhou et al. 2017, eq. 3).

At one scale, for one source s with its warped image I_s, the target I_t, the explainability mask
E_s in (0, 1) (one per source, from PoseExpNet) and the warp's validity V_s (1 where the
projected point lands inside the source image and in front of it):

    L_vs  = mean_p  E_s(p) * V_s(p) * err(I_t, I_s)(p)        err: L1 (paper) or SSIM + L1
    L_reg = mean_p  -log E_s(p)                                 cross-entropy with the label 1

The means run over all pixels, as the official code (``tf.reduce_mean``) and SfmLearner-Pytorch
(its ``diff * valid * mask`` then ``.abs().mean()``), so a pixel the mask turns off costs 0 in
L_vs and ``-log E`` in L_reg: without the regulariser the mask would go to 0 everywhere. The
method sums both over sources and scales (``sfmlearner.py``, ``loss.style: sfmlearner``).
"""
from __future__ import annotations

import torch

from .photometric import photometric_error

EPS = 1e-6


def explained_photometric(warped: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                          valid: torch.Tensor | None = None, kind: str = "l1",
                          ssim_weight: float = 0.85) -> torch.Tensor:
    """warped, target (B, C, H, W) in [0, 1]; mask, valid (B, 1, H, W) or None -> scalar mean over pixels."""
    err = photometric_error(warped, target, kind, ssim_weight)        # (B, 1, H, W), channel mean
    if valid is not None:
        err = err * valid
    if mask is not None:
        err = err * mask
    return err.mean()


def explainability_regulariser(mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the mask (any shape, values in (0, 1)) against the all-ones label."""
    return -torch.log(mask.clamp(min=EPS)).mean()
