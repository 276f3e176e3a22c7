"""`vode eval depth` against depth_0/*.png ground truth: the three scores, the domain cap, the scale."""
from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from vode_ros.core import depth_metrics as dm
from vode_ros.core.depth_truth import choose_gt
from vode_ros.core.kitti import load_sequence, read_depth
from vode_ros.runtime import inference
from vode_ros.tools import evaluate as run_eval


def _indoor_folder(root, frames: int = 4, size=(64, 48)):
    """A tiny indoor-like KITTI-layout folder with a slanted-plane depth_0/ in KITTI convention."""
    w, h = size
    for sub in ("image_0", "depth_0"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    depth = np.tile(np.linspace(1.0, 4.0, w, dtype=np.float32), (h, 1))   # 1..4 m, a wall at an angle
    depth[:5] = 0                                                            # rows without a reading
    for i in range(frames):
        cv2.imwrite(str(root / "image_0" / f"{i:06d}.jpg"), rng.integers(0, 255, (h, w), dtype=np.uint8))
        cv2.imwrite(str(root / "depth_0" / f"{i:06d}.png"), np.round(depth * 256).astype(np.uint16))
    (root / "calib.txt").write_text("P0: " + " ".join(map(str, [50.0, 0, w / 2, 0, 0, 50.0, h / 2, 0, 0, 0, 1, 0])))
    (root / "times.txt").write_text("\n".join(f"{0.1 * i:.1f}" for i in range(frames)))
    return root, depth


def test_png_truth_is_read_in_metres(tmp_path):
    root, depth = _indoor_folder(tmp_path / "desk")
    seq = load_sequence(root)
    assert choose_gt(seq) == "png" and len(seq.depth) == 4
    np.testing.assert_allclose(read_depth(seq.depth[0]), depth, atol=1 / 256)


def test_scores_beside_constant_and_domain_cap(tmp_path, monkeypatch):
    root, depth = _indoor_folder(tmp_path / "desk")

    class _Meta:
        metric_scale, method, width, height, color, raw = True, "oracle", 64, 48, "gray", {}

    class _Model:
        meta, path, provider = _Meta(), "oracle.onnx", "none"

        def preprocess(self, img, encoding):
            return img

        def intrinsics_for_net(self, k, size):
            return k

    class _TwiceAsFar:                      # structure right, scale 2x: median-scaled exact, metric 100 % off
        def __init__(self, model):
            pass

        def __call__(self, x, fx=None):
            return np.where(depth > 0, depth, 1.0) * 2.0

    monkeypatch.setattr(run_eval, "_load_model", lambda model_dir, kind: _Model())
    monkeypatch.setattr(inference, "DepthNet", _TwiceAsFar)
    r = run_eval.evaluate_depth(root, progress=False, plots=tmp_path / "plots")
    assert r["gt_source"] == "png" and r["settings"]["max_depth"] == 10.0      # indoor cap
    assert r["scores"]["median_scaled"]["abs_rel"] == pytest.approx(0.0, abs=1e-3)
    assert r["scores"]["metric"]["abs_rel"] == pytest.approx(1.0, abs=1e-3)
    assert r["metrics"] == r["scores"]["metric"]                               # metric model: headline as is
    assert r["metric_scale"]["pred_over_true"] == pytest.approx(2.0, rel=1e-3)
    # the constant baseline is the GT median on the same pixels
    valid = depth[depth > 0]
    expect = dm.errors(valid, np.full_like(valid, np.median(valid)))["abs_rel"]
    assert r["scores"]["constant"]["abs_rel"] == pytest.approx(expect, rel=1e-4)
    text = run_eval.format_depth(r)
    assert "constant (GT median)" in text and "predicted / true scale: 2.000" in text
    # Where the error sits: indoor depth ranges, every populated group 2x too far (metric headline).
    ranges = [g for g in r["breakdown"]["ranges"] if g["n_pixels"]]
    assert [g["group"] for g in ranges] == ["1-2 m", "2-4 m", "4-10 m"]     # the wall: 1..4 m
    assert all(g["pred_over_true"] == pytest.approx(2.0, rel=1e-3) for g in ranges + r["breakdown"]["bands"][1:])
    assert r["breakdown"]["bands"][0]["n_pixels"] > 0
    assert "Abs Rel by ground-truth depth" in text
    assert (tmp_path / "plots" / "depth_error_breakdown.png").stat().st_size > 0


def test_outdoor_cap_and_missing_truth(tmp_path):
    assert run_eval.domain_cap([np.full((4, 4), 35.0, np.float32)]) == 80.0
    assert run_eval.domain_cap([np.full((4, 4), 3.0, np.float32)]) == 10.0
    root, _ = _indoor_folder(tmp_path / "desk")
    shutil.rmtree(root / "depth_0")
    with pytest.raises(run_eval.EvalInputError, match="depth_0"):
        run_eval.evaluate_depth(root, progress=False, model_dir=tmp_path)
