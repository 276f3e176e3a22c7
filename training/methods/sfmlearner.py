"""SfMLearner (Zhou et al. 2017) on the shared core, with the usual monodepth2 upgrades as options.

Nets: DepthNet (target frame -> 4-scale inverse depth) and PoseNet ([later, earlier] frame ->
T_earlier_later; with ``model.pose_temporal_order`` the pose of a future source is the inverse of
the net's output for [source, target], as monodepth2, so the net only ever sees frames in the
order the run time feeds it: [current, previous] -> T_previous_current). Loss terms:
- ``photometric``: warp every source into the target with the predicted depth and pose
  (and, with ``data.stereo: true``, the right image at t with the known stereo transform
  T_right_left, monodepth2 "MS" training, which fixes the metric scale); SSIM+L1 or L1;
  per-pixel minimum over sources or masked mean; optional auto-masking. Coarse inverse depths
  are upsampled to full resolution before warping (monodepth2); averaged over scales.
- ``smoothness``: edge-aware first-order on mean-normalised inverse depth, or SfMLearner's
  second-order; each scale weighted by 1 / 2^s, averaged over scales.
With ``loss.stereo_in_min: false`` the photometric term splits into ``photometric_temporal`` and
``photometric_stereo`` (each its own per-pixel minimum / mean).
SfMLearner's explainability mask is not implemented; ``min_reprojection`` plays its role.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..geometry import disp_to_depth, invert_se3, inverse_warp, pose_vec2mat, stereo_transform
from ..losses.photometric import photometric_error, reprojection_loss
from ..losses.smoothness import edge_aware_smoothness, second_order_smoothness
from ..nets.depth_net import DepthNet
from ..nets.pose_net import PoseNet
from . import LossTerm, Method, register


class PhotometricTerm(LossTerm):
    """Reprojection loss over the sources whose kind is in ``kinds`` ("temporal", "stereo")."""

    def __init__(self, weight: float, kind: str, ssim_weight: float, min_reprojection: bool, automask: bool,
                 kinds: tuple[str, ...] = ("temporal", "stereo"), name: str = "photometric"):
        super().__init__(weight)
        self.name = name
        self.kind, self.ssim_weight = kind, ssim_weight
        self.min_reprojection, self.automask = min_reprojection, automask
        self.kinds = kinds

    def compute(self, out, batch):
        tgt = batch["tgt"]
        use = [i for i, k in enumerate(out["source_kinds"]) if k in self.kinds]
        identity = None
        if self.automask and self.min_reprojection:
            identity = [photometric_error(out["source_images"][i], tgt, self.kind, self.ssim_weight) for i in use]
        losses = []
        for warped, valid in zip(out["warped"], out["valid"]):       # per scale
            errors = [photometric_error(warped[i], tgt, self.kind, self.ssim_weight) for i in use]
            losses.append(reprojection_loss(errors, [valid[i] for i in use], self.min_reprojection, identity))
        return torch.stack(losses).mean()


class SmoothnessTerm(LossTerm):
    name = "smoothness"

    def __init__(self, weight: float, kind: str):
        super().__init__(weight)
        if kind not in ("edge_aware", "second_order"):
            raise ValueError(f"loss.smoothness must be 'edge_aware' or 'second_order', got {kind!r}")
        self.kind = kind

    def compute(self, out, batch):
        tgt = batch["tgt"]
        losses = []
        for s, disp in enumerate(out["disps"]):
            if self.kind == "edge_aware":
                img = F.interpolate(tgt, size=disp.shape[-2:], mode="area") if s else tgt
                losses.append(edge_aware_smoothness(disp, img) / 2 ** s)
            else:
                losses.append(second_order_smoothness(disp) / 2 ** s)
        return torch.stack(losses).mean()


class _FinestInvDepth(nn.Module):
    """Export wrapper: finest inverse depth only."""

    def __init__(self, depth_net: nn.Module):
        super().__init__()
        self.depth_net = depth_net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.depth_net(image)[0]


@register("sfmlearner")
class SfMLearner(Method):
    DEFAULTS = {
        "model": {
            "min_depth": 0.1,
            "max_depth": 100.0,
            "init_depth": 10.0,          # initial constant depth (m) of the sigmoid head
            "mean": [0.45],              # network input = (x / 255 - mean) / std
            "std": [0.225],
            "num_scales": 4,
            "depth_enc_channels": [16, 32, 64, 128, 192],
            "depth_dec_channels": [16, 32, 48, 64, 96],
            "pose_channels": [16, 32, 64, 128, 256, 256, 256],
            "pose_scale": 0.01,          # SfMLearner scales the pose head by 0.01 (rotation)
            "pose_trans_scale": 0.01,    # translation head scale (SfMLearner: 0.01 too)
            "pose_temporal_order": True, # pose net input always [later, earlier] frame, future-source
                                         # poses inverted (monodepth2); false: [target, source]
        },
        "loss": {
            "photometric": "ssim_l1",    # ssim_l1 | l1
            "photometric_weight": 1.0,
            "ssim_weight": 0.85,
            "min_reprojection": True,    # per-pixel minimum over sources (monodepth2)
            "automask": False,           # monodepth2 auto-masking of static pixels
            "stereo_in_min": True,       # stereo source joins the per-pixel minimum (monodepth2 MS);
                                         # false: separate temporal and stereo terms (the pose net
                                         # then gets gradients everywhere, faster in short runs)
            "temporal": True,            # use the t-1 / t+1 sources (pose net)
            "smoothness": "edge_aware",  # edge_aware | second_order
            "smooth_weight": 0.001,
        },
    }

    def __init__(self, cfg: dict[str, Any], channels: int):
        super().__init__(cfg, channels)
        m, lo = cfg["model"], cfg["loss"]
        self.stereo = bool(cfg["data"]["stereo"])
        if not (self.stereo or lo["temporal"]):
            raise ValueError("loss.temporal: false needs data.stereo: true (no source images left)")
        mean, std = list(m["mean"]), list(m["std"])
        for key, val in (("mean", mean), ("std", std)):
            if len(val) not in (1, channels):
                raise ValueError(f"model.{key} needs 1 or {channels} values, got {val}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.min_depth, self.max_depth = float(m["min_depth"]), float(m["max_depth"])
        self.offsets = [int(o) for o in cfg["data"]["offsets"]]
        self.temporal_order = bool(m["pose_temporal_order"])
        self.nets["depth"] = DepthNet(channels, m["depth_enc_channels"], m["depth_dec_channels"], m["num_scales"],
                                      self.min_depth, self.max_depth, m["init_depth"])
        if lo["temporal"]:
            self.nets["pose"] = PoseNet(channels, m["pose_channels"], m["pose_scale"], m["pose_trans_scale"])
        photo = (lo["photometric_weight"], lo["photometric"], lo["ssim_weight"], lo["min_reprojection"], lo["automask"])
        if self.stereo and lo["temporal"] and not lo["stereo_in_min"]:
            self.terms = [PhotometricTerm(*photo, kinds=("temporal",), name="photometric_temporal"),
                          PhotometricTerm(*photo, kinds=("stereo",), name="photometric_stereo")]
        else:
            self.terms = [PhotometricTerm(*photo)]
        self.terms.append(SmoothnessTerm(lo["smooth_weight"], lo["smoothness"]))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] images -> network input."""
        return (x - self.mean) / self.std

    def forward(self, batch):
        tgt_in, src_in = batch["tgt_in"], batch["src_in"]              # (B, C, H, W), (B, S, C, H, W)
        k = batch["K"]                                                  # (B, 3, 3)
        height, width = tgt_in.shape[-2:]
        disps = self.nets["depth"](self.normalise(tgt_in))              # [(B, 1, H/2^s, W/2^s)]
        images, transforms, kinds = [], [], []
        poses = None
        if "pose" in self.nets:
            b, n_src = src_in.shape[:2]
            tgt_rep = tgt_in.unsqueeze(1).expand_as(src_in)                       # (B, S, C, H, W)
            if self.temporal_order:
                # The pose net always sees [later, earlier]; for a future source it predicts
                # T_tgt_src, inverted below (monodepth2). Export uses the same order.
                later = torch.stack([src_in[:, j] if o > 0 else tgt_in for j, o in enumerate(self.offsets)], 1)
                earlier = torch.stack([tgt_in if o > 0 else src_in[:, j] for j, o in enumerate(self.offsets)], 1)
                pairs = torch.cat([later, earlier], dim=2)                       # (B, S, 2C, H, W)
            else:
                pairs = torch.cat([tgt_rep, src_in], dim=2)                      # [target, source]
            poses = self.nets["pose"](self.normalise_pairs(pairs.flatten(0, 1))).view(b, n_src, 6)
            for j, o in enumerate(self.offsets):
                mat = pose_vec2mat(poses[:, j])                                   # (B, 4, 4)
                if self.temporal_order and o > 0:
                    mat = invert_se3(mat)
                images.append(batch["src"][:, j])
                transforms.append(mat)                                            # T_src_tgt
                kinds.append("temporal")
        if self.stereo:
            images.append(batch["right"])
            kinds.append("stereo")
            transforms.append(stereo_transform(batch["baseline"], dtype=tgt_in.dtype, device=tgt_in.device))
        warped, valid, depths = [], [], []
        for disp in disps:
            disp_full = disp if disp.shape[-2:] == (height, width) else F.interpolate(
                disp, size=(height, width), mode="bilinear", align_corners=False)
            depth = disp_to_depth(disp_full, self.min_depth, self.max_depth)
            depths.append(depth)
            ws, vs = [], []
            for img, mat in zip(images, transforms):
                w, v = inverse_warp(img, depth, mat, k)
                ws.append(w)
                vs.append(v)
            warped.append(ws)
            valid.append(vs)
        return {"disps": disps, "depths": depths, "poses": poses, "transforms": transforms, "warped": warped, "valid": valid,
                "source_images": images, "source_kinds": kinds}

    def normalise_pairs(self, pairs: torch.Tensor) -> torch.Tensor:
        """(N, 2C, H, W) [0, 1] -> normalised, each half with the image mean/std."""
        c = self.channels
        return torch.cat([self.normalise(pairs[:, :c]), self.normalise(pairs[:, c:])], dim=1)

    def metrics(self, out, batch):
        depth = out["depths"][0]
        h, w = depth.shape[-2:]
        res = {"depth/median_lower_middle_m": depth[:, :, h // 2:, w // 4: 3 * w // 4].median().item()}
        if out["poses"] is not None:
            trans = torch.stack([t[:, :3, 3] for t in out["transforms"][:len(self.offsets)]], 1)   # (B, S, 3)
            for j, o in enumerate(self.offsets):
                res[f"pose/tz_src{j}_pred_m"] = trans[:, j, 2].mean().item()
            if "gt_src_tgt" in batch:
                res["pose/tz_src0_gt_m"] = batch["gt_src_tgt"][:, 0, 2, 3].mean().item()
                res["pose/trans_err_m"] = (trans - batch["gt_src_tgt"][:, :, :3, 3]).norm(dim=-1).mean().item()
        return res

    def export_modules(self):
        mods = {"depth": _FinestInvDepth(self.nets["depth"])}
        if "pose" in self.nets:
            mods["pose"] = self.nets["pose"]
        return mods

    def export_info(self):
        def per_channel(vals):
            vals = [float(v) for v in vals]
            return vals * self.channels if len(vals) == 1 else vals

        return {"mean": per_channel(self.cfg["model"]["mean"]), "std": per_channel(self.cfg["model"]["std"]),
                "metric_scale": self.stereo, "min_depth": self.min_depth, "max_depth": self.max_depth}
