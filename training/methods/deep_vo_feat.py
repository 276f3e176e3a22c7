"""Deep-VO-Feat (Zhan, Garg, Weerasekera, Li, Agarwal, Reid; CVPR 2018) on the shared core:
stereo-trained depth and odometry with deep-feature reconstruction; metric scale from the
stereo baseline.

Data: stereo video (``data.stereo: true``): left target t, left sources t + offsets (temporal
pairs) and the right image at t (stereo pair).

Nets (``self.nets``):
- ``depth``: a registry depth net (``model.depth_net``) predicting inverse depth (1/m, as every
  registry depth net), run on the left target only;
- ``pose``: the odometry CNN, a registry pose net (``model.pose_net``: small | lite) whose 6
  outputs are read as an se(3) twist xi = [rho, omega] (translation part, axis-angle) and turned
  into T_earlier_later by the exponential map ``se3_exp`` (training/geometry/pose.py); input
  [later, earlier] as the run time's [current, previous]; future sources use the inverse.
  For export, ``Se3PoseExport`` wraps it so that pose.onnx outputs the package's standard
  [t, euler] vector of exp(xi): the run time is unchanged.

Loss terms (names as logged):
- ``image_temporal``: sources t +/- 1 warped into t with the depth and pose (L1 as the paper, or
  SSIM + L1 with ``loss.photometric: ssim_l1``), masked mean over sources (or per-pixel minimum
  with ``loss.min_reprojection``), averaged over the scales (``loss.multiscale``: native or
  upsample, as UnDeepVO);
- ``image_stereo``: the right image at t warped into the left with the known baseline (metric
  scale);
- ``feature_temporal``, ``feature_stereo``: the same warps applied to feature maps (finest
  depth), L1 over channels; the features come from a fixed random conv stack or the detached
  depth encoder (``loss.feature``, see losses/feature_reconstruction.py), computed on the
  un-augmented images; target pixels within the features' receptive-field radius of a border,
  or sampled from there in the source, are left out;
- ``smoothness``: edge-aware first-order smoothness of the mean-normalised inverse depth, scale
  s weighted 1 / 2^s.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ..geometry import inverse_warp, se3_exp, se3_to_pose_vec
from ..losses.feature_reconstruction import (FixedRandomFeatures, encoder_features, feature_loss_from_warp,
                                             interior)
from ..losses.photometric import photometric_error, reprojection_loss
from . import LossTerm, register
from .export_wrappers import FinestInvDepth
from .base import StereoVideoMethod, build_pose
from .smoothness_term import SmoothnessTerm


class Se3PoseExport(nn.Module):
    """Export wrapper: odometry net (se(3) twist) -> package pose vector [t, euler] of exp(xi)."""

    def __init__(self, pose_net: nn.Module):
        super().__init__()
        self.pose_net = pose_net

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return se3_to_pose_vec(self.pose_net(frames))


# out["scales"][s]: "left" (target at that scale), "temporal" [(warped source, valid)] per source,
# "stereo" [(warped right, valid)]; out["feature_warps"]["temporal" | "stereo"]: [(warped
# features, warped interior, valid)] at the finest scale, out["features"]["tgt"] the target's.

class ImageReconstructionTerm(LossTerm):
    """Photometric reconstruction of the target from the temporal sources or from the right image."""

    def __init__(self, weight: float, kind: str, ssim_weight: float, min_reprojection: bool, which: str):
        super().__init__(weight)
        self.name = f"image_{which}"
        self.kind, self.ssim_weight, self.min_reprojection, self.which = kind, ssim_weight, min_reprojection, which

    def compute(self, out, batch):
        losses = []
        for sc in out["scales"]:
            warps = sc[self.which]
            errors = [photometric_error(w, sc["left"], self.kind, self.ssim_weight) for w, _ in warps]
            losses.append(reprojection_loss(errors, [v for _, v in warps], self.min_reprojection))
        return torch.stack(losses).mean()


class FeatureReconstructionTerm(LossTerm):
    """Feature maps of the sources (or of the right image) warped into the target, finest depth."""

    def __init__(self, weight: float, which: str):
        super().__init__(weight)
        self.name = f"feature_{which}"
        self.which = which

    def compute(self, out, batch):
        tgt, margin = out["features"]["tgt"], out["feature_margin"]
        return torch.stack([feature_loss_from_warp(w, tgt, v, inside, margin)
                            for w, inside, v in out["feature_warps"][self.which]]).mean()


@register("deep_vo_feat")
class DeepVOFeat(StereoVideoMethod):
    DEFAULTS = {
        "model": {
            **StereoVideoMethod.COMMON_MODEL,
            "pose_net": "small",                 # registry pose net: small | lite; outputs read as se(3)
        },
        "loss": {
            "photometric": "l1",                 # l1 (paper) | ssim_l1
            "ssim_weight": 0.85,
            "multiscale": "native",              # native | upsample (see methods/undeepvo.py)
            "min_reprojection": False,           # paper: mean over sources; true: per-pixel minimum
            "temporal_weight": 1.0,              # image reconstruction, temporal pairs
            "stereo_weight": 1.0,                # image reconstruction, stereo pair
            "feature_weight": 0.5,               # feature reconstruction (temporal and stereo each)
            "feature": "random",                 # random (fixed random conv stack) | depth_encoder (detached)
            "feature_channels": 16,              # random: feature channels
            "feature_seed": 0,                   # random: weight seed
            "feature_levels": 2,                 # depth_encoder: number of encoder stages used
            "smooth_weight": 0.001,              # edge-aware smoothness
        },
    }

    def __init__(self, cfg: dict[str, Any], channels: int):
        super().__init__(cfg, channels)
        m, lo = cfg["model"], cfg["loss"]
        self.nets["pose"] = build_pose(m, channels)
        if lo["feature"] not in ("random", "depth_encoder"):
            raise ValueError(f"loss.feature must be 'random' or 'depth_encoder', got {lo['feature']!r}")
        self.feature = lo["feature"]
        self.feature_levels = int(lo["feature_levels"])
        # Not in self.nets: fixed weights, rebuilt from the seed, never trained or exported.
        self.feature_net = (FixedRandomFeatures(channels, lo["feature_channels"], seed=lo["feature_seed"])
                            if self.feature == "random" else None)
        # Rim of pixels whose features see the padding (receptive-field radius; for the encoder
        # features: one stride-2 3x3 conv pair per stage, about 2^levels pixels).
        self.feature_margin = self.feature_net.margin if self.feature_net is not None else 2 ** self.feature_levels
        if self.feature == "depth_encoder":
            encoder_features(self.nets["depth"], torch.zeros(1, channels, 64, 64), self.feature_levels)  # validate
        self.use_features = lo["feature_weight"] > 0
        photo = (lo["photometric"], lo["ssim_weight"], lo["min_reprojection"])
        self.terms = [ImageReconstructionTerm(lo["temporal_weight"], *photo, which="temporal"),
                      ImageReconstructionTerm(lo["stereo_weight"], *photo, which="stereo")]
        if self.use_features:
            self.terms += [FeatureReconstructionTerm(lo["feature_weight"], "temporal"),
                           FeatureReconstructionTerm(lo["feature_weight"], "stereo")]
        self.terms.append(SmoothnessTerm(lo["smooth_weight"]))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """[0, 1] images (N, C, H, W) -> feature maps (N, F, H, W), no gradient to any net."""
        x = self.normalise(images)
        if self.feature_net is not None:
            return self.feature_net(x)
        return encoder_features(self.nets["depth"], x, self.feature_levels)

    def forward(self, batch):
        tgt_in, src_in = batch["tgt_in"], batch["src_in"]
        tgt, src, right, k = batch["tgt"], batch["src"], batch["right"], batch["K"]
        b, n_src, c = src_in.shape[:3]
        size = tuple(tgt_in.shape[-2:])
        disps = self.depth_passes([tgt_in])[0]
        xi = self.nets["pose"](self.pose_pairs(tgt_in, src_in))             # (B * S, 6) se(3) twists
        transforms = self.to_src_tgt(se3_exp(xi).view(b, n_src, 4, 4))
        s_mat = self.stereo(batch)
        out = {"disps": disps, "depth": self.finest_depth(disps), "xi": xi.view(b, n_src, 6),
               "transforms": transforms, "stereo": s_mat, "scales": []}
        if self.use_features:
            feats = self.features(torch.cat([tgt, right] + [src[:, j] for j in range(n_src)], 0)).split(b, 0)
            inside = interior(feats[0], self.feature_margin)
            out["features"] = {"tgt": feats[0], "right": feats[1], "src": list(feats[2:])}
            out["feature_margin"] = self.feature_margin
            out["feature_warps"] = {"temporal": [], "stereo": []}
        for s in range(len(disps)):
            depth, k_s, resize = self.at_scale(disps[s], size, k)
            sc = {"left": resize(tgt), "temporal": [], "stereo": []}
            sources = [("temporal", resize(src[:, j]), mat, j + 2) for j, mat in enumerate(transforms)]
            sources.append(("stereo", resize(right), s_mat, 1))
            for which, img, mat, fi in sources:
                with_feat = s == 0 and self.use_features          # features ride along at the finest scale
                maps = torch.cat([img, feats[fi], inside], 1) if with_feat else img
                w, v = inverse_warp(maps, depth, mat, k_s)
                sc[which].append((w[:, :c], v))
                if with_feat:
                    out["feature_warps"][which].append((w[:, c:-1], w[:, -1:], v))
            out["scales"].append(sc)
        return out

    def export_modules(self):
        return {"depth": FinestInvDepth(self.nets["depth"]), "pose": Se3PoseExport(self.nets["pose"])}
