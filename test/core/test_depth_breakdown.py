"""Depth error by image band and by depth range."""
from __future__ import annotations

import numpy as np
import pytest

from vode_ros.core.depth_breakdown import DepthErrorBreakdown, default_depth_edges
from vode_ros.core.depth_metrics import compute_depth_metrics


def _scene(h: int = 40, w: int = 60) -> np.ndarray:
    """GT rising from 3 m (bottom rows) to 30 m (top rows)."""
    return np.repeat(np.linspace(30.0, 3.0, h)[:, None], w, axis=1)


def test_error_lands_in_the_band_and_range_where_it_is():
    gt = _scene()
    pred = gt.copy()
    pred[:10] *= 1.5                         # only the top quarter is 50 % too far
    b = DepthErrorBreakdown(max_depth=80.0, n_bands=4)
    b.add(gt, pred)
    res = b.result()
    bands = res["bands"]
    assert [r["group"] for r in bands] == ["rows 1/4 (top)", "rows 2/4", "rows 3/4", "rows 4/4 (bottom)"]
    assert bands[0]["abs_rel"] == pytest.approx(0.5)
    assert bands[0]["pred_over_true"] == pytest.approx(1.5)
    for r in bands[1:]:
        assert r["abs_rel"] == pytest.approx(0.0, abs=1e-12) and r["pred_over_true"] == pytest.approx(1.0)
    assert sum(r["n_pixels"] for r in bands) == gt.size
    # The top quarter's GT lies above 20 m: only the 20-40 m range is off.
    ranges = {r["group"]: r for r in res["ranges"]}
    assert ranges["0-5 m"]["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert ranges["20-40 m"]["pred_over_true"] > 1.2
    assert ranges["40-80 m"]["n_pixels"] == 0 and np.isnan(ranges["40-80 m"]["abs_rel"])


def test_pooled_abs_rel_matches_the_metrics_on_the_same_pixels():
    rng = np.random.default_rng(0)
    gt = _scene()
    gt[rng.random(gt.shape) < 0.3] = 0.0     # holes, as SGBM leaves
    pred = gt * rng.uniform(0.7, 1.4, gt.shape) + (gt == 0) * 5.0
    small = pred[::2, ::2]                   # network resolution: resized like the metrics
    m = compute_depth_metrics(gt, small, max_depth=80.0, garg_crop=False, median_scaling=True)
    b = DepthErrorBreakdown(max_depth=80.0, n_bands=1, depth_edges=(0.0, 80.0))
    b.add(gt, small, scale=m["scale"])
    row = b.result()["bands"][0]
    assert row["n_pixels"] == m["n_valid"]
    assert row["abs_rel"] == pytest.approx(m["abs_rel"], rel=1e-9)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="n_bands"):
        DepthErrorBreakdown(n_bands=0)
    with pytest.raises(ValueError, match="depth_edges"):
        DepthErrorBreakdown(depth_edges=(10.0, 5.0))


def test_indoor_ranges_follow_the_cap():
    assert default_depth_edges(80.0)[-1] == 80.0
    assert default_depth_edges(10.0)[-1] == 10.0
