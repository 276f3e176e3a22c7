"""The pose net only where it is in its domain: its translation is used on cameras like its training
cameras; off them (field of view, domain) hybrid takes at most its rotation, and the pipeline says so."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vode_ros.runtime.odometry_pipeline import OdometryPipeline, OdometrySettings
from vode_ros.runtime.pose.config import PoseEstimatorConfig
from vode_ros.runtime.pose.net_domain import NetDomainGate, pose_net_trust

DRIVING = {"vode.metric_scale": "true", "vode.train_domain": "driving", "vode.train_hfov_deg": json.dumps([81.6, 81.9])}


def k_for_hfov(hfov_deg: float, width: int = 416, height: int = 128) -> np.ndarray:
    fx = width / 2 / np.tan(np.radians(hfov_deg) / 2)
    return np.array([[fx, 0, (width - 1) / 2], [0, fx, (height - 1) / 2], [0, 0, 1]])


def test_trust_follows_field_of_view_and_domain():
    assert pose_net_trust(DRIVING, k_for_hfov(81.7), 416).translation
    off = pose_net_trust(DRIVING, k_for_hfov(62.0), 416)                     # a Kinect's field of view
    assert not off.translation and "translation is not used" in off.reason and "62 deg" in off.reason
    assert not pose_net_trust(DRIVING, k_for_hfov(81.7), 416, domain="indoor").translation
    assert not pose_net_trust({"vode.metric_scale": "false"}, k_for_hfov(81.7), 416).translation


def test_rotation_only_keeps_the_rotation_and_the_recent_speed():
    net = np.eye(4)
    net[:3, :3] = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])
    net[:3, 3] = [0.1, 0.0, 1.2]                          # a driving-sized step
    last = np.eye(4)
    last[:3, 3] = [0.0, 0.0, 0.05]
    out = NetDomainGate.rotation_only(net, (last, 0.1), 0.3)
    np.testing.assert_allclose(out[:3, :3], net[:3, :3])
    np.testing.assert_allclose(out[:3, 3], [0.0, 0.0, 0.15])
    assert not NetDomainGate.rotation_only(net, None, 0.3)[:3, 3].any()


@pytest.mark.needs_models
@pytest.mark.parametrize("hfov, used", [(81.7, True), (55.0, False)])
def test_an_off_domain_pose_net_gives_no_translation(models_dir, hfov, used):
    """Textureless frames: hybrid falls back to the pose net every frame. On a camera like the
    driving net's, the motion is the net's; on a narrower (indoor) one, none of its translation."""
    from vode_ros.runtime.inference import OnnxModel

    model = OnnxModel(models_dir / "pose.onnx", expected_kind="pose")
    k = k_for_hfov(hfov, 416, 128)
    pipe = OdometryPipeline(model, OdometrySettings(PoseEstimatorConfig(pose_source="hybrid"), geometry_depth="given"))
    rng = np.random.default_rng(0)
    steps = []
    for i in range(4):
        img = np.full((128, 416), 90 + 10 * i, np.uint8) + rng.integers(0, 2, (128, 416), dtype=np.uint8)
        steps.append(pipe.step(img, "mono8", int(i * 1e8), k, depth=np.full((128, 416), 5.0, np.float32)))
    moved = [float(np.linalg.norm(s.estimate.t_prev_cur[:3, 3])) for s in steps[1:]]
    assert all(s.estimate.source == "fallback" for s in steps[1:])
    notes = [m for s in steps for r, m in s.notes if r == "pose_net_domain"]
    if used:
        assert min(moved) > 1e-3 and not notes and pipe.net_gate.trust.translation
    else:
        assert max(moved) == 0.0                          # no constant velocity known: none at all
        assert len(notes) == 1 and "translation is not used" in notes[0]
