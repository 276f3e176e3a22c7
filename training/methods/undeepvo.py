"""UnDeepVO (Li, Wang, Long, Gu; ICRA 2018) on the shared core: stereo-trained depth and VO with
metric scale from the known stereo baseline.

Data: stereo video (``data.stereo: true``): left target t, left sources t + offsets, the right
images at t and at the sources (``right``, ``right_src``).

Nets (``self.nets``):
- ``depth``: a registry depth net (``model.depth_net``: small | dispnet | lite), a *monocular*
  net with shared weights run on the left and on the right image (and on the left sources for
  the 3D registration): left depth D_L and right depth D_R come from passes of one net over a
  batch of left and right images, not from a two-channel head, so the exported depth net is
  the same kind of mono net as the other methods';
- ``pose``: ``UnDeepVOPoseNet`` (training/nets/undeepvo_pose.py), shared conv encoder with
  separate translation and rotation heads; input [later, earlier] frame -> T_earlier_later
  (the run time feeds [current, previous] -> T_previous_current), poses of future sources are
  inverted (as SfMLearner's ``pose_temporal_order``). It runs on the left pairs and, for the
  pose consistency, on the right pairs.

Loss terms (names as logged):
- ``photometric_stereo``: right -> left with D_L and left -> right with D_R, warped with the
  known stereo transform (this is what fixes the metric scale); SSIM + L1 (``loss.photometric``),
  the mean of both directions, averaged over the scales;
- ``disparity_consistency``: left-right disparity consistency (losses/stereo_consistency.py),
  both directions, averaged over the scales;
- ``pose_consistency``: pose from the left pair vs pose from the right pair (exact, via the
  stereo rig conjugation S T_L S^-1, unless ``loss.pose_consistency_conjugate: false``);
- ``photometric_temporal``: sources t +/- 1 warped into t with D_L and the predicted pose;
  SSIM + L1; masked mean over sources (the paper), or the per-pixel minimum with
  ``loss.min_reprojection``; with ``loss.right_temporal`` the right sequence too (with D_R and
  the right pose);
- ``registration_3d``: 3D point-cloud registration between k (target) and k+1 (source) at the
  finest scale, L1 (losses/stereo_consistency.py); with ``loss.right_temporal`` the right too;
- ``smoothness`` (only when ``loss.smooth_weight`` > 0; not in the paper): edge-aware, left and
  right inverse depth, scale s weighted 1 / 2^s.
Scales (``loss.multiscale``): ``native`` (default; SfMLearner / Monodepth1 / the papers' era):
scale s is compared at its own resolution, images area-downsampled and K rescaled, which costs
about 1.3x one full-resolution scale in all; ``upsample`` (monodepth2): every scale's inverse
depth is upsampled and compared at full resolution (num_scales x the cost).
All warps are done once in ``forward``, maps that share a depth and a transform stacked into one
``inverse_warp`` call (image + disparity, image + point cloud); the terms read the results.
Data augmentation changes only ``tgt_in`` / ``src_in``; the right images reach the nets as
``right_in`` / ``right_src_in`` when the data set provides them, else un-augmented.
"""
from __future__ import annotations

from typing import Any

import torch

from ..geometry import backproject, inverse_warp, invert_se3, pose_vec2mat
from ..losses.photometric import masked_mean, photometric_error, reprojection_loss
from ..losses.stereo_consistency import (depth_to_disparity, disparity_error, moved_cloud, pose_consistency,
                                         registration_error)
from ..nets.undeepvo_pose import UnDeepVOPoseNet
from . import LossTerm, register
from .base import StereoVideoMethod
from .smoothness_term import SmoothnessTerm


# ----------------------------------------------------------------------------- loss terms
# out["scales"][s] holds, for scale s: "left", "right" (images at that scale), "disp_l",
# "disp_r" (disparity, fraction of the width), "stereo_l" / "stereo_r" (warped image, warped
# other disparity, valid), "temporal" / "temporal_r" ([(warped image, valid)] per source).
# out["registration"] / out["registration_r"]: [(moved target cloud, sampled source cloud, valid)].

class StereoPhotometricTerm(LossTerm):
    """Left <- right (with D_L) and right <- left (with D_R), mean over directions and scales."""

    name = "photometric_stereo"

    def __init__(self, weight: float, kind: str, ssim_weight: float):
        super().__init__(weight)
        self.kind, self.ssim_weight = kind, ssim_weight

    def compute(self, out, batch):
        losses = []
        for sc in out["scales"]:
            (w_l, _, v_l), (w_r, _, v_r) = sc["stereo_l"], sc["stereo_r"]
            losses.append(0.5 * (masked_mean(photometric_error(w_l, sc["left"], self.kind, self.ssim_weight), v_l)
                                 + masked_mean(photometric_error(w_r, sc["right"], self.kind, self.ssim_weight), v_r)))
        return torch.stack(losses).mean()


class TemporalPhotometricTerm(LossTerm):
    """Sources t +/- 1 warped into t with the predicted depth and pose (left; right too if present)."""

    name = "photometric_temporal"

    def __init__(self, weight: float, kind: str, ssim_weight: float, min_reprojection: bool):
        super().__init__(weight)
        self.kind, self.ssim_weight, self.min_reprojection = kind, ssim_weight, min_reprojection

    def _one(self, warps, tgt):
        errors = [photometric_error(w, tgt, self.kind, self.ssim_weight) for w, _ in warps]
        return reprojection_loss(errors, [v for _, v in warps], self.min_reprojection)

    def compute(self, out, batch):
        losses = []
        for sc in out["scales"]:
            loss = self._one(sc["temporal"], sc["left"])
            if sc.get("temporal_r"):
                loss = 0.5 * (loss + self._one(sc["temporal_r"], sc["right"]))
            losses.append(loss)
        return torch.stack(losses).mean()


class DisparityConsistencyTerm(LossTerm):
    name = "disparity_consistency"

    def compute(self, out, batch):
        return torch.stack([disparity_error(sc["disp_l"], sc["stereo_l"][1], sc["stereo_l"][2])
                            + disparity_error(sc["disp_r"], sc["stereo_r"][1], sc["stereo_r"][2])
                            for sc in out["scales"]]).mean()


class PoseConsistencyTerm(LossTerm):
    name = "pose_consistency"

    def __init__(self, weight: float, conjugate: bool, rot_weight: float):
        super().__init__(weight)
        self.conjugate, self.rot_weight = conjugate, rot_weight

    def compute(self, out, batch):
        return torch.stack([pose_consistency(t_l, t_r, out["stereo"], self.conjugate, self.rot_weight)
                            for t_l, t_r in zip(out["transforms"], out["transforms_right"])]).mean()


class RegistrationTerm(LossTerm):
    """3D registration of the target cloud (finest depth) with each source's cloud."""

    name = "registration_3d"

    def __init__(self, weight: float, relative: bool):
        super().__init__(weight)
        self.relative = relative

    def compute(self, out, batch):
        regs = out["registration"] + out.get("registration_r", [])
        return torch.stack([registration_error(m, s, v, self.relative) for m, s, v in regs]).mean()


def left_and_right(out, batch):
    """Both views' pyramids against their images (the term averages the two)."""
    return [(out["disps"], batch["tgt"]), (out["disps_right"], batch["right"])]


@register("undeepvo")
class UnDeepVO(StereoVideoMethod):
    DEFAULTS = {
        "model": {
            **StereoVideoMethod.COMMON_MODEL,
            "pose_channels": [16, 32, 64, 128, 256, 256, 512],
            "pose_hidden": [512, 512],           # FC layers of each head (translation, rotation)
        },
        "loss": {
            "photometric": "ssim_l1",            # ssim_l1 | l1
            "ssim_weight": 0.85,
            "multiscale": "native",              # native | upsample (see the module docstring)
            "stereo_weight": 1.0,                # left <-> right photometric
            "temporal_weight": 1.0,              # t +/- 1 photometric
            "min_reprojection": False,           # paper: mean over sources; true: per-pixel minimum
            "right_temporal": False,             # also the right sequence's temporal photometric and
                                                 # registration (one more depth pass per source)
            "disparity_consistency_weight": 1.0,
            "pose_consistency_weight": 0.01,     # L1: its gradient has a constant size however small
                                                 # the left/right difference; at 1.0 it was ~15x the
                                                 # temporal photometric gradient on t_z and stalled it
            "pose_consistency_rot_weight": 1.0,  # rad vs m inside the pose consistency
            "pose_consistency_conjugate": True,  # compare with S T_L S^-1 (exact); false: T_L (paper)
            "registration_weight": 0.01,
            "registration_relative": False,      # true: point error / depth
            "smooth_weight": 0.0,                # not in the paper; > 0 adds edge-aware smoothness
        },
    }

    def __init__(self, cfg: dict[str, Any], channels: int):
        super().__init__(cfg, channels)
        m, lo = cfg["model"], cfg["loss"]
        self.right_temporal = bool(lo["right_temporal"])
        self.nets["pose"] = UnDeepVOPoseNet(channels, m["pose_channels"], m["pose_hidden"], m["pose_scale"],
                                            m["pose_trans_scale"])
        photo = (lo["photometric"], lo["ssim_weight"])
        self.terms = [
            StereoPhotometricTerm(lo["stereo_weight"], *photo),
            DisparityConsistencyTerm(lo["disparity_consistency_weight"]),
            PoseConsistencyTerm(lo["pose_consistency_weight"], lo["pose_consistency_conjugate"],
                                lo["pose_consistency_rot_weight"]),
            TemporalPhotometricTerm(lo["temporal_weight"], *photo, lo["min_reprojection"]),
            RegistrationTerm(lo["registration_weight"], lo["registration_relative"]),
        ]
        if lo["smooth_weight"] > 0:
            self.terms.append(SmoothnessTerm(lo["smooth_weight"], left_and_right))

    def forward(self, batch):
        tgt_in, src_in = batch["tgt_in"], batch["src_in"]                  # (B, C, H, W), (B, S, C, H, W)
        right_in = batch.get("right_in", batch["right"])
        right_src_in = batch.get("right_src_in", batch["right_src"])
        tgt, src, right, right_src, k = batch["tgt"], batch["src"], batch["right"], batch["right_src"], batch["K"]
        b, n_src, c = src_in.shape[:3]
        size = tuple(tgt_in.shape[-2:])
        images = [tgt_in, right_in] + [src_in[:, j] for j in range(n_src)]
        if self.right_temporal:
            images += [right_src_in[:, j] for j in range(n_src)]
        passes = self.depth_passes(images)
        disps, disps_right = passes[0], passes[1]
        src_depths = [self.finest_depth(p) for p in passes[2:2 + n_src]]
        right_src_depths = [self.finest_depth(p) for p in passes[2 + n_src:]]
        pairs = torch.cat([self.pose_pairs(tgt_in, src_in), self.pose_pairs(right_in, right_src_in)], 0)
        vecs = self.nets["pose"](pairs)                                      # (2 * B * S, 6)
        poses, poses_right = vecs[:b * n_src].view(b, n_src, 6), vecs[b * n_src:].view(b, n_src, 6)
        transforms = self.to_src_tgt(pose_vec2mat(poses.reshape(-1, 6)).view(b, n_src, 4, 4))
        transforms_right = self.to_src_tgt(pose_vec2mat(poses_right.reshape(-1, 6)).view(b, n_src, 4, 4))
        s_mat = self.stereo(batch)
        s_inv = invert_se3(s_mat)
        out = {"disps": disps, "disps_right": disps_right, "poses": poses, "poses_right": poses_right,
               "transforms": transforms, "transforms_right": transforms_right, "stereo": s_mat, "scales": []}
        for s in range(len(disps)):
            d_l, k_s, resize = self.at_scale(disps[s], size, k)
            d_r, _, _ = self.at_scale(disps_right[s], size, k)
            left, rgt = resize(tgt), resize(right)
            disp_l = depth_to_disparity(d_l, k_s, batch["baseline"])
            disp_r = depth_to_disparity(d_r, k_s, batch["baseline"])
            w_l, v_l = inverse_warp(torch.cat([rgt, disp_r], 1), d_l, s_mat, k_s)     # right -> left
            w_r, v_r = inverse_warp(torch.cat([left, disp_l], 1), d_r, s_inv, k_s)    # left -> right
            sc = {"left": left, "right": rgt, "disp_l": disp_l, "disp_r": disp_r,
                  "stereo_l": (w_l[:, :c], w_l[:, c:], v_l), "stereo_r": (w_r[:, :c], w_r[:, c:], v_r)}
            sequences = [("", src, d_l, transforms, src_depths)]
            if self.right_temporal:
                sequences.append(("_r", right_src, d_r, transforms_right, right_src_depths))
            for suffix, srcs, depth, mats, depths_src in sequences:
                warps, regs = [], []
                k_inv = torch.linalg.inv(k_s) if s == 0 else None
                for j, mat in enumerate(mats):
                    maps = [resize(srcs[:, j])]
                    if s == 0:                          # registration: the source cloud rides along
                        maps.append(backproject(depths_src[j], k_inv).view(b, 3, *size))
                    w, v = inverse_warp(torch.cat(maps, 1), depth, mat, k_s)
                    warps.append((w[:, :c], v))
                    if s == 0:
                        regs.append((moved_cloud(depth, mat, k_inv), w[:, c:], v))
                sc["temporal" + suffix] = warps
                if s == 0:
                    out["registration" + suffix] = regs
            out["scales"].append(sc)
        out["depth"] = self.finest_depth(disps)
        return out
