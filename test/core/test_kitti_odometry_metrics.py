"""KITTI devkit t_err / r_err, alignment, APE / RPE (cross-checked against evo)."""
from __future__ import annotations

import numpy as np
import pytest

from vode_ros.core import kitti_odometry_metrics as km
from vode_ros.core import trajectory as tj
from vode_ros.core.geometry import euler2mat


def _straight(n: int, step: float = 1.0) -> np.ndarray:
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, 2, 3] = step * np.arange(n)
    return poses


def _curvy(n: int, seed: int = 0) -> np.ndarray:
    """Forward motion (z) with turning (yaw) and a little pitch/roll, ~1 m per frame."""
    rng = np.random.default_rng(seed)
    rel = np.tile(np.eye(4), (n - 1, 1, 1))
    for i in range(n - 1):
        rel[i, :3, :3] = euler2mat([rng.normal(0, 0.003), 0.02 * np.sin(i / 7.0), rng.normal(0, 0.003)])
        rel[i, :3, 3] = [rng.normal(0, 0.02), rng.normal(0, 0.01), 1.0 + rng.normal(0, 0.05)]
    return tj.integrate_relative(rel)


def _sim3(poses: np.ndarray, s: float, rot: np.ndarray, t: np.ndarray) -> np.ndarray:
    out = poses.copy()
    out[:, :3, :3] = rot @ poses[:, :3, :3]
    out[:, :3, 3] = s * poses[:, :3, 3] @ rot.T + t
    return out


def test_devkit_helpers():
    gt = _straight(12)
    dist = km.trajectory_distances(gt)
    np.testing.assert_allclose(dist, np.arange(12.0))
    # strictly greater: from frame 0, length 5 ends at frame 6 (dist 6 > 5), not 5
    assert km.last_frame_from_segment_length(dist, 0, 5.0) == 6
    assert km.last_frame_from_segment_length(dist, 3, 8.0) == -1
    err = np.eye(4)
    err[:3, :3] = euler2mat([0.0, 0.1, 0.0])
    err[:3, 3] = [3.0, 4.0, 0.0]
    assert km.rotation_error(err) == pytest.approx(0.1, abs=1e-7)
    assert km.translation_error(err) == pytest.approx(5.0)


def test_perfect_trajectory_is_zero():
    gt = _curvy(150)
    for align in ("none", "scale", "sim3", "se3"):
        r = km.kitti_errors(gt, gt, lengths=(10, 20, 50, 100), align=align)
        assert r["t_err"] == pytest.approx(0.0, abs=1e-9)
        assert r["r_err"] == pytest.approx(0.0, abs=1e-4)     # arccos(1 - eps) ~ 1e-8 rad
        assert r["lengths_used"] == [10.0, 20.0, 50.0, 100.0]
    assert km.ape(gt, gt)["rmse"] == pytest.approx(0.0, abs=1e-9)


def test_constant_scale_error_straight_line():
    """Positions scaled by k: each segment's error is |1 - k| * chord; on a straight 1 m/frame
    line the segment of length L ends L + 1 frames later (strict >), chord = L + 1."""
    gt = _straight(101)
    k = 1.3
    est = gt.copy()
    est[:, :3, 3] *= k
    lengths = (10.0, 20.0, 50.0)
    r = km.kitti_errors(est, gt, lengths=lengths, align="none")
    expected = []
    for first in range(0, 101, 10):
        for length in lengths:
            if first + length + 1 <= 100:
                expected.append(abs(1 - k) * (length + 1) / length)
    assert r["n_segments"] == len(expected)
    assert r["t_err"] == pytest.approx(100.0 * np.mean(expected), rel=1e-9)
    assert r["r_err"] == pytest.approx(0.0, abs=1e-4)
    assert r["per_length"]["10"]["t_err"] == pytest.approx(100 * 0.3 * 1.1, rel=1e-9)
    for align in ("scale", "sim3"):
        ra = km.kitti_errors(est, gt, lengths=lengths, align=align)
        assert ra["t_err"] == pytest.approx(0.0, abs=1e-9)
        assert ra["scale"] == pytest.approx(1 / k)


def test_constant_scale_error_curved():
    gt = _curvy(200, seed=1)
    k = 0.8
    est = gt.copy()
    est[:, :3, 3] *= k
    lengths = (10.0, 30.0, 100.0)
    dist = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(gt[:, :3, 3], axis=0), axis=1))])
    expected = []
    for first in range(0, len(gt), 10):
        for length in lengths:
            later = [i for i in range(first, len(gt)) if dist[i] > dist[first] + length]
            if later:
                chord = np.linalg.norm(gt[later[0], :3, 3] - gt[first, :3, 3])
                expected.append(abs(1 - k) * chord / length)
    r = km.kitti_errors(est, gt, lengths=lengths, align="none")
    assert r["t_err"] == pytest.approx(100.0 * np.mean(expected), rel=1e-9)
    assert km.kitti_errors(est, gt, lengths=lengths, align="scale")["t_err"] == pytest.approx(0.0, abs=1e-9)


def test_known_rotation_drift():
    """Each estimated step turns an extra eps (yaw): a segment of m steps is off by m * eps."""
    n, eps = 101, 1e-3
    gt = _straight(n)
    rel = tj.relative_from_absolute(gt)
    rel_est = rel.copy()
    rel_est[:, :3, :3] = euler2mat([0.0, eps, 0.0])
    est = tj.integrate_relative(rel_est)
    r = km.kitti_errors(est, gt, lengths=(10.0,), align="none")
    # straight line, 1 m / frame: a 10 m segment spans 11 steps
    assert r["r_err"] == pytest.approx(11 * eps / 10.0 * 180 / np.pi * 100, rel=1e-6)


def test_sim3_alignment_recovers_similarity():
    gt = _curvy(120, seed=2)
    rot = euler2mat([0.1, -0.4, 0.2])
    est = _sim3(gt, 2.5, rot, np.array([3.0, -1.0, 7.0]))
    r = km.kitti_errors(est, gt, lengths=(10.0, 50.0), align="sim3")
    assert r["t_err"] == pytest.approx(0.0, abs=1e-7)
    assert r["scale"] == pytest.approx(1 / 2.5)
    assert km.ape(est, gt, "sim3")["rmse"] == pytest.approx(0.0, abs=1e-8)
    assert km.kitti_errors(est, gt, lengths=(10.0,), align="none")["t_err"] > 100.0


def test_fitting_lengths():
    assert km.fitting_lengths(_straight(61)) == (10.0, 20.0, 30.0, 40.0, 50.0)   # 60 m path
    assert km.fitting_lengths(_straight(30)) == (10.0, 20.0)                     # 29 m
    assert km.fitting_lengths(_straight(851)) == km.KITTI_LENGTHS               # 850 m
    assert km.fitting_lengths(_straight(250)) == (100.0, 200.0)
    assert km.fitting_lengths(_straight(5)) == (1.0, 2.0, 3.0)                   # 4 m: 1 m steps
    assert km.fitting_lengths(_straight(2)) == ()
    r = km.kitti_errors(_straight(30), _straight(30), lengths=(10, 20, 50))
    assert r["lengths_requested"] == [10.0, 20.0, 50.0] and r["lengths_used"] == [10.0, 20.0]
    empty = km.kitti_errors(_straight(5), _straight(5), lengths=(100,))
    assert empty["n_segments"] == 0 and np.isnan(empty["t_err"])


def test_ape_matches_trajectory_ate():
    gt = _curvy(80, seed=3)
    rng = np.random.default_rng(3)
    est = gt.copy()
    est[:, :3, 3] = 0.7 * est[:, :3, 3] + rng.normal(0, 0.2, (80, 3))
    for align in ("sim3", "se3", "scale", "none"):
        assert km.ape(est, gt, align)["rmse"] == pytest.approx(tj.ate_rmse(est, gt, align)["rmse"], rel=1e-9)


def test_against_evo():
    pytest.importorskip("evo", reason="evo not installed (pip install evo)")
    from evo.core import metrics
    from evo.core.trajectory import PosePath3D

    gt = _curvy(120, seed=4)
    rng = np.random.default_rng(4)
    rel = tj.relative_from_absolute(gt)
    for i in range(len(rel)):                       # noisy odometry, scale 0.6 (monocular-like)
        noise = np.eye(4)
        noise[:3, :3] = euler2mat(rng.normal(0, 0.004, 3))
        noise[:3, 3] = rng.normal(0, 0.03, 3)
        rel[i] = rel[i] @ noise
        rel[i, :3, 3] *= 0.6
    est = tj.integrate_relative(rel)

    ref = PosePath3D(poses_se3=list(gt))
    for correct_scale, align in ((True, "sim3"), (False, "se3")):
        traj = PosePath3D(poses_se3=list(est))
        traj.align(ref, correct_scale=correct_scale)
        ape = metrics.APE(metrics.PoseRelation.translation_part)
        ape.process_data((ref, traj))
        ours = km.ape(est, gt, align)
        assert ours["rmse"] == pytest.approx(ape.get_statistic(metrics.StatisticsType.rmse), rel=1e-9)
        assert ours["max"] == pytest.approx(ape.get_statistic(metrics.StatisticsType.max), rel=1e-9)
        for delta, all_pairs in ((1, False), (5, False), (5, True)):
            ours_rpe = km.rpe(est, gt, delta=delta, align=align, all_pairs=all_pairs)
            for key, rel_kind in (("trans", metrics.PoseRelation.translation_part),
                                  ("rot", metrics.PoseRelation.rotation_angle_deg)):
                m = metrics.RPE(rel_kind, delta=delta, delta_unit=metrics.Unit.frames, all_pairs=all_pairs)
                m.process_data((ref, traj))
                assert ours_rpe[key]["rmse"] == pytest.approx(m.get_statistic(metrics.StatisticsType.rmse),
                                                              rel=1e-6, abs=1e-9)
                assert ours_rpe[key]["n"] == (len(gt) - delta if all_pairs else (len(gt) - 1) // delta)
    evo = km.evo_ape_rpe(est, gt)
    assert evo["ape_trans_sim3"]["rmse"] == pytest.approx(km.ape(est, gt, "sim3")["rmse"], rel=1e-9)
    assert evo["rpe_rot_deg"]["rmse"] == pytest.approx(km.rpe(est, gt, align="sim3")["rot"]["rmse"], rel=1e-6)


def test_bad_input():
    with pytest.raises(ValueError):
        km.kitti_errors(_straight(10), _straight(11))
    with pytest.raises(ValueError):
        km.align_poses(_straight(10), _straight(10), "affine")
    with pytest.raises(ValueError):
        km.rpe(_straight(10), _straight(10), delta=10)
