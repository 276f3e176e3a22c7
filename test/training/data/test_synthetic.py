"""Synthetic scenes: determinism, exact geometry (temporal + stereo warping, disparity), KITTI layout."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vode_training.data.synthetic import SynthConfig, generate_sequence, write_kitti_layout
from vode_ros.core.geometry import invert_se3


@pytest.fixture(scope="module")
def seq():
    return generate_sequence(frames=6, seed=3)


def _warp(src_img, tgt_depth, t_src_tgt, k):
    """Warp a source image into the target view with training/geometry.py inverse_warp (numpy in/out),
    plus the source pixel coordinates (H, W, 2) and the target points' depth in the source camera."""
    import torch

    from vode_training.geometry import backproject, inverse_warp, project, transform_points

    h, w = tgt_depth.shape
    src = torch.tensor(src_img, dtype=torch.float32)[None, None]
    dep = torch.tensor(tgt_depth, dtype=torch.float32)[None, None]
    t = torch.tensor(t_src_tgt, dtype=torch.float32)[None]
    kk = torch.tensor(k, dtype=torch.float32)[None]
    warped, valid = inverse_warp(src, dep, t, kk)
    pix, z = project(transform_points(t, backproject(dep, torch.linalg.inv(kk))), kk)
    return (warped[0, 0].numpy(), valid[0, 0].numpy() > 0,
            pix[0].numpy().T.reshape(h, w, 2), z[0, 0].numpy().reshape(h, w))


def _good_mask(tgt_depth, src_depth, pix, z, valid):
    """Valid, not sky, not next to a depth edge (target or source), visible in the source, and
    sampled at least 1 px inside the source image (no zero padding in the bilinear taps)."""
    import cv2

    h, w = tgt_depth.shape
    d = tgt_depth
    mx = cv2.dilate(d, np.ones((3, 3)))
    mn = cv2.erode(np.where(d > 0, d, 1e6).astype(np.float32), np.ones((3, 3)))
    edge = cv2.dilate(((mx > 1.05 * mn) | (d == 0)).astype(np.uint8), np.ones((3, 3))) > 0
    u, v = pix[..., 0], pix[..., 1]
    inside = (u >= 1) & (u <= w - 2) & (v >= 1) & (v <= h - 2)
    ui = np.clip(np.round(u), 0, w - 1).astype(int)
    vi = np.clip(np.round(v), 0, h - 1).astype(int)
    # source depth around the sample: all four bilinear taps on the same surface as the point
    taps = np.stack([src_depth[np.clip(vi + dv, 0, h - 1), np.clip(ui + du, 0, w - 1)]
                     for dv in (-1, 0, 1) for du in (-1, 0, 1)])
    visible = np.all(np.abs(taps - z[None]) < 0.05 * z[None] + 0.05, axis=0)
    return valid & (d > 0) & ~edge & inside & visible


def test_deterministic_and_shapes():
    a = generate_sequence(frames=2, width=96, height=32, seed=5)
    b = generate_sequence(frames=2, width=96, height=32, seed=5)
    c = generate_sequence(frames=2, width=96, height=32, seed=6)
    assert a.left.shape == (2, 32, 96) and a.left.dtype == np.uint8
    assert a.depth.shape == (2, 32, 96) and a.depth.dtype == np.float32
    assert np.array_equal(a.left, b.left) and np.array_equal(a.right, b.right)
    assert np.array_equal(a.depth, b.depth) and np.array_equal(a.poses, b.poses)
    assert not np.array_equal(a.left, c.left)
    rgb = generate_sequence(frames=2, width=96, height=32, seed=5, color="rgb")
    assert rgb.left.shape == (2, 32, 96, 3)
    assert np.array_equal(rgb.depth, a.depth)             # same scene, only the colour differs


def test_trajectory_conventions(seq):
    np.testing.assert_allclose(seq.poses[0], np.eye(4), atol=1e-12)
    rel = seq.relative(1, 0)                          # T_0_1: frame 1 in frame 0's camera
    assert 0.95 < rel[2, 3] < 1.05                    # forward ~ speed (1 m / frame), z forward
    assert abs(rel[0, 3]) < 0.2 and abs(rel[1, 3]) < 0.1
    for p in seq.poses:                               # rotations stay rotations
        np.testing.assert_allclose(p[:3, :3] @ p[:3, :3].T, np.eye(3), atol=1e-9)
    # the ground is below: bottom rows see the ground at ~ h * fy / (v - cy)
    k = seq.k
    v = seq.depth.shape[1] - 1
    assert np.median(seq.depth[0, v]) == pytest.approx(1.65 * k[1, 1] / (v - k[1, 2]), rel=0.1)
    assert (seq.depth[0] == 0).mean() > 0.02         # some sky
    assert seq.depth[0][seq.depth[0] > 0].min() > 1.0


def test_temporal_warp_reproduces_frame(seq):
    """Frame k+1 warped into frame k with GT depth and GT pose reproduces frame k."""
    for k in (0, 2, 4):
        tgt = seq.left[k].astype(np.float32)
        t_src_tgt = invert_se3(seq.poses[k + 1]) @ seq.poses[k]
        warped, valid, pix, z = _warp(seq.left[k + 1], seq.depth[k], t_src_tgt, seq.k)
        mask = _good_mask(seq.depth[k], seq.depth[k + 1], pix, z, valid)
        assert mask.mean() > 0.3
        err = np.abs(warped - tgt)[mask]
        assert err.mean() < 2.0, err.mean()              # grey levels; measured 1.0-1.4
        assert np.percentile(err, 95) < 6.0
        # the texture has detail: a wrong pose (identity) gives a much larger error
        wrong, valid_w, _, _ = _warp(seq.left[k + 1], seq.depth[k], np.eye(4), seq.k)
        m2 = mask & valid_w
        assert np.abs(wrong - tgt)[m2].mean() > 8.0 * err.mean()   # measured 13-18x


def test_stereo_warp_and_disparity(seq):
    """Right image warped into the left with GT depth matches; depth agrees with disparity."""
    k = 1
    b, fx = seq.baseline, seq.k[0, 0]
    t_right_left = np.eye(4)
    t_right_left[0, 3] = -b
    warped, valid, pix, z = _warp(seq.right[k], seq.depth[k], t_right_left, seq.k)
    mask = _good_mask(seq.depth[k], seq.depth_right[k], pix, z, valid)
    err = np.abs(warped - seq.left[k].astype(np.float32))[mask]
    assert mask.mean() > 0.3 and err.mean() < 2.0
    # sampled pixels: disparity fx*b/Z moves a left pixel onto the same 3-D point in the right view
    rng = np.random.default_rng(0)
    h, w = seq.depth.shape[1:]
    vs, us = rng.integers(0, h, 400), rng.integers(0, w, 400)
    agree = n = 0
    for v, u in zip(vs, us):
        depth = seq.depth[k, v, u]
        if depth <= 0 or not mask[v, u]:
            continue
        ur = u - fx * b / depth
        n += 1
        agree += abs(seq.depth_right[k, v, int(round(ur))] - depth) < 0.03 * depth
    assert n > 100 and agree / n > 0.97
    # and an independent stereo matcher (OpenCV SGBM) finds the same depth
    from vode_ros.core.stereo_depth import sgbm_depth

    sd = sgbm_depth(seq.left[k], seq.right[k], fx, b, num_disparities=64)
    ok = (sd > 0) & (seq.depth[k] > 0)
    rel = np.abs(sd[ok] - seq.depth[k][ok]) / seq.depth[k][ok]
    assert ok.mean() > 0.5 and np.median(rel) < 0.03


def test_kitti_layout_roundtrip(tmp_path):
    from vode_ros.core.kitti import load_sequence, read_image

    s = generate_sequence(frames=3, width=120, height=40, seed=1)
    write_kitti_layout(tmp_path / "g", s)
    ks = load_sequence(tmp_path / "g")
    assert len(ks) == 3 and ks.image_size == (120, 40)
    np.testing.assert_allclose(ks.k, s.k, rtol=1e-9)
    assert ks.baseline == pytest.approx(0.54, abs=1e-9)
    np.testing.assert_allclose(ks.poses, s.poses, atol=1e-9)
    np.testing.assert_allclose(ks.times, [0.0, 0.1, 0.2])
    for i in range(3):
        assert np.array_equal(read_image(ks.left[i]), s.left[i])
        assert np.array_equal(read_image(ks.right[i]), s.right[i])
        assert np.array_equal(np.load(tmp_path / "g" / "depth" / f"{i:06d}.npy"), s.depth[i])
    meta = json.loads((tmp_path / "g" / "synthetic.json").read_text())
    assert meta["seed"] == 1 and meta["baseline"] == 0.54

    out = write_kitti_layout(tmp_path / "c", cfg=SynthConfig(frames=2, width=64, height=24, color="rgb"))
    assert (out / "image_2").is_dir() and not (out / "image_0").exists()
    kc = load_sequence(out)
    img = read_image(kc.left[0])
    assert img.shape == (24, 64, 3) and kc.baseline == pytest.approx(0.54)


def test_synth_cli(tmp_path, capsys):
    from vode_ros.cli.main import main

    assert main(["synth", str(tmp_path / "s"), "--frames", "2", "--width", "64", "--height", "24",
                 "--seed", "4", "--no-progress"]) == 0
    assert len(list((tmp_path / "s" / "image_0").glob("*.png"))) == 2
    assert "2 frames 64x24 gray" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:                 # refused while parsing, one line
        main(["synth", str(tmp_path / "t"), "--frames", "0"])
    assert refused.value.code == 2 and "--frames: must be 1 or more, not 0" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
    (tmp_path / "file").write_text("x")
    assert main(["synth", str(tmp_path / "file"), "--frames", "1"]) == 2
