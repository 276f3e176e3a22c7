"""GeoNet (Yin & Shi, CVPR 2018) on the shared core: monocular depth, pose and residual flow.

Nets (``model.stage`` picks which exist):
- ``depth``: a registry depth net (``model.depth_net``: small | dispnet | lite), multi-scale inverse
  depth; run on the target *and* the sources (GeoNet predicts depth for every frame: the backward
  rigid flow and the forward-backward check need the source depth).
- ``pose``: a registry pose net (``model.pose_net``: small | lite), [t, euler] 6-vector with global
  average pooling; pairwise like the SfMLearner method here (``pose_temporal_order``: the net
  always sees [later, earlier], future sources inverted) so the exported pose.onnx takes
  [current, previous] -> T_previous_current. (GeoNet's PoseNet takes the whole snippet at once;
  the run time needs a pair.)
- ``resflow`` (stage 2 only): ResFlowNet, residual flow from [I_t, I_s, rigid flow, rigid-warped
  I_s, its error] (``vode_training.nets.resflownet``).

Rigid flow f_rig(t->s) = project(T_s_t backproject(D_t)) - p (``losses.flow.rigid_flow``); forward
(target -> each source, with D_t and T_s_t) and backward (source -> target, with D_s and T_t_s).

Stage 1 (``model.stage: 1``, config geonet.yaml): terms
- ``rigid_warp``: SSIM+L1 (alpha = 0.85) between each frame and the other frame warped into it by the
  rigid flow, forward and backward (``loss.backward_warp``), masked mean over the pixels that land
  in the image; every scale s at its own resolution (GeoNet): images 2x2-averaged s times, the
  depth net's scale-s output, K scaled (pixel centres as the DDVO solver); averaged over scales;
- ``depth_smoothness``: edge-aware first-order smoothness of the (mean-normalised) inverse depth of
  every frame with a depth, each scale at its resolution, weighted 1 / 2^s.
Stage 2 (``model.stage: 2``, config geonet_stage2.yaml, ``train.init`` = stage-1 checkpoint,
``train.freeze: [depth, pose]``; the frozen nets run without gradients and stay in eval mode):
full flow = rigid flow + residual flow at every scale s at its own resolution (rigid flow from the
scale-s depth, ResFlowNet's scale-s output in pixels of that scale; the ResFlowNet input uses the
finest rigid flow), terms
- ``flow_warp``: SSIM+L1 of the full-flow warp, forward and backward, over pixels inside the image
  that pass the forward-backward check (occlusions excluded);
- ``flow_smoothness``: edge-aware first-order smoothness of the full flow, weighted 1 / 2^s;
- ``flow_consistency``: forward-backward geometric consistency |f_fwd + f_bwd(p + f_fwd)|_1, zero
  where the check |.| < max(alpha, beta |f_fwd|) fails (GeoNet: alpha = 3 px at every scale, beta = 0.05).
Export: depth (finest inverse depth) + pose, as every method; ResFlowNet is not exported.
Scale: monocular, none (median scaling at evaluation).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..geometry import disp_to_depth, invert_se3, rescale_intrinsics
from ..losses.flow import (_norm2, flow_consistency_loss, flow_smoothness, flow_warp, forward_backward_check,
                           rigid_flow, rigid_warp)
from ..losses.photometric import masked_mean, photometric_error
from ..nets.resflownet import ResFlowNet, resflow_input_channels
from . import LossTerm, register
from .base import DEPTH_MODEL, PAIRWISE_POSE_MODEL, MonoVideoMethod, SsimWeightedTerm, build_depth, build_pose
from .smoothness_term import SmoothnessTerm


# --------------------------------------------------------------------------- loss terms

class RigidWarpTerm(SsimWeightedTerm):
    """Stage 1: SSIM+L1 of the rigid-flow warps (forward and backward), averaged over scales."""

    name = "rigid_warp"

    def compute(self, out, batch):
        losses = []
        for pairs in out["rigid_pairs"]:                           # per scale: [(warped, target, valid)]
            errs = torch.cat([photometric_error(w, t, "ssim_l1", self.ssim_weight) for w, t, _ in pairs], 1)
            masks = torch.cat([v for _, _, v in pairs], 1)
            losses.append(masked_mean(errs, masks))
        return torch.stack(losses).mean()


def depth_smoothness_term(weight: float, normalise: bool) -> SmoothnessTerm:
    """Edge-aware smoothness of every frame's inverse-depth pyramid (``out["disps_all"]``) against
    those frames (``out["depth_images"]``)."""
    return SmoothnessTerm(weight, lambda out, batch: [(out["disps_all"], out["depth_images"])], normalise=normalise,
                          name="depth_smoothness")


class FlowWarpTerm(SsimWeightedTerm):
    """Stage 2: SSIM+L1 of the full-flow warps over non-occluded in-image pixels."""

    name = "flow_warp"

    def compute(self, out, batch):
        losses = []
        for warped, valid, target in zip(out["flow_warped"], out["flow_valid"], out["flow_targets"]):
            err = photometric_error(warped, target, "ssim_l1", self.ssim_weight)
            losses.append(masked_mean(err, valid))
        return torch.stack(losses).mean()


class FlowSmoothnessTerm(LossTerm):
    name = "flow_smoothness"

    def compute(self, out, batch):
        return torch.stack([flow_smoothness(f, img) / 2 ** s
                            for s, (f, img) in enumerate(zip(out["full_flows"], out["flow_targets"]))]).mean()


class FlowConsistencyTerm(LossTerm):
    name = "flow_consistency"

    def __init__(self, weight: float, alpha: float, beta: float):
        super().__init__(weight)
        self.alpha, self.beta = alpha, beta

    def compute(self, out, batch):
        n = out["n_pairs"]
        return torch.stack([flow_consistency_loss(f[:n], f[n:], self.alpha, self.beta)
                            for f in out["full_flows"]]).mean()


# --------------------------------------------------------------------------- the method

@register("geonet")
class GeoNet(MonoVideoMethod):
    DEFAULTS = {
        "model": {
            "stage": 1,                  # 1: depth + pose (rigid); 2: ResFlowNet (residual flow)
            "depth_net": "small",        # registry: small | dispnet | lite
            "pose_net": "small",         # registry: small | lite
            **DEPTH_MODEL,
            **PAIRWISE_POSE_MODEL,
            "resflow_enc_channels": [16, 32, 64, 128, 192],
            "resflow_dec_channels": [16, 32, 48, 64, 96],
            "resflow_output_scale": 1.0,  # residual flow = scale * head (pixels)
            "flow_norm": 20.0,            # rigid flow / flow_norm pixels at the ResFlowNet input
        },
        "loss": {
            "ssim_weight": 0.85,          # GeoNet alpha_recon_image
            "rigid_warp_weight": 1.0,
            "backward_warp": True,        # also warp the target into each source (needs source depth)
            "smooth_weight": 0.001,
            "smooth_normalise": True,     # edge-aware smoothness on mean-normalised inverse depth
            "flow_warp_weight": 1.0,
            "flow_smooth_weight": 0.2,
            "flow_consistency_weight": 0.2,
            "flow_consistency_alpha": 3.0,
            "flow_consistency_beta": 0.05,
        },
    }

    def __init__(self, cfg: dict[str, Any], channels: int):
        super().__init__(cfg, channels)
        m, lo = cfg["model"], cfg["loss"]
        self._setup_common(cfg, channels)
        self.flow_norm = float(m["flow_norm"])
        self.fb_alpha, self.fb_beta = float(lo["flow_consistency_alpha"]), float(lo["flow_consistency_beta"])
        self.backward_warp = bool(lo["backward_warp"])
        self.nets["depth"] = build_depth(m, channels)
        self.nets["pose"] = build_pose(m, channels)
        if self.stage == 1:
            self.terms = [RigidWarpTerm(lo["rigid_warp_weight"], lo["ssim_weight"]),
                          depth_smoothness_term(lo["smooth_weight"], lo["smooth_normalise"])]
        else:
            self.nets["resflow"] = ResFlowNet(resflow_input_channels(channels), m["resflow_enc_channels"],
                                              m["resflow_dec_channels"], m["num_scales"], m["resflow_output_scale"])
            self.terms = [FlowWarpTerm(lo["flow_warp_weight"], lo["ssim_weight"]),
                          FlowSmoothnessTerm(lo["flow_smooth_weight"]),
                          FlowConsistencyTerm(lo["flow_consistency_weight"], lo["flow_consistency_alpha"],
                                              lo["flow_consistency_beta"])]

    # -- depth of target and sources --------------------------------------------------------
    def _depths(self, tgt_in: torch.Tensor, src_in: torch.Tensor, with_sources: bool) -> list[torch.Tensor]:
        """-> inverse depth per scale, (B [+ B*S], 1, h, w): target first, then sources j-major."""
        b, n_src = src_in.shape[:2]
        frames = tgt_in
        if with_sources:
            frames = torch.cat([tgt_in, src_in.transpose(0, 1).flatten(0, 1)], 0)   # [tgt, src0 (B), src1 (B)]
        return self.nets["depth"](self.normalise(frames))

    def forward(self, batch):
        if self.stage == 1:
            return self._forward_rigid(batch)
        return self._forward_flow(batch)

    def _pyramid(self, images: torch.Tensor, k: torch.Tensor, levels: int):
        """-> ([images at scale s], [K at scale s]): 2x2 averaging, pixel-centre K (as the DDVO solver)."""
        imgs, ks = [images], [k]
        for _ in range(1, levels):
            imgs.append(F.avg_pool2d(imgs[-1], 2))
            ks.append(rescale_intrinsics(ks[-1], 0.5, 0.5))
        return imgs, ks

    def _forward_rigid(self, batch):
        tgt, src, k = batch["tgt"], batch["src"], batch["K"]
        b, n_src = src.shape[:2]
        poses, transforms = self.source_transforms(batch["tgt_in"], batch["src_in"])
        disps_all = self._depths(batch["tgt_in"], batch["src_in"], self.backward_warp)
        frames = torch.cat([tgt, src.transpose(0, 1).flatten(0, 1)], 0)     # [tgt, src0, src1, ...] (B each)
        frame_pyr, k_pyr = self._pyramid(frames, k, len(disps_all))
        rigid_pairs, depths = [], []
        for s, disp in enumerate(disps_all):           # every scale at its own resolution (GeoNet)
            depth = disp_to_depth(disp, self.min_depth, self.max_depth)
            depths.append(depth[:b])
            tgt_s = frame_pyr[s][:b]
            pairs = []
            for j in range(n_src):
                src_s = frame_pyr[s][b * (j + 1): b * (j + 2)]
                w, v, _ = rigid_warp(src_s, depth[:b], transforms[j], k_pyr[s])
                pairs.append((w, tgt_s, v))
                if self.backward_warp:
                    w, v, _ = rigid_warp(tgt_s, depth[b * (j + 1): b * (j + 2)], invert_se3(transforms[j]), k_pyr[s])
                    pairs.append((w, src_s, v))
            rigid_pairs.append(pairs)
        images = frames if self.backward_warp else tgt
        return {"disps": [d[:b] for d in disps_all], "disps_all": disps_all, "depth_images": images,
                "depths": depths, "poses": poses, "transforms": transforms, "rigid_pairs": rigid_pairs}

    def _forward_flow(self, batch):
        tgt, src, k = batch["tgt"], batch["src"], batch["K"]
        tgt_in, src_in = batch["tgt_in"], batch["src_in"]
        b, n_src = src.shape[:2]
        n = b * n_src
        frozen = self.frozen("depth") and self.frozen("pose")
        # Pairs: forward (target -> source j) for all j, then backward (source j -> target).
        srcs, srcs_in = src.transpose(0, 1).flatten(0, 1), src_in.transpose(0, 1).flatten(0, 1)
        first = torch.cat([tgt.repeat(n_src, 1, 1, 1), srcs], 0)          # the image the flow lives on
        second = torch.cat([srcs, tgt.repeat(n_src, 1, 1, 1)], 0)         # the image it points into
        first_pyr, k_pyr = self._pyramid(first, k, self.cfg["model"]["num_scales"])
        second_pyr, _ = self._pyramid(second, k, self.cfg["model"]["num_scales"])
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            poses, transforms = self.source_transforms(tgt_in, src_in)
            disps = self._depths(tgt_in, src_in, True)
            rigid = []                                                     # per scale (2n, 2, h, w), pixels of s
            for s, disp in enumerate(disps):
                depth = disp_to_depth(disp, self.min_depth, self.max_depth)
                fwd = [rigid_flow(depth[:b], transforms[j], k_pyr[s]) for j in range(n_src)]
                bwd = [rigid_flow(depth[b * (j + 1): b * (j + 2)], invert_se3(transforms[j]), k_pyr[s])
                       for j in range(n_src)]
                rigid.append(torch.cat(fwd + bwd, 0))
        first_in = torch.cat([tgt_in.repeat(n_src, 1, 1, 1), srcs_in], 0)
        second_in = torch.cat([srcs_in, tgt_in.repeat(n_src, 1, 1, 1)], 0)
        rig = rigid[0]
        warped_in, _ = flow_warp(second_in, rig)
        err_in = (first_in - warped_in).abs()
        net_in = torch.cat([self.normalise(first_in), self.normalise(second_in), rig / self.flow_norm,
                            self.normalise(warped_in), err_in / self.std], 1)
        residuals = self.nets["resflow"](net_in)
        full_flows, warped, valid, consistent = [], [], [], []
        for s, res in enumerate(residuals):             # every scale at its own resolution (GeoNet)
            full = rigid[s] + res
            w, inside = flow_warp(second_pyr[s], full)
            _, ok_f = forward_backward_check(full[:n], full[n:], self.fb_alpha, self.fb_beta)
            _, ok_b = forward_backward_check(full[n:], full[:n], self.fb_alpha, self.fb_beta)
            ok = torch.cat([ok_f, ok_b], 0)
            full_flows.append(full)
            warped.append(w)
            valid.append(inside * ok)
            consistent.append(ok)
        return {"disps": [disps[0][:b]], "depths": [disp_to_depth(disps[0][:b], self.min_depth, self.max_depth)],
                "poses": poses, "transforms": transforms, "rigid_flows": rig, "residual_flows": residuals,
                "full_flows": full_flows, "flow_warped": warped, "flow_valid": valid, "flow_consistent": consistent,
                "flow_targets": first_pyr, "n_pairs": n}

    def metrics(self, out, batch):
        depth = out["depths"][0]
        h, w = depth.shape[-2:]
        disp = out["disps"][0]
        res = {"depth/median_lower_middle": depth[:, :, h // 2:, w // 4: 3 * w // 4].median().item(),
               "depth/norm_inv_std": (disp.std(dim=(1, 2, 3)) / disp.mean(dim=(1, 2, 3))).mean().item()}
        res.update(self.pose_metrics(out["transforms"], batch))
        if self.stage == 2:
            res["flow/rigid_mean_px"] = _norm2(out["rigid_flows"]).mean().item()
            res["flow/residual_mean_px"] = _norm2(out["residual_flows"][0]).mean().item()
            res["flow/consistent_frac"] = out["flow_consistent"][0].mean().item()
        return res

    def export_info(self):
        return self._export_info(self.min_depth, self.max_depth)
