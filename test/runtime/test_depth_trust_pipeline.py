"""The depth pipeline's scale a user can trust (no ROS): a scene unlike the training footage is not
given the model's metres even through a driving field of view, and in mode stereo the published
depth takes the pair's scale (fused with SGBM, with a confidence) even from a model whose metres
are 5x wrong."""
from __future__ import annotations

import numpy as np
import pytest

from trust_helpers import driving_models, room_image
from vode_ros.core.kitti import load_sequence, read_image

pytestmark = [pytest.mark.needs_models]

def _pipeline(model_dir, have_stereo=False):
    from vode_ros.runtime.depth_pipeline import DepthPipeline, DepthSettings
    from vode_ros.runtime.inference import OnnxModel

    model = OnnxModel(model_dir / "depth.onnx", ["CPUExecutionProvider"], expected_kind="depth")
    return DepthPipeline(model, DepthSettings("auto", "", have_stereo=have_stereo))


def test_an_indoor_looking_scene_with_a_driving_field_of_view_is_not_trusted(models_dir, tmp_path):
    from vode_ros.runtime.metric_trust import SCENE_FRAMES, horizontal_fov_deg

    models = driving_models(models_dir, tmp_path)
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
    models = driving_models(models_dir, tmp_path, **{"vode.train_fx": f"{fx_net / 5:.3f}"})
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
