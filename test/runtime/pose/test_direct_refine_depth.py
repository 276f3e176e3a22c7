"""Direct refinement with the depth a run time really has: holes (0, NaN, inf) and far values keep
no part, the translation keeps the depth's metric scale, and the pixel selection that makes it
fast converges like the dense solver."""
from __future__ import annotations

import numpy as np
import pytest

from vode_ros.core.geometry import invert_se3
from vode_ros.runtime.direct_refine import refine_motion
from vode_training.data.synthetic import generate_sequence


@pytest.fixture(scope="module")
def scene():
    seq = generate_sequence(frames=3, width=416, height=128, seed=1)
    return {"prev": seq.left[1] / 255.0, "cur": seq.left[2] / 255.0, "depth": seq.depth[1].copy(),
            "k": seq.k, "T_prev_cur": seq.relative(2, 1)}


def _short(t: np.ndarray, factor: float) -> np.ndarray:
    out = t.copy()
    out[:3, 3] *= factor
    return out


@pytest.mark.parametrize("max_points", [None, 3000])
def test_holes_in_depth_keep_the_metric_scale(scene, max_points):
    depth = scene["depth"].copy()                       # sky is 0 here: invalid, not "at 0 m"
    depth[:, :40] = np.nan
    depth[100:, 200:260] = np.inf
    t_true = scene["T_prev_cur"]
    t_net = _short(t_true, 0.6)                        # a net that has the scale 40 % short
    t_ref, info = refine_motion(scene["prev"], scene["cur"], depth, scene["k"], t_net, max_points=max_points)
    assert info.used and np.all(np.isfinite(t_ref))
    n_true = np.linalg.norm(t_true[:3, 3])
    assert abs(np.linalg.norm(t_ref[:3, 3]) / n_true - 1) < 0.03
    assert np.linalg.norm((invert_se3(t_true) @ t_ref)[:3, 3]) < 0.03


def test_no_valid_depth_keeps_the_estimate(scene):
    t_net = scene["T_prev_cur"]
    t_out, info = refine_motion(scene["prev"], scene["cur"], np.zeros_like(scene["depth"]), scene["k"], t_net)
    assert not info.used and "no valid depth" in info.reason and np.array_equal(t_out, t_net)


def test_max_depth_excludes_far_pixels(scene):
    t_true = scene["T_prev_cur"]
    t_ref, info = refine_motion(scene["prev"], scene["cur"], scene["depth"], scene["k"], _short(t_true, 0.7),
                              max_depth=30.0)
    assert info.used and np.linalg.norm((invert_se3(t_true) @ t_ref)[:3, 3]) < 0.03
