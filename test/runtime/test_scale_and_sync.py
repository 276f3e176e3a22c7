"""Scale sources and stereo pairing, without ROS."""
from __future__ import annotations

import numpy as np
import pytest

from vode_ros.core.stereo_depth import pair_depth
from vode_ros.runtime.scale import ScaleEstimator, ground_height, median_ratio
from vode_ros.runtime.stereo_sync import StereoPairer


def _ground_depth(h=128, w=416, f=200.0, height=1.65):
    """Exact z-depth of a flat ground plane `height` below a forward-looking camera."""
    k = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
    v = np.arange(h)[:, None] + np.zeros((1, w))
    dv = v - k[1, 2]
    depth = np.where(dv > 1, height * f / np.maximum(dv, 1e-6), 0.0)   # below the horizon only
    return depth.astype(np.float32), k


def test_ground_height_is_exact_on_a_plane():
    depth, k = _ground_depth(height=1.65)
    assert ground_height(depth, k) == pytest.approx(1.65, rel=1e-3)
    assert ground_height(depth * 0.5, k) == pytest.approx(0.825, rel=1e-3)


def test_ground_height_on_a_full_resolution_depth_map():
    """A KITTI-sized map: about 110,000 ground points in the fitted region. The refit must not build
    anything N x N (a full SVD of the points would ask for about 100 GB here)."""
    depth, k = _ground_depth(h=376, w=1241, f=718.0, height=1.65)
    assert ground_height(depth, k) == pytest.approx(1.65, rel=1e-3)


def test_camera_height_scale_recovers_the_factor():
    depth, k = _ground_depth(height=1.65)
    est = ScaleEstimator("camera_height", camera_height=1.65, smoothing=0.0)
    assert est.observe_depth(depth / 3.0, k) == pytest.approx(3.0, rel=1e-3)


def test_stereo_depth_and_ratio_on_a_shifted_texture():
    rng = np.random.default_rng(0)
    left = (rng.random((120, 300)) * 255).astype(np.uint8)
    d = 12
    right = np.zeros_like(left)
    right[:, :-d] = left[:, d:]            # constant disparity d
    depth = pair_depth(left, right, fx=200.0, baseline=0.5)          # the run time's preset: one SGBM
    valid = depth > 0
    assert valid.mean() > 0.5
    assert np.median(depth[valid]) == pytest.approx(200 * 0.5 / d, rel=0.02)
    net = np.full_like(depth, 200 * 0.5 / d / 2.0)   # a net that is 2x too near
    assert median_ratio(depth, net) == pytest.approx(2.0, rel=0.02)


def test_scale_estimator_modes():
    with pytest.raises(ValueError, match="scale_mode 'bogus' unknown"):
        ScaleEstimator("bogus")
    start = ScaleEstimator("stereo_start", warmup=3, smoothing=0.0)
    for r in (2.0, 2.0, 2.0, 5.0):
        start.observe(r)
    assert start.scale == 2.0 and start.frozen
    model = ScaleEstimator("model")
    assert model.observe(3.0) == 1.0


def test_stereo_pairer_pairs_within_slop_and_counts_the_rest():
    p = StereoPairer(slop=0.01)
    assert p.add_left(1.00, "L1") is None
    assert p.add_right(1.005, "R1") == ("L1", "R1")
    assert p.add_left(2.00, "L2") is None
    assert p.add_right(2.50, "R2") is None      # L2 has no partner: dropped
    assert p.unpaired == 1
    assert p.add_left(2.501, "L3") == ("L3", "R2")


def test_relative_scale_sources_are_recognised_behind_the_nodes_prefixes():
    from vode_ros.runtime.scale import is_relative

    none = ScaleEstimator("none").source()
    assert is_relative(none) and is_relative(f"auto: {none}; outside the training cameras")
    assert is_relative(f"depth node: auto: {none}") and is_relative("none (relative; the model is not metric)")
    for mode in ("model", "stereo", "camera_height", "stereo_start"):
        assert not is_relative(ScaleEstimator(mode).source())
