"""The left-right flip augmentation keeps a snippet's geometry exact (K, stereo roles, motions)."""
from __future__ import annotations

import torch

from vode_training.data.augment import mirror_motion, mirror_snippet
from vode_training.data.depth_hints import stereo_hint
from vode_training.data.kitti_snippets import KittiSnippets
from vode_training.geometry import inverse_warp, stereo_transform
from vode_training.losses.photometric import photometric_error


def _warp_error(src: torch.Tensor, tgt: torch.Tensor, depth: torch.Tensor, t: torch.Tensor, k: torch.Tensor) -> float:
    """Mean photometric error of src warped into tgt where the depth is known: (C,H,W),(C,H,W),(1,H,W),(4,4),(3,3)."""
    has = depth > 0
    warped, valid = inverse_warp(src[None], torch.where(has, depth, torch.ones_like(depth))[None], t[None], k[None])
    err = photometric_error(warped, tgt[None])[0]
    mask = has & (valid[0] > 0)
    return float(err[mask].mean())


def test_mirrored_stereo_snippet_warps_as_well_as_the_original(kitti_dir):
    ds = KittiSnippets(kitti_dir, stereo=True, offsets=(-1, 1))
    it = ds[10]
    b = float(it["baseline"])
    tgt, src, k, right, right_src = mirror_snippet(it["tgt"], it["src"], it["K"], it["right"], it["right_src"])
    motions = mirror_motion(it["gt_src_tgt"], b, swap=True)
    hint = stereo_hint(tgt, right, k, b)                      # the mirrored pair is a standard rectified pair
    assert (hint > 0).float().mean() > 0.4
    stereo_err = _warp_error(right, tgt, hint, stereo_transform(b)[0], k)
    temporal_err = _warp_error(src[0], tgt, hint, motions[0], k)
    unmirrored_err = _warp_error(src[0], tgt, hint, it["gt_src_tgt"][0], k)
    orig_hint = stereo_hint(it["tgt"], it["right"], it["K"], b)
    orig_err = _warp_error(it["src"][0], it["tgt"], orig_hint, it["gt_src_tgt"][0], it["K"])
    assert stereo_err < 0.15
    assert temporal_err < 1.3 * orig_err + 0.01               # as good as the unflipped snippet
    assert unmirrored_err > 1.3 * temporal_err                # and the motion had to be mirrored


def test_mirroring_twice_gives_the_snippet_back():
    g = torch.Generator().manual_seed(0)
    tgt, src = torch.rand(1, 8, 12, generator=g), torch.rand(2, 1, 8, 12, generator=g)
    right, right_src = torch.rand(1, 8, 12, generator=g), torch.rand(2, 1, 8, 12, generator=g)
    k = torch.tensor([[10.0, 0, 4.3], [0, 10.0, 3.0], [0, 0, 1]])
    once = mirror_snippet(tgt, src, k, right, right_src)
    twice = mirror_snippet(*once)
    for a, b in zip(twice, (tgt, src, k, right, right_src)):
        assert torch.equal(a, b)
    t = torch.eye(4)
    t[:3, 3] = torch.tensor([0.3, -0.1, 1.0])
    for swap in (False, True):
        assert torch.allclose(mirror_motion(mirror_motion(t, 0.5, swap), 0.5, swap), t, atol=1e-6)
    assert mirror_motion(t)[0, 3] == -0.3 and mirror_motion(t)[2, 3] == 1.0


def test_dataset_flips_about_half_the_items_and_mirrors_k(kitti_dir):
    ds = KittiSnippets(kitti_dir, stereo=True, augment=True, flip=True, max_frames=12)
    plain = KittiSnippets(kitti_dir, stereo=True, augment=False, max_frames=12)
    torch.manual_seed(0)
    cx, width = float(plain[0]["K"][0, 2]), plain[0]["tgt"].shape[-1]
    flipped = [abs(float(ds[i % len(ds)]["K"][0, 2]) - (width - 1 - cx)) < 1e-4 for i in range(40)]
    assert 8 <= sum(flipped) <= 32
