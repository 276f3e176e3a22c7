"""RNN-MVOD (Wang, Pizer, Frahm, "Recurrent Neural Network for (Un-)supervised Learning of Monocular
Video Visual Odometry and Depth", CVPR 2019) on the shared core, monocular.

Nets (training/nets/rnn_mvod_nets.py): ``depth`` = RecurrentDepthNet (ConvLSTM blocks in the
encoder), ``pose`` = RecurrentPoseNet (ConvLSTM blocks between its strided convs). Both step
through a subset of N consecutive frames with their state starting at zero; the pose net sees
only the current frame and its inverse depth (``model.depth_input_scale`` * inv_depth, 1/m, as an
extra input channel) and outputs T_previous_current; its output at the first frame of a subset
is not used (no previous frame). Poses between frames further apart are composed along the
chain: W_k = T_{0,1} ... T_{k-1,k}, T_{b,a} = W_b^-1 W_a.

Subsets: ``data.offsets: [1, 2, ..., N-1]`` makes each KittiSnippets item the N consecutive frames
t, t+1, ..., t+N-1 (times the item's stride with ``data.max_stride``). N = 2 is the 2-frame
pre-training (stage 1, config/train/rnn_mvod.yaml), N = 5 the multi-view fine-tuning (stage 2,
config/train/rnn_mvod_stage2.yaml; the paper uses N = 10, our clip has only 51 frames). Every
subset runs forward *and* backward in time (``loss.backward``; both passes share one batch of
2B sequences).

Loss terms:
- ``photometric``: multi-view reprojection: in each pass, every frame a of the subset is the
  target of every other frame b (pairs up to ``loss.max_pair_gap`` apart, 0 = all), warped with
  a's depth and the composed T_{b,a}; SSIM+L1 (or L1); per target the masked mean over its
  sources (paper) or the per-pixel minimum (``loss.min_reprojection``); coarse scales are
  upsampled to full resolution (monodepth2); averaged over targets, scales and both passes.
- ``fb_flow``: forward-backward flow consistency: for frames i != j, the rigid flow F_i->j of
  the forward pass (depth D_i, its poses) and F_j->i of the backward pass must be inverse:
  |F_i->j(p) + F_j->i(p + F_i->j(p))| (pixels, L1 over x, y), where p + F_i->j(p) lands inside
  the image; and the same with the passes swapped. Finest scale.
- ``smoothness``: edge-aware first-order smoothness of the mean-normalised inverse depth of every
  frame, scale s weighted by 1 / 2^s (unsupervised variant).
- supervised variant (``loss.supervised: true``; needs ``depth/NNNNNN.npy`` ground truth, as the
  synthetic generator writes, loaded by training/data/with_depth.py): ``depth`` = mean relative
  L1 |D - D_gt| / D_gt over pixels with ground truth, every scale upsampled; ``grad_sim``
  replaces the smoothness: 1 - cosine similarity of the depth gradients (dx, dy) of prediction
  and ground truth, where both neighbours have ground truth. The model is then metric.

Small baselines: frame pairs whose ground-truth camera distance (``gt_src_tgt``, when poses.txt
exists) is below ``loss.min_baseline`` (0.3 m, paper) are left out of the reprojection and
flow-consistency terms; the frames still run through the recurrent nets, and every other pair
of the subset still counts. Without ground-truth poses this filter is off. (The trainer's
KittiSnippets picks fixed offsets, so frames cannot be re-selected per subset as in the paper;
on the shipped clip, ~1.2 m per frame, nothing is dropped.)

Export: the ConvLSTM states are explicit ONNX inputs and outputs (``depth_h0_in`` ... ->
``depth_h0_out`` ...), metadata ``vode.recurrent = "true"`` and ``vode.state`` (JSON list of
{input, output, shape}); vode_ros/recurrent.py carries them frame to frame.
depth.onnx: ``image`` + depth state -> ``inv_depth`` + depth state.
pose.onnx (``model.export_pose: bundled``, default): ``image`` + depth state + pose state ->
``pose`` [1, 6] T_previous_current, ``inv_depth`` + both states: the depth net is inside, so
the odometry node needs only the current image. ``inv_depth_input``: ``image`` + ``inv_depth``
(the current frame's, from depth.onnx) + pose state -> ``pose`` + pose state.
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..geometry import (backproject, disp_to_depth, invert_se3, pixel_grid, pose_vec2mat, rigid_pixels,
                        sample_pixels)
from ..losses.photometric import photometric_error, reprojection_loss
from ..nets.rnn_mvod_nets import RecurrentDepthNet, RecurrentPoseNet
from . import LossTerm, Method, register
from .base import DEPTH_MODEL, normalisation_info
from .smoothness_term import SmoothnessTerm


# --------------------------------------------------------------------------- geometry helpers

def fb_flow_error(pix_ij: torch.Tensor, valid_ij: torch.Tensor, pix_ji: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward-backward consistency of rigid flows between frames i and j.

    pix_ij (B, 2, H, W): where frame-i pixels land in frame j (from one pass); valid_ij their
    validity; pix_ji: where frame-j pixels land in frame i (from the other pass). With flows
    F_ij = pix_ij - p, F_ji = pix_ji - q: error = |F_ij(p) + F_ji(p + F_ij(p))|_1 (B, 1, H, W), mask.
    """
    b, _, h, w = pix_ij.shape
    base = pixel_grid(h, w, pix_ij.dtype, pix_ij.device)[:, :2].reshape(1, 2, h, w)   # (1, 2, H, W)
    flow_ij, flow_ji = pix_ij - base, pix_ji - base
    back = sample_pixels(flow_ji, pix_ij)
    return (flow_ij + back).abs().sum(1, keepdim=True), valid_ij


def depth_grad_similarity(pred: torch.Tensor, gt: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """1 - cos(angle between the (dx, dy) depth gradients of pred and gt), mean over pixels where
    both neighbours in x and y have ground truth (gt > 0). pred, gt (B, 1, H, W)."""
    gdx, gdy = gt[..., :-1, 1:] - gt[..., :-1, :-1], gt[..., 1:, :-1] - gt[..., :-1, :-1]
    pdx, pdy = pred[..., :-1, 1:] - pred[..., :-1, :-1], pred[..., 1:, :-1] - pred[..., :-1, :-1]
    ok = ((gt[..., :-1, 1:] > 0) & (gt[..., :-1, :-1] > 0) & (gt[..., 1:, :-1] > 0)).to(pred.dtype)
    dot = pdx * gdx + pdy * gdy
    norm = torch.sqrt(pdx ** 2 + pdy ** 2 + eps ** 2) * torch.sqrt(gdx ** 2 + gdy ** 2 + eps ** 2)
    cos = (dot + eps ** 2) / norm
    return ((1 - cos) * ok).sum() / (ok.sum() + 1e-7)


def depth_l1_rel(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """mean |pred - gt| / gt over pixels with gt > 0. pred, gt (B, 1, H, W) metres."""
    ok = (gt > 0).to(pred.dtype)
    return ((pred - gt).abs() / gt.clamp(min=1e-3) * ok).sum() / (ok.sum() + 1e-7)


# --------------------------------------------------------------------------- loss terms

class MultiViewPhotometricTerm(LossTerm):
    name = "photometric"

    def __init__(self, weight: float, kind: str, ssim_weight: float, min_reprojection: bool):
        super().__init__(weight)
        self.kind, self.ssim_weight, self.min_reprojection = kind, ssim_weight, min_reprojection

    def compute(self, out, batch):
        images = out["images"]                                   # (2B, N, C, H, W) processing order
        losses = []
        for s in range(len(out["depths"][0])):
            for a, sources in out["pairs"].items():
                errors, masks = [], []
                for b_ in sources:
                    warped = sample_pixels(images[:, b_], out["pix"][(a, b_)][s])
                    errors.append(photometric_error(warped, images[:, a], self.kind, self.ssim_weight))
                    masks.append(out["valid"][(a, b_)][s] * out["pair_mask"][(a, b_)])
                losses.append(reprojection_loss(errors, masks, self.min_reprojection))
        return torch.stack(losses).mean()


class FBFlowTerm(LossTerm):
    name = "fb_flow"

    def compute(self, out, batch):
        n, b = out["n_frames"], out["batch"]
        errs = []
        for (a, b_), pixs in out["pix"].items():                  # a: target, b_: source (processing order)
            ra, rb = n - 1 - a, n - 1 - b_                         # the same frames in the other pass
            if (rb, ra) not in out["pix"]:
                continue
            pix_ij, valid_ij = pixs[0], out["valid"][(a, b_)][0]
            pix_ji = out["pix"][(rb, ra)][0]
            # forward pass i->j against backward pass j->i, and backward i->j against forward j->i
            other = torch.cat([pix_ji[b:], pix_ji[:b]], 0)
            err, mask = fb_flow_error(pix_ij, valid_ij * out["pair_mask"][(a, b_)], other)
            errs.append((err * mask).sum() / (mask.sum() + 1e-7))
        if not errs:
            return out["depths"][0][0].sum() * 0.0
        return torch.stack(errs).mean()


class DepthSupervisionTerm(LossTerm):
    name = "depth"

    def compute(self, out, batch):
        gt = out["gt_depth"].flatten(0, 1)                        # (2B N, 1, H, W)
        return torch.stack([depth_l1_rel(d.flatten(0, 1), gt) for d in out["depths_full"]]).mean()


class GradSimilarityTerm(LossTerm):
    name = "grad_sim"

    def compute(self, out, batch):
        gt = out["gt_depth"].flatten(0, 1)
        return torch.stack([depth_grad_similarity(d.flatten(0, 1), gt) for d in out["depths_full"]]).mean()


# --------------------------------------------------------------------------- export wrappers

def _state_spec(prefix: str, shapes: list[tuple[int, ...]]) -> list[dict[str, Any]]:
    out = []
    for i, shape in enumerate(shapes):
        name = f"{prefix}_{'hc'[i % 2]}{i // 2}"
        out.append({"input": f"{name}_in", "output": f"{name}_out", "shape": [int(x) for x in shape]})
    return out


def _meta(spec: list[dict[str, Any]], output: str) -> dict[str, str]:
    return {"vode.recurrent": "true", "vode.state": json.dumps(spec), "vode.output": output}


class RecurrentDepthExport(nn.Module):
    """depth.onnx: (image [1, C, H, W], *depth state) -> (inv_depth [1, 1, H, W] finest, *new depth state)."""

    def __init__(self, depth_net: RecurrentDepthNet, height: int, width: int):
        super().__init__()
        self.depth_net = depth_net
        self.spec = _state_spec("depth", depth_net.state_shapes(height, width))

    def forward(self, image: torch.Tensor, *state: torch.Tensor):
        disps, new = self.depth_net(image, list(state))
        return (disps[0], *new)

    def zero_state(self) -> list[torch.Tensor]:
        return [torch.zeros(s["shape"]) for s in self.spec]

    def onnx_io(self) -> dict[str, Any]:
        def make_inputs(image: np.ndarray) -> list[np.ndarray]:
            # a carried (non-zero) state: the state after a step on the mirrored image
            x = torch.from_numpy(image)
            with torch.no_grad():
                state = self(x.flip(-1), *self.zero_state())[1:]
            return [image] + [s.numpy() for s in state]

        return {"input_names": ["image"] + [s["input"] for s in self.spec],
                "output_names": ["inv_depth"] + [s["output"] for s in self.spec],
                "make_inputs": make_inputs,
                "metadata": _meta(self.spec, "inverse depth in 1/m, finest scale, [1,1,H,W]; recurrent: "
                                             "carry the vode.state outputs to the next frame's inputs")}


class RecurrentPoseExport(nn.Module):
    """pose.onnx. bundled: (image, *depth state, *pose state) -> (pose, inv_depth, *depth state, *pose state);
    with_depth_input: (image, inv_depth, *pose state) -> (pose, *pose state). pose = T_previous_current."""

    def __init__(self, depth_net: RecurrentDepthNet, pose_net: RecurrentPoseNet, depth_input_scale: float,
                 height: int, width: int, bundled: bool = True):
        super().__init__()
        self.depth_net, self.pose_net = depth_net, pose_net
        self.depth_input_scale, self.bundled = float(depth_input_scale), bool(bundled)
        self.depth_spec = _state_spec("depth", depth_net.state_shapes(height, width)) if bundled else []
        self.pose_spec = _state_spec("pose", pose_net.state_shapes(height, width))
        self.spec = self.depth_spec + self.pose_spec

    def forward(self, image: torch.Tensor, *rest: torch.Tensor):
        if self.bundled:
            nd = len(self.depth_spec)
            disps, dstate = self.depth_net(image, list(rest[:nd]))
            inv_depth, pstate_in = disps[0], list(rest[nd:])
        else:
            inv_depth, pstate_in, dstate = rest[0], list(rest[1:]), []
        pose, pstate = self.pose_net(torch.cat([image, self.depth_input_scale * inv_depth], 1), pstate_in)
        if self.bundled:
            return (pose, inv_depth, *dstate, *pstate)
        return (pose, *pstate)

    def onnx_io(self) -> dict[str, Any]:
        c = self.pose_net.convs[0][0].in_channels - 1

        def make_inputs(frames: np.ndarray) -> list[np.ndarray]:
            # frames [1, 2C, H, W] = [current, previous]: step on previous from zero state, then
            # current with the carried state (what the run time does)
            cur, prev = torch.from_numpy(frames[:, :c]), torch.from_numpy(frames[:, c:])
            with torch.no_grad():
                if self.bundled:
                    zeros = [torch.zeros(s["shape"]) for s in self.spec]
                    state = self(prev, *zeros)[2:]
                    return [cur.numpy()] + [s.numpy() for s in state]
                d_prev, dstate = self.depth_net(prev)
                d_cur, _ = self.depth_net(cur, dstate)
                state = self(prev, d_prev[0], *[torch.zeros(s["shape"]) for s in self.pose_spec])[1:]
                return [cur.numpy(), d_cur[0].numpy()] + [s.numpy() for s in state]

        data_in = ["image"] if self.bundled else ["image", "inv_depth"]
        data_out = ["pose", "inv_depth"] if self.bundled else ["pose"]
        desc = ("T_previous_current [tx,ty,tz,rx,ry,rz] (m, rad, R=Rz@Ry@Rx); recurrent: input the current "
                "frame only" + (" (depth net inside)" if self.bundled else " and its inv_depth from depth.onnx")
                + ", carry the vode.state outputs to the next frame's inputs; the first step after a reset "
                  "has no previous frame (ignore its pose)")
        meta = _meta(self.spec, desc)
        meta["vode.pose_inputs"] = json.dumps(data_in)
        return {"input_names": data_in + [s["input"] for s in self.spec],
                "output_names": data_out + [s["output"] for s in self.spec],
                "make_inputs": make_inputs, "metadata": meta}


# --------------------------------------------------------------------------- the method

@register("rnn_mvod")
class RNNMVOD(Method):
    DEFAULTS = {
        "model": {
            **DEPTH_MODEL,
            "depth_lstm_stages": [2, 3, 4],      # ConvLSTM after these encoder stages (0..4, at H/2^(i+1))
            "pose_channels": [16, 32, 64, 96, 128, 128],
            "pose_lstm_stages": [2, 3, 5],
            "pose_scale": 0.01,                  # rotation head scale
            "pose_trans_scale": 0.01,            # translation head scale
            "depth_input_scale": 10.0,           # pose net depth channel = scale * inv_depth (1/m)
            "detach_pose_depth": False,          # true: the pose loss does not shape depth through the pose input
            "export_pose": "bundled",            # bundled | inv_depth_input (see the module doc)
        },
        "loss": {
            "photometric": "ssim_l1",
            "photometric_weight": 1.0,
            "ssim_weight": 0.85,
            "min_reprojection": False,           # per target: masked mean over sources (paper) / per-pixel min
            "max_pair_gap": 0,                   # reprojection pairs at most this many frames apart (0 = all)
            "backward": True,                    # also run every subset backward in time
            "fb_weight": 0.002,                  # forward-backward flow consistency (pixels); 0 = off
            "smooth_weight": 0.001,
            "min_baseline": 0.3,                 # m; pairs closer (ground-truth poses) are left out
            "supervised": False,                 # depth/NNNNNN.npy ground truth: depth + grad_sim terms
            "depth_weight": 1.0,
            "grad_sim_weight": 0.5,
        },
    }

    def __init__(self, cfg: dict[str, Any], channels: int):
        super().__init__(cfg, channels)
        m, lo, d = cfg["model"], cfg["loss"], cfg["data"]
        offsets = [int(o) for o in d["offsets"]]
        if offsets[0] <= 0 or any(b <= a for a, b in zip(offsets, offsets[1:])):
            raise ValueError(f"rnn_mvod needs data.offsets strictly increasing and positive (a subset of "
                             f"consecutive frames, e.g. [1, 2, 3, 4] for N=5), got {offsets}")
        if m["export_pose"] not in ("bundled", "inv_depth_input"):
            raise ValueError(f"model.export_pose must be 'bundled' or 'inv_depth_input', got {m['export_pose']!r}")
        self.offsets = offsets
        self.n_frames = len(offsets) + 1
        self.register_normalisation(m)
        self.min_depth, self.max_depth = float(m["min_depth"]), float(m["max_depth"])
        self.depth_input_scale = float(m["depth_input_scale"])
        self.detach_pose_depth = bool(m["detach_pose_depth"])
        self.backward_pass = bool(lo["backward"])
        self.max_pair_gap = int(lo["max_pair_gap"])
        self.min_baseline = float(lo["min_baseline"])
        self.supervised = bool(lo["supervised"])
        self.nets["depth"] = RecurrentDepthNet(channels, m["depth_enc_channels"], m["depth_dec_channels"],
                                               m["num_scales"], self.min_depth, self.max_depth, m["init_depth"],
                                               m["depth_lstm_stages"])
        self.nets["pose"] = RecurrentPoseNet(channels + 1, m["pose_channels"], m["pose_lstm_stages"],
                                             m["pose_scale"], m["pose_trans_scale"])
        self.terms = [MultiViewPhotometricTerm(lo["photometric_weight"], lo["photometric"], lo["ssim_weight"],
                                               lo["min_reprojection"])]
        if self.backward_pass and lo["fb_weight"] > 0:
            self.terms.append(FBFlowTerm(lo["fb_weight"]))
        if self.supervised:
            self.terms += [DepthSupervisionTerm(lo["depth_weight"]), GradSimilarityTerm(lo["grad_sim_weight"])]
        else:
            self.terms.append(SmoothnessTerm(lo["smooth_weight"],
                                             lambda out, batch: [(out["disps"], out["images"].flatten(0, 1))]))
        self._gt_depths = None


    # -- recurrent unrolling ------------------------------------------------------------------
    def unroll(self, frames_in: torch.Tensor):
        """frames_in (B, N, C, H, W) [0, 1] in processing order -> (disps [N][scales] (B, 1, h, w),
        poses (B, N, 6): poses[:, k] = T_{k-1,k} (k >= 1; k = 0 is the unused first output))."""
        dstate = pstate = None
        disps, poses = [], []
        for k in range(frames_in.shape[1]):
            x = self.normalise(frames_in[:, k])
            ds, dstate = self.nets["depth"](x, dstate)
            inv = ds[0].detach() if self.detach_pose_depth else ds[0]
            pose, pstate = self.nets["pose"](torch.cat([x, self.depth_input_scale * inv], 1), pstate)
            disps.append(ds)
            poses.append(pose)
        return disps, torch.stack(poses, 1)

    def _pair_list(self) -> dict[int, list[int]]:
        n, gap = self.n_frames, self.max_pair_gap
        return {a: [b for b in range(n) if b != a and (gap <= 0 or abs(a - b) <= gap)] for a in range(n)}

    def _gt_distances(self, batch) -> torch.Tensor | None:
        """(B, N, N) ground-truth camera distances between the subset's frames (time order), or None."""
        if "gt_src_tgt" not in batch:
            return None
        pos = invert_se3(batch["gt_src_tgt"].flatten(0, 1))[:, :3, 3].view(batch["gt_src_tgt"].shape[0], -1, 3)
        pos = torch.cat([torch.zeros_like(pos[:, :1]), pos], 1)                # (B, N, 3), frame t at 0
        return (pos[:, :, None] - pos[:, None, :]).norm(dim=-1)

    def _maybe_gt_depth(self, batch):
        if "gt_depth" in batch:
            return batch["gt_depth"]
        if self._gt_depths is None:
            from ..data.with_depth import FrameDepths

            d = self.cfg["data"]
            self._gt_depths = FrameDepths(d["path"], d["width"], d["height"], d["max_frames"] or None)
            if not self._gt_depths.available:
                raise ValueError(f"loss.supervised: true needs ground-truth depth {d['path']}/depth/NNNNNN.npy "
                                 "(float32 metres, as `vode synth` writes) for every frame")
        from ..data.with_depth import add_gt_depth

        return add_gt_depth(batch, self._gt_depths, self.offsets)["gt_depth"]

    def sequences(self, batch):
        """-> network inputs, images (rows, N, C, H, W) in processing order and K (rows, 3, 3); rows = B
        (forward in time), then B more (the same subsets backward in time) with ``loss.backward``."""
        seq_in = torch.cat([batch["tgt_in"].unsqueeze(1), batch["src_in"]], 1)     # (B, N, C, H, W) time order
        seq = torch.cat([batch["tgt"].unsqueeze(1), batch["src"]], 1)
        k = batch["K"]
        if self.backward_pass:
            seq_in = torch.cat([seq_in, seq_in.flip(1)], 0)                          # (2B, N, ...)
            seq = torch.cat([seq, seq.flip(1)], 0)
            k = torch.cat([k, k], 0)
        return seq_in, seq, k

    def forward(self, batch):
        seq_in, seq, k = self.sequences(batch)
        disps, poses = self.unroll(seq_in)
        return self.assemble(batch, seq, k, disps, poses)

    def assemble(self, batch, seq, k, disps, poses):
        """Depths, composed poses, rigid pixel maps of all pairs -> the dict the loss terms read.
        disps [N][scales] (rows, 1, h, w) inverse depth, poses (rows, N, 6) T_{k-1,k} (processing order)."""
        b, n = batch["tgt"].shape[0], seq.shape[1]
        rows = seq.shape[0]
        height, width = seq.shape[-2:]
        num_scales = len(disps[0])
        depths = []                                                                 # [N][scales] (rows, 1, H, W)
        for ds in disps:
            depths.append([disp_to_depth(x if x.shape[-2:] == (height, width) else F.interpolate(
                x, size=(height, width), mode="bilinear", align_corners=False), self.min_depth, self.max_depth)
                for x in ds])
        # chain: W_k = T_{0,1} ... T_{k-1,k} (frame k in frame 0); T_{b,a} = W_b^-1 W_a
        rel = pose_vec2mat(poses[:, 1:].flatten(0, 1)).view(rows, n - 1, 4, 4)
        chain = [torch.eye(4, dtype=seq.dtype, device=seq.device).repeat(rows, 1, 1)]
        for j in range(n - 1):
            chain.append(chain[-1] @ rel[:, j])
        dist = self._gt_distances(batch)
        pairs = self._pair_list()
        k_inv = torch.linalg.inv(k)
        pix, valid, pair_mask = {}, {}, {}
        for a, sources in pairs.items():
            points = [backproject(depths[a][s], k_inv) for s in range(num_scales)]
            for b_ in sources:
                t_ba = invert_se3(chain[b_]) @ chain[a]
                ps, vs = [], []
                for s in range(num_scales):
                    p, v = rigid_pixels(depths[a][s], t_ba, k, points[s])
                    ps.append(p)
                    vs.append(v)
                pix[(a, b_)], valid[(a, b_)] = ps, vs
                if dist is not None and self.min_baseline > 0:
                    keep = (dist[:, a, b_] >= self.min_baseline)
                    if self.backward_pass:
                        keep = torch.cat([keep, dist[:, n - 1 - a, n - 1 - b_] >= self.min_baseline], 0)
                    pair_mask[(a, b_)] = keep.to(seq.dtype).view(rows, 1, 1, 1)
                else:
                    pair_mask[(a, b_)] = torch.ones(rows, 1, 1, 1, dtype=seq.dtype, device=seq.device)
        out = {"images": seq, "disps": [torch.stack([ds[s] for ds in disps], 1).flatten(0, 1) for s in range(num_scales)],
               "depths": depths, "poses": poses, "chain": chain, "pix": pix, "valid": valid, "pairs": pairs,
               "pair_mask": pair_mask, "n_frames": n, "batch": b, "distances": dist,
               "depths_full": [torch.stack([depths[t][s] for t in range(n)], 1) for s in range(num_scales)]}
        if self.supervised:
            gt = self._maybe_gt_depth(batch).to(seq.dtype)                           # (B, N, 1, H, W)
            out["gt_depth"] = torch.cat([gt, gt.flip(1)], 0) if self.backward_pass else gt
        return out

    def metrics(self, out, batch):
        depth = out["depths"][0][0]
        h, w = depth.shape[-2:]
        res = {"depth/median_lower_middle_m": depth[:, :, h // 2:, w // 4: 3 * w // 4].median().item()}
        b = out["batch"]
        rel = pose_vec2mat(out["poses"][:b, 1:].flatten(0, 1)).view(b, -1, 4, 4)  # forward pass T_{k-1,k}
        res["pose/tz_consecutive_pred_m"] = rel[:, :, 2, 3].mean().item()
        if "gt_src_tgt" in batch:
            w_gt = invert_se3(batch["gt_src_tgt"].flatten(0, 1)).view(b, -1, 4, 4)
            eye = torch.eye(4, dtype=w_gt.dtype, device=w_gt.device).expand(b, 1, 4, 4)
            w_gt = torch.cat([eye, w_gt], 1)
            gt_rel = invert_se3(w_gt[:, :-1].flatten(0, 1)) @ w_gt[:, 1:].flatten(0, 1)
            gt_rel = gt_rel.view(b, -1, 4, 4)
            res["pose/tz_consecutive_gt_m"] = gt_rel[:, :, 2, 3].mean().item()
            res["pose/trans_err_m"] = (rel[:, :, :3, 3] - gt_rel[:, :, :3, 3]).norm(dim=-1).mean().item()
        if out["distances"] is not None:
            n = out["n_frames"]
            off = ~torch.eye(n, dtype=torch.bool, device=out["distances"].device).expand_as(out["distances"])
            res["data/pairs_below_min_baseline"] = (out["distances"][off] < self.min_baseline).float().mean().item()
        return res

    # -- export -------------------------------------------------------------------------------
    def export_modules(self):
        d = self.cfg["data"]
        h, w = int(d["height"]), int(d["width"])
        bundled = self.cfg["model"]["export_pose"] == "bundled"
        return {"depth": RecurrentDepthExport(self.nets["depth"], h, w),
                "pose": RecurrentPoseExport(self.nets["depth"], self.nets["pose"], self.depth_input_scale, h, w,
                                            bundled)}

    def export_info(self):
        return {**normalisation_info(self.cfg["model"], self.channels), "metric_scale": self.supervised,
                "min_depth": self.min_depth, "max_depth": self.max_depth}
