"""Where a monocular motion's length comes from: each point's own length along the essential
matrix's direction (essential.length_from_depth), and the speed filter's gain at a lower frame rate
(length_filter.SpeedFilter). Exact synthetic points and speeds."""
from __future__ import annotations

import numpy as np
import pytest

from vode_ros.core.geometry import euler2mat
from vode_ros.runtime.pose.essential import length_from_depth, weighted_median
from vode_ros.runtime.pose.length_filter import SpeedFilter
from vode_ros.runtime.pose.tracking import backproject, project

K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 96.0], [0.0, 0.0, 1.0]])


def _points(n: int = 200, seed: int = 0):
    """(n, 2) pixels of a street-like scene in the previous image and their depths (4-60 m)."""
    rng = np.random.default_rng(seed)
    uv = np.stack([rng.uniform(20, 620, n), rng.uniform(10, 182, n)], 1)
    return uv, rng.uniform(4.0, 60.0, n)


def _motion(length: float) -> np.ndarray:
    t = np.eye(4)                                       # T_cur_prev: a slight turn, mostly forward
    t[:3, :3] = euler2mat([0.0, np.radians(2.0), 0.0])
    direction = np.array([0.05, 0.0, -1.0])
    t[:3, 3] = length * direction / np.linalg.norm(direction)
    return t


def test_each_point_gives_the_length_of_exact_depth():
    uv0, z = _points()
    t = _motion(3.6)
    uv1, zc = project(backproject(uv0, z, K), t, K)
    ok = zc > 0
    d = t[:3, 3] / np.linalg.norm(t[:3, 3])
    assert length_from_depth(uv0[ok], uv1[ok], z[ok], t[:3, :3], d, K) == pytest.approx(3.6, rel=1e-6)
    # depth 10 % long everywhere: the length 10 % long
    assert length_from_depth(uv0[ok], uv1[ok], 1.1 * z[ok], t[:3, :3], d, K) == pytest.approx(3.96, rel=1e-6)
    # too few points: no length
    assert length_from_depth(uv0[:5], uv1[:5], z[:5], t[:3, :3], d, K, min_points=10) is None


def test_the_points_with_most_parallax_decide():
    """Near points 10 % long, far ones compressed to half: the parallax-weighted length follows the
    near points (where the translation shows), not the many far ones."""
    uv0, z = _points(400, seed=1)
    t = _motion(3.6)
    uv1, zc = project(backproject(uv0, z, K), t, K)
    ok = zc > 0
    skewed = np.where(z < 15.0, 1.1 * z, 0.5 * z)
    d = t[:3, 3] / np.linalg.norm(t[:3, 3])
    length = length_from_depth(uv0[ok], uv1[ok], skewed[ok], t[:3, :3], d, K)
    assert length == pytest.approx(3.96, rel=0.02)


def test_weighted_median():
    assert weighted_median(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0])) == 2.0
    assert weighted_median(np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.1, 5.0])) == 3.0


def test_speed_filter_gain_follows_the_frame_interval():
    """With dt_ref the prediction weighs a^(dt / dt_ref): three frame intervals apart it is a³."""
    per_frame, timed = SpeedFilter(0.7), SpeedFilter(0.7, dt_ref=0.1)
    for f in (per_frame, timed):
        t = np.eye(4)
        t[2, 3] = 3.0                                   # 10 m/s over 0.3 s
        f.filter_length(t, 0.3)
        t[2, 3] = 4.5                                   # 15 m/s measured next
        f.filter_length(t, 0.3)
    assert per_frame.speed == pytest.approx(10.0 + 0.3 * 5.0)
    assert timed.speed == pytest.approx(10.0 + (1.0 - 0.7 ** 3) * 5.0)
