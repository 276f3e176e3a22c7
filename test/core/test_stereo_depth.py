"""SGBM pseudo ground truth: exact synthetic disparity and a sanity check on the KITTI clip."""
from pathlib import Path

import cv2
import numpy as np
import pytest

from vode_ros.core.depth_metrics import garg_crop_mask
from vode_ros.core.stereo_depth import sgbm_depth, sgbm_disparity

CLIP = Path(__file__).resolve().parents[2] / "data" / "kitti_odometry_06_0000-0050"


def _synthetic_pair(h=120, w=256, d=16, seed=0):
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 256, (h, w + d)).astype(np.uint8), (3, 3), 0)
    left = np.ascontiguousarray(base[:, :w])
    right = np.ascontiguousarray(base[:, d:w + d])  # right[x] = left[x + d]: disparity d
    return left, right


@pytest.mark.parametrize("d", [8, 16, 23])
def test_constant_disparity_gives_exact_depth(d):
    fx, b, ndisp = 500.0, 0.5, 64
    left, right = _synthetic_pair(d=d)
    disp = sgbm_disparity(left, right, num_disparities=ndisp)
    inner = (slice(8, -8), slice(ndisp + 8, -8))
    np.testing.assert_allclose(np.median(disp[inner]), d, atol=1e-6)
    depth = sgbm_depth(left, right, fx, b, num_disparities=ndisp)[inner]
    assert (depth > 0).mean() > 0.97
    np.testing.assert_allclose(depth[depth > 0], fx * b / d, rtol=0.01)
    # the left border without a full disparity range is invalid
    assert (sgbm_depth(left, right, fx, b, num_disparities=ndisp)[:, : ndisp - 1] == 0).all()


def test_depth_range_and_input_checks():
    left, right = _synthetic_pair(d=16)
    # fx*b/16 = 15.6 m > max_depth -> everything invalid
    assert (sgbm_depth(left, right, 500.0, 0.5, num_disparities=64, max_depth=10.0) == 0).all()
    with pytest.raises(ValueError):
        sgbm_depth(left.astype(np.float32), right, 500.0, 0.5)
    with pytest.raises(ValueError):
        sgbm_depth(left, right[:, :-1], 500.0, 0.5)


@pytest.mark.skipif(not CLIP.is_dir(), reason="KITTI clip not present")
def test_kitti_clip_plausible():
    from vode_ros.core.kitti import load_sequence, read_image

    seq = load_sequence(CLIP)
    fx = seq.k[0, 0]
    for i in (0, 50):
        depth = sgbm_depth(read_image(seq.left[i]), read_image(seq.right[i]), fx, seq.baseline)
        h, w = depth.shape
        assert depth.dtype == np.float32 and (w, h) == seq.image_size
        valid = depth > 0
        assert valid[garg_crop_mask(h, w)].mean() > 0.5
        assert depth[valid].min() >= fx * seq.baseline / 128 - 1e-3 and depth.max() <= 80.0
        region = depth[int(0.6 * h):int(0.95 * h), int(0.3 * w):int(0.7 * w)]
        assert 3.0 < np.median(region[region > 0]) < 40.0
        # road in front of the car: depth falls towards the bottom like a ground plane,
        # d = fy * cam_height / (v - cy), with a camera height of roughly 1.65 m
        cy, fy = seq.k[1, 2], seq.k[1, 1]
        heights = []
        for v in (280, 320, 360):
            row = depth[v - 2:v + 3, 500:700]
            heights.append(np.median(row[row > 0]) * (v - cy) / fy)
        assert all(1.2 < hh < 2.0 for hh in heights), heights
