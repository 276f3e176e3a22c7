"""LKVOLearner / DDVO (Wang, Buenaposada, Zhu, Lucey, CVPR 2018) on the shared core.

Nets:
- ``depth``: a registry depth net (``model.depth_net``) whose output is LKVOLearner's inverse depth
  10 * sigmoid(x) + 0.01 (DispNet ``output: sfmlearner``; the small / lite nets with
  min_depth = 1 / 10.01, max_depth = 100 give the same map), *normalised by its per-image mean*
  (the finest scale's mean divides every scale), so mean inverse depth = 1 and the smoothness
  prior cannot shrink the depth; depth = 1 / normalised inverse depth, in "mean-depth units"
  clipped to [model.min_depth, model.max_depth]. The pose translations live in the same units.
- ``pose``: a registry PoseCNN ([t, euler]), pairwise [later, earlier] as the SfMLearner method here,
  so pose.onnx takes [current, previous] -> T_previous_current.
- the DDVO solver (``vode_training.solvers.ddvo``; no parameters): inverse-compositional
  Gauss-Newton photometric alignment over an image pyramid, started from the PoseCNN pose,
  differentiable w.r.t. the depth.

Stage 1 (``model.stage: 1``, lkvo.yaml): PoseCNN + depth trained together with the PoseCNN pose.
Stage 2 (``model.stage: 2``, lkvo_stage2.yaml, ``train.init`` = stage 1, ``train.freeze: [pose]``):
the pose of every source is the DDVO result started from the (frozen) PoseCNN pose; the loss
reaches the depth net directly (the warp) and through the DDVO pose (the chain rule through the
solver), which is LKVOLearner's point.
Terms (both stages):
- ``appearance``: photometric error of every source warped into the target, at ``num_scales``
  pyramid levels (images 2x2-averaged, the depth net's own scale, K scaled), L1 at every level and
  SSIM+L1 (``ssim_weight``) at the finest, masked mean over sources, averaged over levels;
- ``smoothness``: edge-aware first-order smoothness of the mean-normalised inverse depth,
  weighted 1 / 2^s.
Export: depth.onnx = the finest mean-normalised inverse depth (relative units; metric_scale
false, median scaling at evaluation), pose.onnx = the PoseCNN. The run time can refine the
PoseCNN pose with the numpy twin of the solver, ``vode_ros.runtime.direct_refine``.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..losses.flow import rigid_warp
from ..losses.photometric import masked_mean, photometric_error
from ..geometry import rescale_intrinsics
from ..solvers.ddvo import ddvo_align, to_gray
from ..nets.dispnet import DISP_SCALING, MIN_DISP
from . import register
from .base import DEPTH_MODEL, PAIRWISE_POSE_MODEL, MonoVideoMethod, SsimWeightedTerm, build_depth, build_pose
from .smoothness_term import SmoothnessTerm


def normalise_inv_depth(inv: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
    """Divide inverse depth (B, 1, h, w) by the per-image mean of ``ref`` (default: itself)."""
    ref = inv if ref is None else ref
    return inv / ref.mean(dim=(1, 2, 3), keepdim=True)


class _NormalisedInvDepth(nn.Module):
    """Export wrapper: finest inverse depth divided by its mean."""

    def __init__(self, depth_net: nn.Module):
        super().__init__()
        self.depth_net = depth_net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return normalise_inv_depth(self.depth_net(image)[0])


class AppearanceTerm(SsimWeightedTerm):
    name = "appearance"

    def compute(self, out, batch):
        losses = []
        for s, (tgt, warped, valid) in enumerate(zip(out["tgt_pyramid"], out["warped"], out["valid"])):
            kind = "ssim_l1" if s == 0 else "l1"
            errs = torch.cat([photometric_error(w, tgt, kind, self.ssim_weight) for w in warped], 1)
            losses.append(masked_mean(errs, torch.cat(valid, 1)))
        return torch.stack(losses).mean()


def normalised_smoothness_term(weight: float) -> SmoothnessTerm:
    """Edge-aware smoothness of the inverse depths normalised already (``out["inv_depths"]``, the finest
    scale's mean divides every scale) against the target pyramid (``out["tgt_pyramid"]``)."""
    return SmoothnessTerm(weight, lambda out, batch: [(out["inv_depths"], out["tgt_pyramid"])], normalise=False)


@register("lkvo")
class LKVOLearner(MonoVideoMethod):
    DEFAULTS = {
        "model": {
            "stage": 1,                  # 1: PoseCNN + depth; 2: depth through the DDVO pose (PoseCNN frozen)
            "depth_net": "small",        # registry: small | dispnet | lite (all mapped to 10 sigmoid + 0.01)
            "pose_net": "small",         # registry: small | lite
            **{k: v for k, v in DEPTH_MODEL.items() if k != "init_depth"},   # no init: a fixed 10 sigmoid + 0.01 head
            "min_depth": 0.01,           # clip of the normalised depth (mean inverse depth = 1 units)
            **PAIRWISE_POSE_MODEL,
            "ddvo_levels": 3,            # pyramid levels of the DDVO solver (stage 2)
            "ddvo_iters": 5,             # Gauss-Newton steps per level
            "ddvo_damping": 1.0e-3,      # Levenberg-Marquardt damping on diag(J^T J)
            "ddvo_huber": 0.0,           # Huber threshold on grey residuals ([0, 1] images), 0 = least squares
        },
        "loss": {
            "photometric_weight": 1.0,
            "ssim_weight": 0.85,         # SSIM share at the finest level (L1 only at coarser ones)
            "smooth_weight": 0.01,
        },
    }

    def __init__(self, cfg: dict[str, Any], channels: int):
        super().__init__(cfg, channels)
        m, lo = cfg["model"], cfg["loss"]
        self._setup_common(cfg, channels)
        # 10 * sigmoid + 0.01: DispNet's 'sfmlearner' head; the bounded heads with these limits.
        lo_disp, hi_disp = MIN_DISP, MIN_DISP + DISP_SCALING
        self.nets["depth"] = build_depth(m, channels, min_depth=1.0 / hi_disp, max_depth=1.0 / lo_disp, init_depth=None,
                                        dispnet_output="sfmlearner")
        self.nets["pose"] = build_pose(m, channels)
        self.ddvo = dict(levels=int(m["ddvo_levels"]), iters=int(m["ddvo_iters"]), damping=float(m["ddvo_damping"]),
                         huber=float(m["ddvo_huber"]) or None)
        self.terms = [AppearanceTerm(lo["photometric_weight"], lo["ssim_weight"]),
                      normalised_smoothness_term(lo["smooth_weight"])]

    def forward(self, batch):
        tgt, src, k = batch["tgt"], batch["src"], batch["K"]
        b, n_src = src.shape[:2]
        raw = self.nets["depth"](self.normalise(batch["tgt_in"]))
        inv_depths = [normalise_inv_depth(d, raw[0]) for d in raw]
        depths = [1.0 / d.clamp(min=1.0 / self.max_depth, max=1.0 / self.min_depth) for d in inv_depths]
        frozen = self.frozen("pose")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not (self.stage == 2 and frozen)):
            poses, transforms = self.source_transforms(batch["tgt_in"], batch["src_in"])
        cnn_transforms = transforms
        if self.stage == 2:
            # DDVO for all sources at once: (S*B) problems, reference = target (it has the depth).
            t_init = torch.cat(transforms, 0).detach()
            ref = to_gray(tgt).repeat(n_src, 1, 1, 1)
            cur = to_gray(src.transpose(0, 1).flatten(0, 1))
            t_ddvo = ddvo_align(ref, cur, depths[0].repeat(n_src, 1, 1, 1), k.repeat(n_src, 1, 1), t_init, **self.ddvo)
            transforms = list(t_ddvo.split(b, 0))
        tgt_pyr, src_pyr, k_pyr = [tgt], [src.flatten(0, 1)], [k]
        for _ in range(1, len(depths)):
            tgt_pyr.append(F.avg_pool2d(tgt_pyr[-1], 2))
            src_pyr.append(F.avg_pool2d(src_pyr[-1], 2))
            k_pyr.append(rescale_intrinsics(k_pyr[-1], 0.5, 0.5))
        warped, valid = [], []
        for s, depth in enumerate(depths):
            srcs = src_pyr[s].view(b, n_src, *src_pyr[s].shape[1:])
            ws, vs = [], []
            for j in range(n_src):
                w, v, _ = rigid_warp(srcs[:, j], depth, transforms[j], k_pyr[s])
                ws.append(w)
                vs.append(v)
            warped.append(ws)
            valid.append(vs)
        return {"raw_inv_depths": raw, "inv_depths": inv_depths, "depths": depths, "poses": poses,
                "transforms": transforms, "cnn_transforms": cnn_transforms, "tgt_pyramid": tgt_pyr,
                "warped": warped, "valid": valid}

    def metrics(self, out, batch):
        depth = out["depths"][0]
        h, w = depth.shape[-2:]
        res = {"depth/median_lower_middle": depth[:, :, h // 2:, w // 4: 3 * w // 4].median().item(),
               "depth/raw_inv_mean": out["raw_inv_depths"][0].mean().item(),
               "depth/norm_inv_std": out["inv_depths"][0].std(dim=(1, 2, 3)).mean().item()}   # structure
        res.update(self.pose_metrics(out["transforms"], batch))
        if self.stage == 2:
            d = [(a[:, :3, 3] - c[:, :3, 3]).norm(dim=-1).mean()
                 for a, c in zip(out["transforms"], out["cnn_transforms"])]
            res["ddvo/trans_change"] = torch.stack(d).mean().item()
        return res

    def export_depth_module(self):
        return _NormalisedInvDepth(self.nets["depth"])

    def export_info(self):
        return self._export_info(self.min_depth, self.max_depth)
