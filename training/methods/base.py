"""What several methods share: the depth and pose nets built from the ``model`` config, the
normalisation written into the export metadata, pose pairs in temporal order, and the two video
method bases (monocular: GeoNet, LKVO; stereo: UnDeepVO, Deep-VO-Feat).

Pose pairs: with ``pose_temporal_order`` the pose net always sees [later, earlier] frame and
predicts T_earlier_later, as the run time feeds it [current, previous]; for a future source
(offset > 0) that is T_tgt_src, inverted to T_src_tgt (monodepth2). Without it the pair is
[target, source] -> T_src_tgt directly.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..geometry import disp_to_depth, invert_se3, pose_vec2mat, rescale_intrinsics, stereo_transform
from ..nets.registry import build_depth_net, build_pose_net
from . import LossTerm, Method
from .export_wrappers import FinestInvDepth

_UNSET: Any = object()


# --------------------------------------------------------------------------- nets from config

# ``model`` config defaults of a bounded-sigmoid depth net and of a pairwise pose net (methods
# spread them into their DEFAULTS and override what differs).
DEPTH_MODEL: dict[str, Any] = {
    "min_depth": 0.1,
    "max_depth": 100.0,
    "init_depth": 10.0,              # initial constant depth (m) of the sigmoid heads
    "mean": [0.45],                  # network input = (x - mean) / std, x in [0, 1]
    "std": [0.225],
    "num_scales": 4,
    "depth_enc_channels": [16, 32, 64, 128, 192],    # depth_net small only
    "depth_dec_channels": [16, 32, 48, 64, 96],
}
PAIRWISE_POSE_MODEL: dict[str, Any] = {
    "pose_channels": [16, 32, 64, 128, 256, 256, 256],
    "pose_scale": 0.01,              # rotation head scale (SfMLearner: 0.01)
    "pose_trans_scale": 0.01,        # translation head scale (SfMLearner: 0.01 too)
    "pose_temporal_order": True,     # pairwise nets: input always [later, earlier] frame, future-source
                                     # poses inverted (monodepth2); false: [target, source]
}


def build_depth(m: dict[str, Any], channels: int, *, min_depth: float | None = None,
                max_depth: float | None = None, init_depth: float | None = _UNSET,
                dispnet_output: str | None = None) -> nn.Module:
    """The registry depth net named by ``model.depth_net``. Depth range, initial depth and the
    DispNet output mapping come from the model config (``min_depth``, ``max_depth``,
    ``init_depth``, ``dispnet_output``, default 'bounded') unless given; ``depth_enc_channels`` /
    ``depth_dec_channels`` go to the 'small' net only, and only when non-empty (the other nets'
    channel lists have other lengths)."""
    name = m["depth_net"]
    kw: dict[str, Any] = {
        "num_scales": m["num_scales"],
        "min_depth": float(m["min_depth"] if min_depth is None else min_depth),
        "max_depth": float(m["max_depth"] if max_depth is None else max_depth),
        "init_depth": m.get("init_depth") if init_depth is _UNSET else init_depth,
    }
    if name == "small":
        for key in ("enc_channels", "dec_channels"):
            if m.get("depth_" + key):
                kw[key] = list(m["depth_" + key])
    elif name == "dispnet":
        kw["output"] = dispnet_output or m.get("dispnet_output", "bounded")
    return build_depth_net(name, channels, **kw)


def build_pose(m: dict[str, Any], channels: int) -> nn.Module:
    """The registry pose net named by ``model.pose_net`` (pose_channels, pose_scale, pose_trans_scale)."""
    return build_pose_net(m["pose_net"], channels, channels=m["pose_channels"], output_scale=m["pose_scale"],
                          trans_scale=m["pose_trans_scale"])


# --------------------------------------------------------------------------- export metadata

def per_channel(vals, channels: int) -> list[float]:
    """model.mean / model.std (1 or ``channels`` values) -> one float per channel."""
    vals = [float(v) for v in vals]
    return vals * channels if len(vals) == 1 else vals


def normalisation_info(model_cfg: dict[str, Any], channels: int) -> dict[str, list[float]]:
    """{'mean', 'std'} per channel, for ``export_info``."""
    return {"mean": per_channel(model_cfg["mean"], channels), "std": per_channel(model_cfg["std"], channels)}


# --------------------------------------------------------------------------- loss terms

class SsimWeightedTerm(LossTerm):
    """A photometric term with an SSIM share ``ssim_weight`` (SSIM + L1 mix, alpha = 0.85 usually)."""

    def __init__(self, weight: float, ssim_weight: float):
        super().__init__(weight)
        self.ssim_weight = ssim_weight


# --------------------------------------------------------------------------- pose pairs

def temporal_pairs(tgt: torch.Tensor, src: torch.Tensor, offsets: list[int], temporal_order: bool = True) -> torch.Tensor:
    """tgt (B, C, H, W), src (B, S, C, H, W) -> pairs (B, S, 2C, H, W): [later, earlier] per source
    with ``temporal_order``, else [target, source]."""
    if not temporal_order:
        return torch.cat([tgt.unsqueeze(1).expand_as(src), src], dim=2)
    later = torch.stack([src[:, j] if o > 0 else tgt for j, o in enumerate(offsets)], 1)
    earlier = torch.stack([tgt if o > 0 else src[:, j] for j, o in enumerate(offsets)], 1)
    return torch.cat([later, earlier], dim=2)


def to_src_tgt(mats: list[torch.Tensor], offsets: list[int], temporal_order: bool = True) -> list[torch.Tensor]:
    """Per source the pair's transform (B, 4, 4) -> [T_src_tgt (B, 4, 4)]: with ``temporal_order``
    the future sources' T_tgt_src inverted."""
    return [invert_se3(m) if temporal_order and o > 0 else m for m, o in zip(mats, offsets)]


class PairwisePose:
    """Pose of every source from the pairwise pose net ``nets['pose']``; the method sets
    ``offsets`` and ``temporal_order``."""

    offsets: list[int]
    temporal_order: bool

    def source_transforms(self, tgt_in: torch.Tensor, src_in: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """tgt_in (B, C, H, W), src_in (B, S, C, H, W) in [0, 1] -> (pose vectors (B, S, 6) as the
        net gives them, [T_src_tgt (B, 4, 4) per source])."""
        b, n_src = src_in.shape[:2]
        pairs = temporal_pairs(tgt_in, src_in, self.offsets, self.temporal_order)         # (B, S, 2C, H, W)
        poses = self.nets["pose"](self.normalise_pairs(pairs.flatten(0, 1))).view(b, n_src, 6)
        mats = [pose_vec2mat(poses[:, j]) for j in range(n_src)]
        return poses, to_src_tgt(mats, self.offsets, self.temporal_order)


# --------------------------------------------------------------------------- monocular video

class MonoVideoMethod(PairwisePose, Method):
    """Normalisation, pairwise pose prediction and export shared by GeoNet and LKVO."""

    def _setup_common(self, cfg: dict[str, Any], channels: int) -> None:
        m = cfg["model"]
        self.register_normalisation(m)
        self.offsets = [int(o) for o in cfg["data"]["offsets"]]
        self.temporal_order = bool(m["pose_temporal_order"])
        if cfg["data"]["stereo"]:
            raise ValueError(f"{cfg['method']} is a monocular method: set data.stereo: false")
        self.stage = int(m["stage"])
        if self.stage not in (1, 2):
            raise ValueError(f"model.stage must be 1 or 2, got {self.stage}")
        self.min_depth, self.max_depth = float(m["min_depth"]), float(m["max_depth"])

    def frozen(self, name: str) -> bool:
        return name in self.nets and not any(p.requires_grad for p in self.nets[name].parameters())

    def train(self, mode: bool = True):
        """Nets frozen by train.freeze stay in eval mode (BatchNorm statistics of the lite nets)."""
        super().train(mode)
        for name, net in self.nets.items():
            if mode and self.frozen(name):
                net.eval()
        return self

    def pose_metrics(self, transforms: list[torch.Tensor], batch) -> dict[str, float]:
        res = {}
        trans = torch.stack([t[:, :3, 3] for t in transforms], 1)          # (B, S, 3)
        for j in range(len(transforms)):
            res[f"pose/tz_src{j}_pred"] = trans[:, j, 2].mean().item()
        if "gt_src_tgt" in batch:
            gt = batch["gt_src_tgt"][:, :, :3, 3]
            res["pose/tz_src0_gt_m"] = gt[:, 0, 2].mean().item()
            cos = F.cosine_similarity(trans, gt, dim=-1)
            res["pose/trans_direction_cos"] = cos.mean().item()      # scale-free (monocular)
        return res

    def export_depth_module(self) -> nn.Module:
        return FinestInvDepth(self.nets["depth"])

    def export_modules(self):
        return {"depth": self.export_depth_module(), "pose": self.nets["pose"]}

    def _export_info(self, min_depth: float, max_depth: float) -> dict[str, Any]:
        return {**normalisation_info(self.cfg["model"], self.channels),
                "metric_scale": False, "min_depth": min_depth, "max_depth": max_depth}


# --------------------------------------------------------------------------- stereo video

class StereoVideoMethod(Method):
    """Shared plumbing of the stereo-video methods (UnDeepVO, Deep-VO-Feat): input normalisation,
    the registry depth net, multi-image depth passes, scale pyramids, pose pairs in temporal
    order, metrics and export info. Subclasses build the pose net and the loss terms."""

    COMMON_MODEL = {
        **DEPTH_MODEL,
        "depth_net": "small",            # registry name: small | dispnet | lite
        "depth_enc_channels": [],        # depth_net small only; [] = the net's default
        "depth_dec_channels": [],
        "pose_channels": [16, 32, 64, 128, 256, 256, 256],
        "pose_scale": 0.01,              # rotation output scale
        "pose_trans_scale": 1.0,         # translation output scale (metric: ~1 m / frame on KITTI)
    }

    def __init__(self, cfg: dict[str, Any], channels: int):
        super().__init__(cfg, channels)
        m = cfg["model"]
        if not cfg["data"]["stereo"]:
            raise ValueError(f"{self.name} trains on stereo video: set data.stereo: true")
        self.register_normalisation(m)
        self.multiscale = cfg["loss"]["multiscale"]
        if self.multiscale not in ("native", "upsample"):
            raise ValueError(f"loss.multiscale must be 'native' or 'upsample', got {self.multiscale!r}")
        self.min_depth, self.max_depth = float(m["min_depth"]), float(m["max_depth"])
        self.offsets = [int(o) for o in cfg["data"]["offsets"]]
        self.nets["depth"] = build_depth(m, channels)

    # -- helpers ----------------------------------------------------------------------------

    def depth_passes(self, images: list[torch.Tensor]) -> list[list[torch.Tensor]]:
        """One batched depth-net pass over several (B, C, H, W) images -> per image, its
        multi-scale inverse depths [(B, 1, H/2^s, W/2^s)]."""
        b = images[0].shape[0]
        disps = self.nets["depth"](self.normalise(torch.cat(images, 0)))
        return [[d[i * b:(i + 1) * b] for d in disps] for i in range(len(images))]

    def at_scale(self, disp: torch.Tensor, size: tuple[int, int], k: torch.Tensor):
        """Inverse depth of one scale -> (depth (m), K, resize) at the resolution where that scale
        is compared (``loss.multiscale``); ``resize`` maps a full-resolution map there."""
        if self.multiscale == "upsample" or disp.shape[-2:] == size:
            if disp.shape[-2:] != size:
                disp = F.interpolate(disp, size=size, mode="bilinear", align_corners=False)
            return disp_to_depth(disp, self.min_depth, self.max_depth), k, (lambda x: x)
        hs, ws = disp.shape[-2:]
        factor = size[1] // ws
        if factor * ws != size[1] or factor * hs != size[0]:
            raise ValueError(f"scale of {hs}x{ws} is not an integer fraction of {size[0]}x{size[1]}")

        def resize(x: torch.Tensor) -> torch.Tensor:
            return F.avg_pool2d(x, factor)                # = area interpolation for integer factors

        return disp_to_depth(disp, self.min_depth, self.max_depth), rescale_intrinsics(k, 1.0 / factor, 1.0 / factor), resize

    def finest_depth(self, disps: list[torch.Tensor]) -> torch.Tensor:
        return disp_to_depth(disps[0], self.min_depth, self.max_depth)

    def pose_pairs(self, tgt: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        """tgt (B, C, H, W), src (B, S, C, H, W), [0, 1] -> normalised [later, earlier] pairs (B*S, 2C, H, W)."""
        return self.normalise_pairs(temporal_pairs(tgt, src, self.offsets).flatten(0, 1))

    def to_src_tgt(self, mats: torch.Tensor) -> list[torch.Tensor]:
        """(B, S, 4, 4) T_earlier_later per source -> [T_src_tgt (B, 4, 4)] (future sources inverted)."""
        return to_src_tgt(list(mats.unbind(1)), self.offsets)

    def stereo(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """T_right_left (B, 4, 4) from the batch baseline."""
        tgt = batch["tgt"]
        return stereo_transform(batch["baseline"], batch=tgt.shape[0], dtype=tgt.dtype, device=tgt.device)

    # -- Method API ---------------------------------------------------------------------------
    def metrics(self, out, batch):
        depth = out["depth"]
        h, w = depth.shape[-2:]
        res = {"depth/median_lower_middle_m": depth[:, :, h // 2:, w // 4: 3 * w // 4].median().item()}
        trans = torch.stack([t[:, :3, 3] for t in out["transforms"]], 1)          # (B, S, 3)
        for j in range(len(self.offsets)):
            res[f"pose/tz_src{j}_pred_m"] = trans[:, j, 2].mean().item()
        if "gt_src_tgt" in batch:
            res["pose/tz_src0_gt_m"] = batch["gt_src_tgt"][:, 0, 2, 3].mean().item()
            res["pose/trans_err_m"] = (trans - batch["gt_src_tgt"][:, :, :3, 3]).norm(dim=-1).mean().item()
        return res

    def export_modules(self):
        return {"depth": FinestInvDepth(self.nets["depth"]), "pose": self.nets["pose"]}

    def export_info(self):
        return {**normalisation_info(self.cfg["model"], self.channels),
                "metric_scale": True, "min_depth": self.min_depth, "max_depth": self.max_depth}
