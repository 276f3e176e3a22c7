"""Pose nets start alive and near the identity motion.

With PyTorch's default conv init the pooled features of the 7-stage pose CNNs vanished and every
input pair got the head's bias: the shipped driving pose net learned one constant motion for all
frames. These tests fail on that init.
"""
from __future__ import annotations

import pytest
import torch

from vode_training.nets.lite import LitePoseNet
from vode_training.nets.pose_net import PoseNet


@pytest.mark.parametrize("cls", [PoseNet, LitePoseNet])
@pytest.mark.parametrize("trans_scale", [0.01, 1.0])
def test_pose_output_depends_on_the_input_at_init(cls, trans_scale):
    torch.manual_seed(0)
    net = cls(1, trans_scale=trans_scale).eval()
    frames = torch.rand(6, 2, 128, 416)                        # (B, 2C, H, W)
    with torch.no_grad():
        pose = net(frames)                                     # (B, 6)
    raw = pose / torch.tensor([trans_scale] * 3 + [net.output_scale] * 3)
    spread = raw.std(0) / raw.abs().mean(0).clamp(min=1e-12)
    assert spread.min() > 0.01, f"outputs nearly identical across inputs: relative spread {spread.tolist()}"


@pytest.mark.parametrize("cls", [PoseNet, LitePoseNet])
def test_metric_translation_head_starts_near_zero_motion(cls):
    torch.manual_seed(0)
    net = cls(1, trans_scale=1.0).eval()
    with torch.no_grad():
        pose = net(torch.rand(4, 2, 128, 416))
    assert pose[:, :3].norm(dim=1).max() < 0.05                # metres: a near-identity first warp
    assert pose[:, 3:].abs().max() < 0.05                      # radians
