"""The depth pipeline's scale a user can trust (no ROS): a scene unlike the training footage is not
given the model's metres even through a driving field of view, and in mode stereo the published
depth takes the pair's scale (fused with SGBM, with a confidence) even from a model whose metres
are 5x wrong."""
from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest

from vode_ros.core.kitti import load_sequence, read_image

pytestmark = [pytest.mark.needs_models]

# What `vode export` records (training/depth_range.py) for the shipped model on its training frames
# (KITTI 00 + 07): the spread p95/p5 of its depth, about 7x on roads.
TRAIN_RANGE = {"p5": 6.165, "p50": 12.848, "p95": 43.77, "spread": 7.147, "frames": 16}


def _models(src, dst, **props):
    for name in ("depth.onnx", "pose.onnx"):
        model = onnx.load(str(src / name))
        meta = {p.key: p.value for p in model.metadata_props}
        meta.update({"vode.metric_scale": "true", "vode.train_domain": "driving",
                     "vode.train_hfov_deg": json.dumps([81.6, 81.9]),
                     "vode.train_depth_range": json.dumps(TRAIN_RANGE)}, **props)
        del model.metadata_props[:]
        for k, v in meta.items():
            e = model.metadata_props.add()
            e.key, e.value = k, v
        onnx.save(model, str(dst / name))
    return dst


def room_image(width: int = 640, height: int = 480, hfov_deg: float = 81.7):
    """An indoor-looking scene: a textured room (a wall at 3 m, side walls, floor, ceiling) seen by a
    camera with a driving camera's field of view -> (grey uint8 image, K, true depth)."""
    fx = width / (2 * math.tan(math.radians(hfov_deg / 2)))
    k = np.array([[fx, 0, width / 2], [0, fx, height / 2], [0, 0, 1.0]])
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    x, y = (u - k[0, 2]) / fx, (v - k[1, 2]) / fx
    hits = [np.full_like(x, 3.0)]
    for plane, coord in ((2.0, x), (-2.0, x), (1.0, y), (-1.5, y)):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = plane / coord
        t[(t <= 0) | ~np.isfinite(t)] = np.inf
        hits.append(t)
    z = np.min(np.stack(hits), axis=0)
    tex = 0.5 + 0.2 * np.sin(7 * x * z + 3 * y * z) + 0.15 * np.sin(11 * y * z - 5 * z) + 0.1 * np.cos(13 * z + 2 * x * z)
    return np.clip(tex * 255, 0, 255).astype(np.uint8), k, z


def _pipeline(model_dir, have_stereo=False):
    from vode_ros.runtime.depth_pipeline import DepthPipeline, DepthSettings
    from vode_ros.runtime.inference import OnnxModel

    model = OnnxModel(model_dir / "depth.onnx", ["CPUExecutionProvider"], expected_kind="depth")
    return DepthPipeline(model, DepthSettings("auto", "", have_stereo=have_stereo))


def test_an_indoor_looking_scene_with_a_driving_field_of_view_is_not_trusted(models_dir, tmp_path):
    from vode_ros.runtime.metric_trust import SCENE_FRAMES, horizontal_fov_deg

    models = _models(models_dir, tmp_path)
    img, k, _ = room_image()
    assert horizontal_fov_deg(k, img.shape[1]) == pytest.approx(81.7, abs=0.1)
    pipe = _pipeline(models)
    first = pipe.step(img, "mono8", 0, k)
    assert pipe.decision.source == "model"           # the field of view alone would trust it ...
    notes = []
    for i in range(1, SCENE_FRAMES + 1):
        notes += pipe.step(img, "mono8", i * 100_000_000, k).notes
    d = pipe.decision
    assert d.source == "none" and not d.trusted, d.reason       # ... the scene does not
    assert "not the kind of scene" in d.reason and "x7.1" in d.reason
    assert any("not the kind of scene" in msg for level, msg in notes if level == "warning")
    assert "not the kind of scene" in pipe.scale_info()[0]
    assert first.confidence is None
    # The demo clip's road through the same model: trusted.
    seq = load_sequence(models_dir.parent / "data" / "kitti_odometry_06_0000-0050", max_frames=SCENE_FRAMES + 1)
    road = _pipeline(models)
    for i, path in enumerate(seq.left):
        road.step(read_image(path), "mono8", i * 100_000_000, seq.k)
    assert road.decision.source == "model" and road.decision.trusted, road.decision.reason


@pytest.mark.needs_stereo_data
def test_mode_stereo_publishes_stereo_scaled_fused_depth_with_a_model_whose_metres_are_wrong(models_dir, tmp_path,
                                                                                         kitti_dir):
    import cv2

    from vode_ros.core.stereo_depth import sgbm_depth

    seq = load_sequence(kitti_dir, max_frames=6)
    fx_net = 707.0912 * 416 / 1226
    # vode.train_fx 5x smaller than the camera's: the model's "metres" come out 5x too far.
    models = _models(models_dir, tmp_path, **{"vode.train_fx": f"{fx_net / 5:.3f}"})
    pipe = _pipeline(models, have_stereo=True)
    left0 = read_image(seq.left[0])
    alone = pipe.step(left0, "mono8", 0, seq.k)      # no right image yet: the model's own metres
    assert pipe.decision.source == "stereo" and alone.confidence is None
    ratios = []
    for i in range(1, len(seq)):
        left, right = read_image(seq.left[i]), read_image(seq.right[i])
        out = pipe.step(left, "mono8", i * 100_000_000, seq.k, right=right, baseline=seq.baseline)
        truth = sgbm_depth(left, right, float(seq.k[0, 0]), seq.baseline)        # full-resolution pseudo-GT
        pub = cv2.resize(out.depth, truth.shape[::-1], interpolation=cv2.INTER_NEAREST)
        ok = (truth > 0) & (truth < 40) & (pub > 0)
        ratios.append(float(np.median(pub[ok] / truth[ok])))
        assert out.confidence is not None and out.confidence.shape == out.depth.shape
        assert 0.0 <= out.confidence.min() and out.confidence.max() <= 1.0 and out.confidence.mean() > 0.2
    own = cv2.resize(alone.depth, truth.shape[::-1], interpolation=cv2.INTER_NEAREST)
    assert np.median(own[ok] / truth[ok]) > 3.0                      # the model's metres: ~5x too far
    assert np.median(ratios) == pytest.approx(1.0, abs=0.1), ratios  # published: the pair's metres
    assert "stereo" in pipe.scale_info()[0] and pipe.scaler.scale < 0.3
