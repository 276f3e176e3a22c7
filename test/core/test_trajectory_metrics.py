"""Trajectory metrics: Umeyama recovery, ATE, SfMLearner ATE-5, pose integration."""
import numpy as np
import pytest

from vode_ros.core.geometry import euler2mat, pose_vec2mat
from vode_ros.core.trajectory import (
    align_positions, ate5, ate_rmse, integrate_relative, path_length, relative_from_absolute,
    snippet_ate, umeyama_alignment)


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def _trajectory(n=40, seed=0):
    rng = np.random.default_rng(seed)
    rel = [pose_vec2mat(np.r_[rng.normal(0, 0.05, 2), 1.0 + rng.normal(0, 0.1),
                                 rng.normal(0, 0.02, 3)]) for _ in range(n - 1)]
    return integrate_relative(np.array(rel))


def test_umeyama_exact_sim3_recovery():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(50, 3)) * 5
    rot = _random_rotation(rng)
    s, t = 2.7, np.array([1.0, -3.0, 0.5])
    dst = s * src @ rot.T + t
    s_hat, r_hat, t_hat = umeyama_alignment(src, dst)
    assert s_hat == pytest.approx(s, rel=1e-10)
    np.testing.assert_allclose(r_hat, rot, atol=1e-10)
    np.testing.assert_allclose(t_hat, t, atol=1e-9)
    assert np.linalg.det(r_hat) == pytest.approx(1.0)


def test_umeyama_se3_and_reflection_guard():
    rng = np.random.default_rng(2)
    src = rng.normal(size=(30, 3))
    rot = _random_rotation(rng)
    dst = src @ rot.T + 1.0
    s, r, t = umeyama_alignment(src, dst, with_scale=False)
    assert s == 1.0
    np.testing.assert_allclose(r, rot, atol=1e-10)
    # a mirrored target must still give a proper rotation
    _, r_m, _ = umeyama_alignment(src, src * np.array([1, 1, -1]))
    assert np.linalg.det(r_m) == pytest.approx(1.0)


def test_ate_zero_after_sim3_of_itself():
    gt = _trajectory()
    rng = np.random.default_rng(3)
    rot, s, t = _random_rotation(rng), 0.3, np.array([5.0, 2.0, -1.0])
    est = s * gt[:, :3, 3] @ rot.T + t
    res = ate_rmse(est, gt, align="sim3")
    assert res["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert res["scale"] == pytest.approx(1 / s)
    assert ate_rmse(est, gt, align="se3")["rmse"] > 1.0
    assert ate_rmse(gt, gt, align="none")["rmse"] == 0.0
    # 'scale' alignment: pure scaling about the origin is undone exactly
    assert ate_rmse(gt[:, :3, 3] * 4.0, gt, align="scale")["rmse"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        align_positions(est, gt, align="bogus")


def test_ate_known_offset():
    gt = _trajectory()
    est = gt[:, :3, 3] + np.array([0.0, 0.3, 0.4])
    res = ate_rmse(est, gt, align="none")
    assert res["rmse"] == pytest.approx(0.5) and res["max"] == pytest.approx(0.5)


def test_ate5_scaled_gt_is_zero_and_perturbed_positive():
    gt = _trajectory(30)
    scaled = gt.copy()
    scaled[:, :3, 3] *= 3.0
    mean, std = ate5(scaled, gt)
    assert mean == pytest.approx(0.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)
    # a different global origin/orientation does not matter either (snippet-relative)
    offset = pose_vec2mat([3.0, -1.0, 2.0, 0.1, -0.4, 0.2])
    mean, _ = ate5(offset @ scaled, gt)
    assert mean == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(4)
    noisy = gt.copy()
    noisy[:, :3, 3] += rng.normal(0, 0.05, size=(30, 3))
    mean, std = ate5(noisy, gt)
    assert mean > 1e-3 and std > 0


def test_snippet_ate_formula_by_hand():
    # straight motion along z; estimate is right in direction but has a lateral error on one frame
    gt = np.tile(np.eye(4), (5, 1, 1))
    gt[:, 2, 3] = np.arange(5, dtype=float)
    est = gt.copy()
    est[:, :3, 3] *= 0.5
    est[4, 0, 3] = 1.0
    p, g = est[:, :3, 3], gt[:, :3, 3]
    s = np.sum(g * p) / np.sum(p**2)
    expected = np.sqrt(np.sum((s * p - g) ** 2)) / 5  # divided by N, not sqrt(N)
    assert snippet_ate(est, gt) == pytest.approx(expected)
    assert expected > 0


def test_ate5_snippet_count():
    gt = _trajectory(12)
    noisy = gt.copy()
    noisy[7, 0, 3] += 1.0  # touches windows starting at 3..7 -> 5 of the 8
    errs = [snippet_ate(noisy[i:i + 5], gt[i:i + 5]) for i in range(8)]
    assert sum(e > 1e-9 for e in errs) == 5
    mean, std = ate5(noisy, gt)
    assert mean == pytest.approx(np.mean(errs)) and std == pytest.approx(np.std(errs))


def test_integrate_relative_round_trip():
    gt = _trajectory(25)
    rel = relative_from_absolute(gt)
    np.testing.assert_allclose(integrate_relative(rel), gt, atol=1e-10)
    # W_i = W_{i-1} @ T_{i-1,i}
    t = pose_vec2mat([0.0, 0.0, 1.0, 0.0, np.pi / 2, 0.0])
    w = integrate_relative(np.array([t, t]))
    np.testing.assert_allclose(w[1], t)
    np.testing.assert_allclose(w[2][:3, 3], [1.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(w[2][:3, :3], euler2mat([0, np.pi, 0]), atol=1e-12)
    start = pose_vec2mat([1, 2, 3, 0, 0, 0])
    np.testing.assert_allclose(integrate_relative(rel, initial=start)[0], start)


def test_path_length():
    pos = np.array([[0, 0, 0], [3, 4, 0], [3, 4, 1]], dtype=float)
    assert path_length(pos) == pytest.approx(6.0)
    poses = np.tile(np.eye(4), (3, 1, 1))
    poses[:, :3, 3] = pos
    assert path_length(poses) == pytest.approx(6.0)
    assert path_length(pos[:1]) == 0.0


def _horn_quaternion(src, dst):
    """Independent closed form (Horn 1987, unit quaternions) with Horn's asymmetric scale."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    m = a.T @ b
    sxx, sxy, sxz, syx, syy, syz, szx, szy, szz = m.ravel()
    n = np.array([
        [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
        [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
        [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
        [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz]])
    w, v = np.linalg.eigh(n)
    q0, qx, qy, qz = v[:, np.argmax(w)]
    rot = np.array([
        [q0**2 + qx**2 - qy**2 - qz**2, 2 * (qx * qy - q0 * qz), 2 * (qx * qz + q0 * qy)],
        [2 * (qy * qx + q0 * qz), q0**2 - qx**2 + qy**2 - qz**2, 2 * (qy * qz - q0 * qx)],
        [2 * (qz * qx - q0 * qy), 2 * (qz * qy + q0 * qx), q0**2 - qx**2 - qy**2 + qz**2]])
    s = np.sum(b * (a @ rot.T)) / np.sum(a**2)
    return s, rot, mu_d - s * rot @ mu_s


def test_umeyama_matches_horn_on_noisy_data():
    rng = np.random.default_rng(5)
    src = rng.normal(size=(100, 3)) * 3
    dst = 1.7 * src @ _random_rotation(rng).T + rng.normal(size=3) + rng.normal(0, 0.3, (100, 3))
    s1, r1, t1 = umeyama_alignment(src, dst)
    s2, r2, t2 = _horn_quaternion(src, dst)
    assert s1 == pytest.approx(s2, rel=1e-9)
    np.testing.assert_allclose(r1, r2, atol=1e-9)
    np.testing.assert_allclose(t1, t2, atol=1e-8)
