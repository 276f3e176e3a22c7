"""SfMLearner (Zhou et al. 2017) on the shared core: the paper's losses and nets, or the usual
monodepth2 upgrades, chosen by config.

Nets (``model.depth_net`` / ``model.pose_net`` by name, ``vode_training.nets.registry``):
- depth: 'small' (default), 'dispnet' (the paper's DispNet; ``model.dispnet_output: sfmlearner``
  gives its disparity 10·sigmoid + 0.01) or 'lite'; target frame -> 4-scale inverse depth.
- pose: 'small' / 'lite' PoseNets ([later, earlier] frame -> T_earlier_later; with
  ``model.pose_temporal_order`` the pose of a future source is the inverse of the net's output for
  [source, target], as monodepth2, so the net only ever sees frames in the order the run time
  feeds it: [current, previous] -> T_previous_current), or 'posexpnet', the paper's PoseExpNet
  (``vode_training.nets.posexpnet``): the whole snippet [target, sources...] -> T_source_target
  for every source, plus the explainability mask per source at 4 scales when
  ``loss.explain_weight`` > 0 (as the TF code builds the mask decoder only then).

``loss.style`` picks how the terms are computed:
- ``monodepth2`` (default; config/train/sfmlearner.yaml, the shipped models):
  ``photometric``: warp every source into the target with the predicted depth and pose (and,
  with ``data.stereo: true``, the right image at t with the known stereo transform T_right_left,
  monodepth2 "MS" training, which fixes the metric scale); SSIM+L1 or L1; per-pixel minimum over
  sources or masked mean; optional auto-masking. Coarse inverse depths are upsampled to full
  resolution before warping; averaged over scales. ``smoothness``: edge-aware first-order on
  mean-normalised inverse depth, or second-order; each scale weighted by 1 / 2^s, averaged over
  scales. With ``loss.stereo_in_min: false`` the photometric term splits into
  ``photometric_temporal`` and ``photometric_stereo``.
- ``sfmlearner`` (the paper / official code; config/train/sfmlearner_paper.yaml): at every scale s
  the target and sources are area-downsampled to the depth map's size (K scaled with it) and each
  source is warped with that scale's depth; ``photometric`` = sum over scales and sources of
  mean(E · V · |I_t - I_s|) (E the explainability mask, 1 without PoseExpNet masks; V the warp's
  validity; L1, or SSIM + L1 with ``loss.photometric: ssim_l1``); ``smoothness`` = sum over scales of
  smooth_weight / 2^s · second-order smoothness of the disparity; ``explainability`` = explain_weight
  · sum over scales and sources of the cross-entropy pulling E to 1
  (``vode_training.losses.explainability``).

Export: depth.onnx = the finest inverse depth; pose.onnx = the pairwise pose net, or for
PoseExpNet a wrapper that feeds the pair [current, previous] as a snippet: the target slot gets
the current frame, the source slot with offset -1 the previous one (its pose is T_previous_current,
the pose.onnx contract), and every other source slot the frame ``model.posexp_pair_fill`` names
(``previous`` or ``current``). That is an approximation of the net's training input (the other
slots held frames t-2, t+1, t+2); with a 3-frame snippet (offsets [-1, 1]) only the t+1 slot is
filled in. With the explainability decoder, pose.onnx has a second output ``confidence``
[1, 1, H, W]: the finest explainability mask of the previous frame (values in (0, 1)).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import poses_give_scale, sensor_depth_gives_scale
from ..geometry import disp_to_depth, inverse_warp, pose_vec2mat, rescale_intrinsics, stereo_transform
from ..losses.depth_hints import hint_error, hint_loss
from ..losses.explainability import explainability_regulariser, explained_photometric
from ..losses.photometric import photometric_error, reprojection_loss
from ..nets.posexpnet import PoseExpNet
from . import LossTerm, Method, register
from .base import DEPTH_MODEL, PAIRWISE_POSE_MODEL, PairwisePose, build_depth, build_pose, normalisation_info
from .export_wrappers import FinestInvDepth
from .smoothness_term import SmoothnessTerm
from .supervised_terms import PoseSupervisionTerm, SensorDepthTerm, SpeedTerm

STYLES = ("monodepth2", "sfmlearner")


def _warp_error(out, tgt: torch.Tensor, scale: int, source: int, kind: str, ssim_weight: float) -> torch.Tensor:
    """Photometric error (B, 1, H, W) of source ``source`` warped with scale ``scale``'s depth,
    computed once per step: the photometric and the depth-hint terms both need the stereo one."""
    cache = out.setdefault("warp_errors", {})
    key = (scale, source, kind, ssim_weight)
    if key not in cache:
        cache[key] = photometric_error(out["warped"][scale][source], tgt, kind, ssim_weight)
    return cache[key]


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
        # A stereo source of a sample without a stereo pair (baseline 0: a mono sequence in a
        # mixed training set) is left out of the loss.
        has_pair = (batch["baseline"] > 0).to(tgt.dtype).view(-1, 1, 1, 1)
        keep = [has_pair if out["source_kinds"][i] == "stereo" else 1.0 for i in use]
        losses = []
        for scale, valid in enumerate(out["valid"]):
            errors = [_warp_error(out, tgt, scale, i, self.kind, self.ssim_weight) for i in use]
            masks = [valid[i] * k for i, k in zip(use, keep)]
            losses.append(reprojection_loss(errors, masks, self.min_reprojection, identity))
        return torch.stack(losses).mean()


class DepthHintTerm(LossTerm):
    """Depth Hints (Watson et al. 2019): pull the depth to the stereo pair's SGBM depth where that
    reconstructs the left image better than the prediction does (``vode_training.losses.depth_hints``).

    Why: on 2 CPU cores a run sees a few thousand batches; the photometric loss alone leaves the
    road, sky and car bodies (little texture) to the smoothness prior, and the net's depth there
    stayed 30-40 % off SGBM on held-out KITTI. The hint is only trusted where it wins the
    photometric comparison, so SGBM's own mismatches do not teach the net. Every scale's
    full-resolution depth is compared (as monodepth2's photometric term). Items without a stereo
    pair have an all-zero hint and do not count.
    """

    name = "depth_hint"

    def __init__(self, weight: float, kind: str, ssim_weight: float):
        super().__init__(weight)
        self.kind, self.ssim_weight = kind, ssim_weight

    def compute(self, out, batch):
        if "hint" not in batch or "stereo" not in out["source_kinds"]:
            return batch["tgt"].new_zeros(())
        i = out["source_kinds"].index("stereo")
        tgt, hint = batch["tgt"], batch["hint"]                        # (B, C, H, W), (B, 1, H, W)
        err_hint = hint_error(batch["right"], tgt, hint, out["transforms"][i], batch["K"], self.kind,
                              self.ssim_weight)
        losses = [hint_loss(depth, hint, _warp_error(out, tgt, scale, i, self.kind, self.ssim_weight), err_hint)
                  for scale, depth in enumerate(out["depths"])]
        return torch.stack(losses).mean()


class ExplainedPhotometricTerm(LossTerm):
    """The paper's view synthesis loss: sum over scales and sources of mean(E · V · err) at each scale."""

    name = "photometric"

    def __init__(self, weight: float, kind: str, ssim_weight: float):
        super().__init__(weight)
        self.kind, self.ssim_weight = kind, ssim_weight

    def compute(self, out, batch):
        total = 0.0
        for s, (tgt, warped, valid) in enumerate(zip(out["tgt_pyramid"], out["warped"], out["valid"])):
            masks = out["masks"][s] if out["masks"] is not None else None
            for i, (w, v) in enumerate(zip(warped, valid)):
                m = masks[:, i:i + 1] if (masks is not None and out["source_kinds"][i] == "temporal") else None
                total = total + explained_photometric(w, tgt, m, v, self.kind, self.ssim_weight)
        return total


class ExplainabilityTerm(LossTerm):
    """Cross-entropy of every explainability mask against 1, summed over scales and sources."""

    name = "explainability"

    def compute(self, out, batch):
        total = 0.0
        for masks in out["masks"][:len(out["disps"])]:               # (B, S, h, w) per scale in use
            for i in range(masks.shape[1]):
                total = total + explainability_regulariser(masks[:, i])
        return total


class _PairPose(nn.Module):
    """Export wrapper of a pairwise pose net (same graph); carries the metadata."""

    def __init__(self, pose_net: nn.Module, metadata: dict[str, str] | None = None):
        super().__init__()
        self.pose_net = pose_net
        self._metadata = dict(metadata or {})

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.pose_net(frames)

    def onnx_io(self) -> dict[str, Any]:
        return {"input_names": ["frames"], "output_names": ["pose"], "metadata": self._metadata}


class PairPoseExp(nn.Module):
    """pose.onnx wrapper of PoseExpNet: frames [current, previous] (1, 2C, H, W) -> T_previous_current.

    The snippet is [current (target), source slots...]: the slot with offset -1 gets the previous
    frame, the others ``fill`` ('previous' or 'current'). With the mask decoder the second output
    ``confidence`` (1, 1, H, W) is the finest explainability mask of the previous frame.
    """

    def __init__(self, net: PoseExpNet, offsets: list[int], channels: int, fill: str = "previous",
                 metadata: dict[str, str] | None = None):
        super().__init__()
        if -1 not in offsets:
            raise ValueError(f"PoseExpNet export needs a source at offset -1 (the previous frame); "
                             f"data.offsets is {offsets}")
        if fill not in ("previous", "current"):
            raise ValueError(f"model.posexp_pair_fill must be 'previous' or 'current', got {fill!r}")
        self.net, self.offsets, self.c, self.fill = net, list(offsets), int(channels), fill
        self.prev_slot = self.offsets.index(-1)
        self._metadata = dict(metadata or {})

    def forward(self, frames: torch.Tensor):
        cur, prev = frames[:, :self.c], frames[:, self.c:]
        other = prev if self.fill == "previous" else cur
        snippet = torch.cat([cur] + [prev if j == self.prev_slot else other for j in range(len(self.offsets))], dim=1)
        pose, masks = self.net(snippet)
        vec = pose[:, self.prev_slot]                                  # (1, 6) T_previous_current
        if masks is None:
            return vec
        return vec, masks[0][:, self.prev_slot:self.prev_slot + 1]

    def onnx_io(self) -> dict[str, Any]:
        meta = dict(self._metadata)
        meta["vode.pose_snippet"] = (f"PoseExpNet trained on snippets with offsets {self.offsets}; pair fed as "
                                     f"[current, previous at -1, other slots = {self.fill}]")
        outs = ["pose"]
        if self.net.with_mask:
            outs.append("confidence")
            meta["vode.confidence"] = ("output 'confidence' [1,1,H,W]: explainability mask of the previous "
                                       "frame, in (0, 1), 1 = explained by the rigid warp")
        return {"input_names": ["frames"], "output_names": outs, "metadata": meta}


@register("sfmlearner")
class SfMLearner(PairwisePose, Method):
    DEFAULTS = {
        "model": {
            "depth_net": "small",        # registry depth net: small | dispnet | lite
            "pose_net": "small",         # small | lite (pairwise PoseNets) | posexpnet (SfMLearner's PoseExpNet)
            "dispnet_output": "bounded", # dispnet only: bounded (1/m in [min_depth, max_depth]) |
                                         # sfmlearner (disparity 10 sigmoid + 0.01, the paper's)
            **DEPTH_MODEL,               # depth range, init_depth, mean / std, num_scales, small-net channels
            **PAIRWISE_POSE_MODEL,       # pose_channels, pose_scale, pose_trans_scale, pose_temporal_order
            "posexp_pair_fill": "previous",  # posexpnet export: frame in the source slots other than -1
        },
        "loss": {
            "style": "monodepth2",       # monodepth2 | sfmlearner (the paper's sums, downsampled images)
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
            "explain_weight": 0.0,       # explainability regulariser (needs pose_net posexpnet, style sfmlearner)
            "speed_weight": 0.0,         # weak supervision of the translation length by ground-truth poses
                                         # where a training sequence has them (metric scale without stereo)
            "pose_weight": 0.0,          # weak supervision of the whole motion by those poses (PoseSupervisionTerm)
            "pose_rot_weight": 10.0,     # rotation share of it: ‖ΔR‖_F per metre of translation error
            "hint_weight": 0.0,          # Depth Hints: SGBM depth where it reprojects better (needs data.depth_hints)
            "sensor_depth_weight": 0.0,  # |log d - log d_sensor| where a depth sensor reads (needs data.sensor_depth)
        },
    }

    def __init__(self, cfg: dict[str, Any], channels: int):
        super().__init__(cfg, channels)
        m, lo = cfg["model"], cfg["loss"]
        self.stereo = bool(cfg["data"]["stereo"])
        self.style = lo["style"]
        if self.style not in STYLES:
            raise ValueError(f"loss.style must be one of {', '.join(STYLES)}, got {self.style!r}")
        if not (self.stereo or lo["temporal"]):
            raise ValueError("loss.temporal: false needs data.stereo: true (no source images left)")
        self.posexp = m["pose_net"] == "posexpnet"
        self.explain = float(lo["explain_weight"]) > 0
        if self.explain and not (self.posexp and self.style == "sfmlearner" and lo["temporal"]):
            raise ValueError("loss.explain_weight > 0 needs model.pose_net: posexpnet, loss.style: sfmlearner "
                             "and loss.temporal: true")
        if self.style == "sfmlearner" and float(lo["hint_weight"]) > 0:
            raise ValueError("loss.hint_weight needs loss.style: monodepth2 (the paper's style has no stereo hint term)")
        if self.style == "sfmlearner" and lo["min_reprojection"]:
            raise ValueError("loss.style: sfmlearner sums the error over sources; set loss.min_reprojection: false")
        self.register_normalisation(m)
        self.min_depth, self.max_depth = float(m["min_depth"]), float(m["max_depth"])
        self.offsets = [int(o) for o in cfg["data"]["offsets"]]
        self.temporal_order = bool(m["pose_temporal_order"])
        self.nets["depth"] = build_depth(m, channels)
        if lo["temporal"]:
            if self.posexp:
                self.nets["pose"] = PoseExpNet(channels, len(self.offsets), m["pose_channels"], m["pose_scale"],
                                               m["pose_trans_scale"], mask=self.explain)
            else:
                self.nets["pose"] = build_pose(m, channels)
        if self.style == "sfmlearner":
            self.terms = [ExplainedPhotometricTerm(lo["photometric_weight"], lo["photometric"], lo["ssim_weight"])]
            self.terms.append(SmoothnessTerm(lo["smooth_weight"], kind=lo["smoothness"],
                                             normalise=lo["smoothness"] == "edge_aware", reduce="sum"))
            if self.explain:
                self.terms.append(ExplainabilityTerm(lo["explain_weight"]))
            return
        photo = (lo["photometric_weight"], lo["photometric"], lo["ssim_weight"], lo["min_reprojection"], lo["automask"])
        if self.stereo and lo["temporal"] and not lo["stereo_in_min"]:
            self.terms = [PhotometricTerm(*photo, kinds=("temporal",), name="photometric_temporal"),
                          PhotometricTerm(*photo, kinds=("stereo",), name="photometric_stereo")]
        else:
            self.terms = [PhotometricTerm(*photo)]
        self.terms.append(SmoothnessTerm(lo["smooth_weight"], kind=lo["smoothness"],
                                         normalise=lo["smoothness"] == "edge_aware"))
        if float(lo["speed_weight"]) > 0:
            if not lo["temporal"]:
                raise ValueError("loss.speed_weight > 0 needs loss.temporal: true (a pose net)")
            self.terms.append(SpeedTerm(lo["speed_weight"]))
        if float(lo["pose_weight"]) > 0:
            if not lo["temporal"]:
                raise ValueError("loss.pose_weight > 0 needs loss.temporal: true (a pose net)")
            self.terms.append(PoseSupervisionTerm(lo["pose_weight"], lo["pose_rot_weight"]))
        if float(lo["hint_weight"]) > 0:
            if not (self.stereo and cfg["data"].get("depth_hints")):
                raise ValueError("loss.hint_weight > 0 needs data.stereo: true and data.depth_hints: true")
            self.terms.append(DepthHintTerm(lo["hint_weight"], lo["photometric"], lo["ssim_weight"]))
        if float(lo["sensor_depth_weight"]) > 0:
            if not cfg["data"].get("sensor_depth"):
                raise ValueError("loss.sensor_depth_weight > 0 needs data.sensor_depth: true (depth_0/ of the folders)")
            self.terms.append(SensorDepthTerm(lo["sensor_depth_weight"], self.min_depth, self.max_depth))


    def _poses(self, batch) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor] | None]:
        """-> (pose vectors (B, S, 6) as predicted, T_src_tgt per source, masks finest first or None)."""
        tgt_in, src_in = batch["tgt_in"], batch["src_in"]              # (B, C, H, W), (B, S, C, H, W)
        b, n_src = src_in.shape[:2]
        if self.posexp:
            snippet = torch.cat([self.normalise(tgt_in)] + [self.normalise(src_in[:, j]) for j in range(n_src)], 1)
            poses, masks = self.nets["pose"](snippet)
            return poses, [pose_vec2mat(poses[:, j]) for j in range(n_src)], masks
        return (*self.source_transforms(tgt_in, src_in), None)

    def forward(self, batch):
        tgt_in = batch["tgt_in"]
        k = batch["K"]                                                  # (B, 3, 3)
        height, width = tgt_in.shape[-2:]
        disps = self.nets["depth"](self.normalise(tgt_in))              # [(B, 1, H/2^s, W/2^s)]
        images, transforms, kinds = [], [], []
        poses, masks = None, None
        if "pose" in self.nets:
            poses, mats, masks = self._poses(batch)
            for j, mat in enumerate(mats):
                images.append(batch["src"][:, j])
                transforms.append(mat)
                kinds.append("temporal")
        if self.stereo:
            images.append(batch["right"])
            kinds.append("stereo")
            transforms.append(stereo_transform(batch["baseline"], dtype=tgt_in.dtype, device=tgt_in.device))
        warped, valid, depths, tgt_pyramid = [], [], [], []
        for disp in disps:
            if self.style == "sfmlearner":
                # The paper: images (and K) brought down to the depth map's scale.
                h, w = disp.shape[-2:]
                same = (h, w) == (height, width)
                depth = disp_to_depth(disp, self.min_depth, self.max_depth)
                k_s = k if same else rescale_intrinsics(k, w / width, h / height)
                srcs = images if same else [F.interpolate(img, size=(h, w), mode="area") for img in images]
                tgt_pyramid.append(batch["tgt"] if same else F.interpolate(batch["tgt"], size=(h, w), mode="area"))
            else:
                disp_full = disp if disp.shape[-2:] == (height, width) else F.interpolate(
                    disp, size=(height, width), mode="bilinear", align_corners=False)
                depth = disp_to_depth(disp_full, self.min_depth, self.max_depth)
                k_s, srcs = k, images
            depths.append(depth)
            ws, vs = [], []
            for img, mat in zip(srcs, transforms):
                w_, v_ = inverse_warp(img, depth, mat, k_s)
                ws.append(w_)
                vs.append(v_)
            warped.append(ws)
            valid.append(vs)
        return {"disps": disps, "depths": depths, "poses": poses, "transforms": transforms, "warped": warped, "valid": valid,
                "source_images": images, "source_kinds": kinds, "masks": masks,
                "tgt_pyramid": tgt_pyramid or None}


    def metrics(self, out, batch):
        depth = out["depths"][0]
        h, w = depth.shape[-2:]
        res = {"depth/median_lower_middle_m": depth[:, :, h // 2:, w // 4: 3 * w // 4].median().item()}
        if out["poses"] is not None:
            mats = torch.stack(out["transforms"][:len(self.offsets)], 1)                        # (B, S, 4, 4)
            trans = mats[..., :3, 3]                                                             # (B, S, 3)
            for j, o in enumerate(self.offsets):
                res[f"pose/tz_src{j}_pred_m"] = trans[:, j, 2].mean().item()
            # Spread of the motion over the batch: 0 means one motion for every input (a collapsed net).
            res["pose/trans_spread_m"] = trans.flatten(0, 1).std(0).norm().item()
            if "gt_src_tgt" in batch:
                gt = batch["gt_src_tgt"][:, :len(self.offsets)]                                      # (B, S, 4, 4)
                res["pose/tz_src0_gt_m"] = gt[:, 0, 2, 3].mean().item()
                res["pose/trans_err_m"] = (trans - gt[:, :, :3, 3]).norm(dim=-1).mean().item()
                res["pose/trans_spread_gt_m"] = gt[:, :, :3, 3].flatten(0, 1).std(0).norm().item()
                rot = mats[..., :3, :3]                                                          # (B, S, 3, 3)
                cos = ((rot.transpose(-1, -2) @ gt[..., :3, :3]).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
                res["pose/rot_err_deg"] = torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0))).mean().item()
        if out["masks"] is not None:
            res["explainability/mean_finest"] = out["masks"][0].mean().item()
        return res

    def _export_metadata(self) -> dict[str, str]:
        from ..data import describe_data

        return {"vode.trained_on": describe_data(self.cfg)}

    def export_modules(self):
        meta = self._export_metadata()
        mods: dict[str, nn.Module] = {"depth": FinestInvDepth(self.nets["depth"], meta)}
        if "pose" in self.nets:
            if self.posexp:
                mods["pose"] = PairPoseExp(self.nets["pose"], self.offsets, self.channels,
                                           self.cfg["model"]["posexp_pair_fill"], meta)
            else:
                mods["pose"] = _PairPose(self.nets["pose"], meta)
        return mods

    def export_info(self):
        lo = self.cfg["loss"]
        metric = self.stereo or poses_give_scale(lo) or sensor_depth_gives_scale(self.cfg)
        return {**normalisation_info(self.cfg["model"], self.channels), "metric_scale": metric,
                "min_depth": self.min_depth, "max_depth": self.max_depth}
