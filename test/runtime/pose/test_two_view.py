"""refine_two_view on exact synthetic correspondences: its Jacobian against finite differences, it
recovers the true motion from a perturbed start, averages a biased depth map with an exact one,
and shrugs off a gross outlier (Huber)."""
from __future__ import annotations

import numpy as np
from vode_ros.core.geometry import invert_se3, se3_exp
from vode_ros.runtime.pose.tracking import project
from vode_ros.runtime.pose.two_view import backward_jacobian, refine_two_view

K = np.array([[350.0, 0.0, 320.0], [0.0, 350.0, 96.0], [0.0, 0.0, 1.0]])
TRUE = se3_exp([0.05, -0.02, 0.9, 0.002, 0.01, -0.003])        # T_prev_cur, ~0.9 m forward, ~0.6 deg


def _scene(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) points in the previous camera, 4-40 m ahead, and the same points in the current camera."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(4.0, 40.0, n)
    p_prev = np.stack([rng.uniform(-0.8, 0.8, n) * z, rng.uniform(-0.25, 0.25, n) * z, z], 1)
    p_cur = p_prev @ invert_se3(TRUE)[:3, :3].T + invert_se3(TRUE)[:3, 3]
    return p_prev, p_cur


def _errors(t: np.ndarray) -> tuple[float, float]:
    d = invert_se3(TRUE) @ t
    return float(np.linalg.norm(d[:3, 3])), float(np.degrees(np.arccos(np.clip((np.trace(d[:3, :3]) - 1) / 2, -1, 1))))


def test_backward_jacobian_matches_finite_differences():
    _, p_cur = _scene(5)
    jac = backward_jacobian(p_cur, TRUE, K)
    num = np.zeros_like(jac)
    for i in range(6):
        d = np.zeros(6)
        d[i] = 1e-6
        plus = project(p_cur, TRUE @ se3_exp(d), K)[0].reshape(-1)
        minus = project(p_cur, TRUE @ se3_exp(-d), K)[0].reshape(-1)
        num[:, i] = (plus - minus) / 2e-6
    assert np.allclose(jac, num, rtol=1e-4, atol=1e-4)


def test_recovers_the_motion_from_a_perturbed_start():
    p_prev, p_cur = _scene()
    uv_cur = project(p_prev, invert_se3(TRUE), K)[0]
    uv_prev = project(p_cur, TRUE, K)[0]
    start = TRUE @ se3_exp([0.05, 0.03, -0.08, 0.004, -0.003, 0.002])
    t, iters = refine_two_view(start, p_prev, uv_cur, p_cur, uv_prev, K)
    assert iters >= 1
    t_err, r_err = _errors(t)
    assert t_err < 1e-6 and r_err < 1e-5, (t_err, r_err)


def test_averages_a_biased_depth_map_with_an_exact_one():
    """Previous depth 4 % long (a biased matcher), current depth exact: the forward direction alone
    (PnP) gives a 4 % scale error; both directions well under it."""
    p_prev, p_cur = _scene()
    uv_cur = project(p_prev, invert_se3(TRUE), K)[0]
    uv_prev = project(p_cur, TRUE, K)[0]
    biased = p_prev * 1.04
    fwd_only, _ = refine_two_view(TRUE, biased, uv_cur, p_cur[:0], uv_prev[:0], K, iterations=10)
    both, _ = refine_two_view(TRUE, biased, uv_cur, p_cur, uv_prev, K, iterations=10)
    scale_fwd = np.linalg.norm(fwd_only[:3, 3]) / np.linalg.norm(TRUE[:3, 3])
    scale_both = np.linalg.norm(both[:3, 3]) / np.linalg.norm(TRUE[:3, 3])
    assert abs(scale_fwd - 1.04) < 0.01, scale_fwd
    assert abs(scale_both - 1.0) < 0.7 * abs(scale_fwd - 1.0), (scale_fwd, scale_both)


def test_a_gross_outlier_pulls_little():
    p_prev, p_cur = _scene()
    uv_cur = project(p_prev, invert_se3(TRUE), K)[0]
    uv_prev = project(p_cur, TRUE, K)[0]
    rng = np.random.default_rng(1)
    uv_cur = uv_cur + rng.normal(0.0, 0.3, uv_cur.shape)
    uv_prev = uv_prev + rng.normal(0.0, 0.3, uv_prev.shape)
    uv_cur[:6] += 25.0                                              # six bad tracks, 35 px off
    t, _ = refine_two_view(TRUE, p_prev, uv_cur, p_cur, uv_prev, K, huber_px=1.0)
    t_err, r_err = _errors(t)
    assert t_err < 0.01 and r_err < 0.02, (t_err, r_err)


def test_points_behind_a_camera_leave_the_motion_as_given():
    p_prev, p_cur = _scene(20)
    uv = project(p_prev, invert_se3(TRUE), K)[0]
    behind = p_cur.copy()
    behind[0, 2] = -5.0
    t, iters = refine_two_view(TRUE, p_prev, uv, behind, uv, K)
    assert iters == 0 and np.array_equal(t, TRUE)
