"""Depth hints: SGBM depth of the training pair, and the loss that trusts it only where it reprojects better."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vode_training.config import load_config
from vode_training.data.depth_hints import HINT_DISPARITIES, stereo_hint
from vode_training.geometry import stereo_transform
from vode_training.losses.depth_hints import hint_error, hint_loss

FX, BASELINE, DISPARITY = 200.0, 0.5, 8          # a fronto-parallel plane at fx * b / d = 12.5 m
TRUE_DEPTH = FX * BASELINE / DISPARITY


def _pair(height: int = 64, width: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A textured rectified pair of a plane at TRUE_DEPTH: left (1, H, W), right (1, H, W), K (3, 3)."""
    import cv2

    rng = np.random.default_rng(seed)
    wide = cv2.GaussianBlur(rng.uniform(0, 255, (height, width + DISPARITY)).astype(np.float32), (3, 3), 0.8)
    left = wide[:, :width]
    right = wide[:, DISPARITY:]                     # right[x - d] = left[x]: x_right = x_left - d
    k = torch.tensor([[FX, 0, width / 2], [0, FX, height / 2], [0, 0, 1]], dtype=torch.float32)
    as_t = lambda a: torch.from_numpy(np.clip(a, 0, 255).astype(np.float32) / 255.0)[None]  # noqa: E731
    return as_t(left), as_t(right), k


def test_hint_finds_the_planes_depth_and_is_empty_without_a_baseline():
    left, right, k = _pair()
    hint = stereo_hint(left, right, k, BASELINE)
    assert hint.shape == (1, 64, 256)
    valid = hint > 0
    assert not valid[..., :HINT_DISPARITIES - 1].any()          # the left border has no match range
    assert valid[..., HINT_DISPARITIES:].float().mean() > 0.8
    assert torch.median(hint[valid]).item() == pytest.approx(TRUE_DEPTH, rel=0.03)
    assert not stereo_hint(left, right, k, 0.0).any()


def _warp_inputs():
    left, right, k = _pair()
    hint = stereo_hint(left, right, k, BASELINE)[None]                 # (1, 1, H, W)
    t = stereo_transform(BASELINE)
    return left[None], right[None], k[None], hint, t


def test_hint_reprojects_well_and_marks_pixels_without_a_hint():
    tgt, right, k, hint, t = _warp_inputs()
    err = hint_error(right, tgt, hint, t, k)
    assert torch.isinf(err[hint == 0]).all()
    assert err[torch.isfinite(err)].median().item() < 0.05


def test_loss_pulls_a_wrong_depth_to_the_hint_only_where_the_hint_wins():
    tgt, right, k, hint, t = _warp_inputs()
    err_hint = hint_error(right, tgt, hint, t, k)
    depth = torch.full_like(hint, 2 * TRUE_DEPTH, requires_grad=True)
    worse = err_hint.nan_to_num(posinf=0.0) + 1.0                       # the prediction reprojects worse everywhere
    loss = hint_loss(depth, hint, worse, err_hint)
    assert loss.item() == pytest.approx(math.log1p(TRUE_DEPTH), rel=0.05)
    loss.backward()
    assert (depth.grad[hint > 0] > 0).all()                            # gradient descent lowers the depth
    assert (depth.grad[hint == 0] == 0).all()
    better = torch.zeros_like(err_hint)                                # the prediction wins everywhere
    assert hint_loss(depth, hint, better, err_hint).item() == 0.0
    assert hint_loss(hint.clone(), hint, worse, err_hint).item() == pytest.approx(0.0, abs=1e-6)


def test_hint_weight_needs_hints_in_the_data(tiny_train):
    from vode_training.methods import build_method

    cfg = load_config(None, tiny_train + ["loss.hint_weight=1.0"])
    with pytest.raises(ValueError, match="data.depth_hints"):
        build_method(cfg, 1)


@pytest.mark.needs_data
def test_training_with_hints_runs_and_logs_the_term(tmp_path, tiny_train):
    from vode_training.data import build_dataset
    from vode_training.trainer import Trainer

    overrides = tiny_train + ["data.depth_hints=true", "loss.hint_weight=1.0", "train.steps=2",
                              "train.log_every=1", "loss.stereo_in_min=false"]
    cfg = load_config(None, overrides)
    item = build_dataset(cfg)[0]
    assert item["hint"].shape == (1, *item["tgt"].shape[-2:]) and (item["hint"] > 0).any()
    summary = Trainer(cfg, tmp_path / "run", progress=False).train()
    assert math.isfinite(summary["final_loss"])
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "run"))
    acc.Reload()
    assert any("depth_hint" in tag for tag in acc.Tags()["scalars"])
