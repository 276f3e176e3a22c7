"""Eigen-protocol depth metrics on hand-made arrays (exact values)."""
import numpy as np
import pytest

from vode_ros.core.depth_metrics import (
    compute_depth_metrics, errors, garg_crop_mask, mean_metrics)


def _gt(h=100, w=200, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(2.0, 35.0, size=(h, w))  # 2 * gt stays below the 80 m clamp


def test_identical_is_perfect():
    gt = _gt()
    m = compute_depth_metrics(gt, gt.copy())
    for k in ("abs_rel", "sq_rel", "rmse", "rmse_log"):
        assert m[k] == pytest.approx(0.0, abs=1e-12)
    assert m["a1"] == m["a2"] == m["a3"] == 1.0
    assert m["scale"] == pytest.approx(1.0)


def test_double_prediction_with_and_without_median_scaling():
    gt = _gt()
    pred = 2.0 * gt
    scaled = compute_depth_metrics(gt, pred, median_scaling=True)
    assert scaled["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert scaled["a1"] == 1.0
    assert scaled["scale"] == pytest.approx(0.5)
    raw = compute_depth_metrics(gt, pred, median_scaling=False)
    assert raw["abs_rel"] == pytest.approx(1.0)
    assert raw["rmse_log"] == pytest.approx(np.log(2.0))
    assert raw["a1"] == 0.0 and raw["a2"] == 0.0 and raw["a3"] == 0.0  # 1.25**3 = 1.95 < 2
    near = compute_depth_metrics(gt, 1.9 * gt, median_scaling=False)
    assert near["a2"] == 0.0 and near["a3"] == 1.0
    assert raw["scale"] == 1.0


def test_formulas_by_hand():
    gt = np.array([1.0, 2.0, 4.0])
    pred = np.array([2.0, 2.0, 2.0])
    e = errors(gt, pred)
    assert e["abs_rel"] == pytest.approx((1 / 1 + 0 + 2 / 4) / 3)
    assert e["sq_rel"] == pytest.approx((1 / 1 + 0 + 4 / 4) / 3)
    assert e["rmse"] == pytest.approx(np.sqrt((1 + 0 + 4) / 3))
    assert e["rmse_log"] == pytest.approx(np.sqrt(2 * np.log(2) ** 2 / 3))
    assert e["a1"] == pytest.approx(1 / 3) and e["a3"] == pytest.approx(1 / 3)


def test_garg_crop_mask_bounds():
    h, w = 370, 1226
    m = garg_crop_mask(h, w)
    rows = np.where(m.any(axis=1))[0]
    cols = np.where(m.any(axis=0))[0]
    assert rows[0] == int(0.40810811 * h) and rows[-1] == int(0.99189189 * h) - 1
    assert cols[0] == int(0.03594771 * w) and cols[-1] == int(0.96405229 * w) - 1
    assert m.sum() == len(rows) * len(cols)


def test_crop_excludes_errors_outside():
    h, w = 100, 200
    gt = np.full((h, w), 10.0)
    pred = gt.copy()
    crop = garg_crop_mask(h, w)
    pred[~crop] = 40.0  # wrong only outside the crop
    m = compute_depth_metrics(gt, pred, median_scaling=False, garg_crop=True)
    assert m["abs_rel"] == 0.0 and m["n_valid"] == crop.sum()
    m2 = compute_depth_metrics(gt, pred, median_scaling=False, garg_crop=False)
    assert m2["n_valid"] == h * w
    assert m2["abs_rel"] == pytest.approx(3.0 * (~crop).sum() / (h * w))


def test_depth_range_mask_and_clamp():
    gt = np.array([[0.0, 5.0, 90.0, 10.0]])
    pred = np.array([[1.0, 5.0, 1.0, 200.0]])
    m = compute_depth_metrics(gt, pred, garg_crop=False, median_scaling=False)
    assert m["n_valid"] == 2  # 0 and 90 m dropped
    # 200 m clamped to 80 m: |10 - 80| / 10 = 7
    assert m["abs_rel"] == pytest.approx((0 + 7.0) / 2)


def test_prediction_resized_to_gt():
    gt = np.full((40, 80), 7.0)
    pred = np.full((20, 40), 3.5)
    m = compute_depth_metrics(gt, pred, garg_crop=False, median_scaling=False)
    assert m["abs_rel"] == pytest.approx(0.5)
    m = compute_depth_metrics(gt, pred, garg_crop=False)
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-7) and m["scale"] == pytest.approx(2.0)


def test_mean_metrics_and_scale_stats():
    gt = _gt()
    rows = [compute_depth_metrics(gt, gt * f) for f in (1.0, 2.0, 4.0)]
    rows.append(compute_depth_metrics(np.zeros_like(gt), gt))  # no valid pixel: skipped
    assert rows[-1]["n_valid"] == 0
    mm = mean_metrics(rows)
    assert mm["n_images"] == 3 and mm["n_skipped"] == 1
    assert mm["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    scales = np.array([1.0, 0.5, 0.25])
    assert mm["scale_mean"] == pytest.approx(scales.mean())
    assert mm["scale_std"] == pytest.approx(scales.std())
    assert mm["scale_median"] == pytest.approx(0.5)
    # per-image (not per-pixel) averaging
    a = compute_depth_metrics(gt, gt * 2, median_scaling=False)
    b = compute_depth_metrics(gt[:10, :10], gt[:10, :10], garg_crop=False, median_scaling=False)
    assert mean_metrics([a, b])["abs_rel"] == pytest.approx(0.5)
