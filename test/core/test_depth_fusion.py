"""Stereo + net depth fusion (vode_ros.core.depth_fusion): SGBM where it is valid, the net scaled by
the stereo ratio (and locally) in the holes, inverse-variance blending, a confidence in 0..1."""
from __future__ import annotations

import numpy as np
import pytest

from vode_ros.core.depth_fusion import fuse_depth, guided_filter, render_right_view

H, W, FX, B = 96, 160, 120.0, 0.5


def _scene(rng):
    """A slanted floor (2-8 m) with a box at 3 m in front of a wall at 6 m; textured image."""
    v = np.arange(H, dtype=np.float32)[:, None]
    depth = np.broadcast_to(np.where(v > H / 2, 2.0 + 6.0 * (H - v) / (H / 2), 6.0), (H, W)).astype(np.float32).copy()
    depth[30:60, 60:100] = 3.0
    image = (rng.random((H, W)) * 200 + 30).astype(np.float32) / 255.0
    image[30:60, 60:100] *= 0.5                     # the box is darker: an image edge at its outline
    return depth, image


def test_fusion_keeps_stereo_fills_holes_with_the_scaled_net_and_reports_confidence():
    rng = np.random.default_rng(0)
    truth, image = _scene(rng)
    net = truth * 0.2 * np.exp(rng.normal(0, 0.1, truth.shape)).astype(np.float32)   # right shape, metres 5x off
    net[30:60, 60:100] *= 1.5                        # ... and the box too far against the wall
    disparity = FX * B / truth + rng.normal(0, 0.25, truth.shape)       # SGBM: quarter-pixel noise
    stereo = (FX * B / disparity).astype(np.float32)
    holes = np.zeros_like(truth, bool)
    holes[:, :24] = True                             # the left border SGBM cannot match
    holes[40:55, 70:90] = True                       # a texture-less patch on the box
    stereo[holes] = 0
    fused = fuse_depth(net, stereo, image, FX, B, disparity_noise_px=0.25)
    assert fused.scale == pytest.approx(5.0, rel=0.05)
    rel = np.abs(fused.depth - truth) / truth
    stereo_rel = np.abs(stereo - truth) / truth
    assert np.median(rel[~holes]) <= np.median(stereo_rel[~holes]) * 1.02   # SGBM kept (or bettered) where valid
    assert np.median(rel[holes]) < 0.1                                       # the scaled net in the holes
    assert np.median(np.abs(net[holes] - truth[holes]) / truth[holes]) > 0.7   # (the net alone is 5x off)
    # The box's hole takes the box's (local) scale: the global ratio alone would leave it 50 % off.
    assert np.median(rel[40:55, 70:90]) < 0.15
    c = fused.confidence
    assert c.dtype == np.float32 and c.min() >= 0 and c.max() <= 1
    assert np.median(c[~holes]) > np.median(c[holes]) > 0


def test_far_stereo_gives_way_to_the_net():
    """At small disparities SGBM's one-pixel noise is large: the blend leans on the scaled net."""
    rng = np.random.default_rng(1)
    truth = np.full((H, W), 150.0, np.float32)       # disparity 0.4 px
    truth[:, : W // 2] = 10.0                        # near half: 6 px
    image = rng.random((H, W)).astype(np.float32)
    net = truth * 0.5
    stereo = truth.copy()
    stereo[:, W // 2:] *= 1.6                        # far SGBM off by a disparity step
    fused = fuse_depth(net, stereo, image, FX, B)
    far = fused.depth[:, W // 2 + 10:]
    assert np.median(np.abs(far - 150.0) / 150.0) < 0.3 < 0.6     # nearer the net than SGBM's 60 %
    assert fused.confidence[:, : W // 2 - 10].mean() > fused.confidence[:, W // 2 + 10:].mean()


def test_without_stereo_the_net_passes_unscaled_with_zero_confidence():
    net = np.full((H, W), 5.0, np.float32)
    fused = fuse_depth(net, np.zeros_like(net), np.zeros((H, W), np.uint8), FX, B)
    assert np.array_equal(fused.depth, net) and not fused.confidence.any() and np.isnan(fused.scale)
    with pytest.raises(ValueError, match="share"):
        fuse_depth(net, np.zeros((H, W + 1), np.float32), np.zeros((H, W)), FX, B)


def test_guided_filter_keeps_edges_of_the_guide():
    guide = np.zeros((40, 40), np.float32)
    guide[:, 20:] = 1.0
    src = guide.copy() + np.random.default_rng(0).normal(0, 0.05, guide.shape).astype(np.float32)
    out = guided_filter(guide, src, 4, 1e-3)
    assert abs(out[:, :18].mean()) < 0.02 and abs(out[:, 22:].mean() - 1) < 0.02


def test_rendered_right_view_matches_where_sgbm_finds_the_depth():
    """A pair rendered from a depth map gives that depth back through SGBM (fronto-parallel planes)."""
    from vode_ros.core.stereo_depth import sgbm_depth

    rng = np.random.default_rng(2)
    left = (rng.random((H, W)) * 255).astype(np.uint8)
    import cv2

    left = cv2.GaussianBlur(left, (3, 3), 0)
    depth = np.full((H, W), 4.0, np.float32)        # 6 px
    depth[20:70, 70:130] = 2.0                       # 12 px
    right = render_right_view(left, depth, FX, B)
    est = sgbm_depth(left, right, FX, B, num_disparities=32)
    ok = est > 0
    assert ok.mean() > 0.6
    assert np.median(np.abs(est[ok] - depth[ok]) / depth[ok]) < 0.05
