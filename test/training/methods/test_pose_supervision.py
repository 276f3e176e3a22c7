"""Weak supervision of the motion by ground-truth poses (loss.speed_weight, loss.pose_weight)."""
from __future__ import annotations

import math

import torch

from vode_training.geometry import pose_vec2mat
from vode_training.methods.supervised_terms import PoseSupervisionTerm, SpeedTerm


def _batch(gt: torch.Tensor, valid: list[float]) -> dict[str, torch.Tensor]:
    return {"tgt": torch.zeros(len(valid), 1, 4, 4), "gt_src_tgt": gt, "gt_valid": torch.tensor(valid)}


def _motions(b: int, s: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    vec = torch.randn(b * s, 6, generator=g) * torch.tensor([0.5, 0.1, 1.0, 0.02, 0.05, 0.02])
    return pose_vec2mat(vec).view(b, s, 4, 4)                      # (B, S, 4, 4)


def test_pose_supervision_is_zero_at_the_truth_and_grows_with_the_error():
    gt = _motions(3, 2, 0)
    term = PoseSupervisionTerm(1.0, rot_weight=10.0)
    batch = _batch(gt, [1.0, 1.0, 1.0])
    out = {"poses": torch.zeros(3, 2, 6), "transforms": [gt[:, 0], gt[:, 1]]}
    assert term.compute(out, batch).item() < 1e-6
    shifted = gt.clone()
    shifted[:, :, 0, 3] += 0.3                                     # 0.3 m sideways on every source
    out["transforms"] = [shifted[:, 0], shifted[:, 1]]
    assert math.isclose(term.compute(out, batch).item(), 0.3, rel_tol=1e-5)
    turned = gt @ pose_vec2mat(torch.tensor([[0, 0, 0, 0, 0.01, 0.0]])).view(1, 1, 4, 4)
    out["transforms"] = [turned[:, 0], turned[:, 1]]
    # ‖R - R·Ry(0.01)‖_F = 2·sqrt(2)·sin(0.005) ≈ 0.01414, times rot_weight 10
    assert math.isclose(term.compute(out, batch).item(), 10 * 2 * math.sqrt(2) * math.sin(0.005), rel_tol=1e-3)


def test_samples_without_poses_do_not_count():
    gt = _motions(2, 2, 1)
    wrong = gt.clone()
    wrong[1, :, 2, 3] += 5.0                                       # only sample 1 is wrong, and it has no poses
    out = {"poses": torch.zeros(2, 2, 6), "transforms": [wrong[:, 0], wrong[:, 1]]}
    batch = _batch(gt, [1.0, 0.0])
    assert PoseSupervisionTerm(1.0).compute(out, batch).item() < 1e-6
    assert SpeedTerm(1.0).compute(out, batch).item() < 1e-6
    assert PoseSupervisionTerm(1.0).compute(out, _batch(gt, [1.0, 1.0])).item() > 1.0
