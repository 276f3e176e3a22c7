"""The run time trusts a model's metres only on cameras and domains like its training ones."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vode_ros.runtime.metric_trust import choose_scale_source, horizontal_fov_deg, model_knows_camera

DRIVING = {"vode.metric_scale": "true", "vode.train_domain": "driving", "vode.train_hfov_deg": json.dumps([81.0, 82.0])}


def test_field_of_view_of_kitti_and_tum():
    k_kitti = np.array([[718.856, 0, 607.2], [0, 718.856, 185.2], [0, 0, 1]])
    assert horizontal_fov_deg(k_kitti, 1241) == pytest.approx(81.6, abs=0.1)
    k_tum = np.array([[258.65, 0, 159.05], [0, 258.25, 127.4], [0, 0, 1]])
    assert horizontal_fov_deg(k_tum, 320) == pytest.approx(63.5, abs=0.1)


@pytest.mark.parametrize("hfov, domain, trusted", [
    (81.6, "", True),            # a KITTI-like camera, domain not said
    (81.6, "driving", True),
    (81.6, "indoor", False),     # same optics, other world: the sizes it learned do not hold
    (63.5, "", False),           # TUM's Kinect: a field of view it never saw
    (55.0, "driving", False),
])
def test_model_knows_camera(hfov, domain, trusted):
    ok, why = model_knows_camera(DRIVING, hfov, domain)
    assert ok is trusted and why


def test_a_model_trained_on_several_domains_is_trusted_in_each():
    mixed = {**DRIVING, "vode.train_domain": "driving,indoor", "vode.train_hfov_deg": json.dumps([81.0, 84.0])}
    assert model_knows_camera(mixed, 83.7, "indoor")[0] is True
    assert model_knows_camera(mixed, 81.6, "driving")[0] is True
    ok, why = model_knows_camera(mixed, 81.6, "underwater")
    assert ok is False and "driving,indoor" in why


def test_not_metric_and_unreadable_metadata():
    assert model_knows_camera({"vode.metric_scale": "false"}, 80.0)[0] is False
    assert model_knows_camera({**DRIVING, "vode.train_hfov_deg": "[oops"}, 80.0)[0] is False
    assert model_knows_camera({"vode.metric_scale": "true"}, 80.0)[0] is True      # older export, no camera


def test_auto_falls_back_in_order():
    seen = choose_scale_source("auto", DRIVING, 81.6)
    assert (seen.source, seen.trusted) == ("model", True)
    assert choose_scale_source("auto", DRIVING, 63.5, have_stereo=True).source == "stereo"
    assert choose_scale_source("auto", DRIVING, 63.5, camera_height=1.2).source == "camera_height"
    none = choose_scale_source("auto", DRIVING, 63.5)
    assert none.source == "none" and "relative" in none.reason and "field of view" in none.reason


def test_explicit_mode_is_kept_with_the_check_as_reason():
    d = choose_scale_source("model", DRIVING, 63.5)
    assert d.source == "model" and d.trusted is False and "outside" in d.reason


# -- the scene itself (runtime.metric_trust.SceneMonitor / scene_problem) ---------------------------
from vode_ros.runtime.metric_trust import SceneEvidence, SceneMonitor, scene_problem  # noqa: E402

RANGE = {**DRIVING, "vode.train_depth_range": json.dumps({"p5": 6.2, "p50": 12.8, "p95": 43.8, "spread": 7.1})}


def test_a_stereo_pair_that_disagrees_with_the_model_overrules_the_field_of_view():
    off = SceneEvidence(frames=10, spread=6.0, stereo_ratio=1 / 5.6, stereo_frames=10)   # model 5.6x too far
    d = choose_scale_source("auto", RANGE, 81.6, scene=off)
    assert d.source == "none" and not d.trusted and "x5.60 off" in d.reason
    ok = SceneEvidence(frames=10, spread=6.0, stereo_ratio=1.1, stereo_frames=10)
    assert choose_scale_source("auto", RANGE, 81.6, scene=ok).source == "model"
    assert scene_problem(RANGE, SceneEvidence(frames=2, stereo_ratio=0.1, stereo_frames=2)) is None   # too few yet


def test_mode_stereo_always_takes_the_pair_and_keeps_the_model_check_as_reason():
    d = choose_scale_source("auto", RANGE, 81.6, have_stereo=True)
    assert d.source == "stereo" and "until a right image arrives" in d.reason and "metric model trained" in d.reason


def test_depth_spread_against_the_training_range():
    flat = SceneEvidence(frames=10, spread=3.0)
    d = choose_scale_source("auto", RANGE, 81.6, scene=flat)
    assert d.source == "none" and "x3.0" in d.reason and "x7.1" in d.reason
    assert choose_scale_source("auto", DRIVING, 81.6, scene=flat).source == "model"   # no range recorded: FOV alone
    mon = SceneMonitor()
    for _ in range(6):
        mon.observe(np.geomspace(2.0, 6.0, 400).reshape(20, 20).astype(np.float32), stereo_ratio=None)
    ev = mon.evidence()
    assert ev.frames == 6 and ev.spread == pytest.approx(3.0 ** 0.9, rel=0.02)   # (6 / 2) over 90 % of a log range
    assert np.isnan(ev.stereo_ratio)
