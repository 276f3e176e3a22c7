"""Large motion between frames on a synthetic street with exact depth and poses: a stride-4
sequence of a turning camera where LK alone loses track and descriptor matching holds; a motion
whose length is implausible against the recent speed is caught; the prior's prediction."""
from __future__ import annotations

import numpy as np
import pytest

from vode_ros.core.geometry import euler2mat, invert_se3
from vode_ros.runtime.pose.config import PoseEstimatorConfig
from vode_ros.runtime.pose.descriptor_matching import predict_positions
from vode_ros.runtime.pose.estimator import PoseEstimator
from vode_ros.runtime.pose.plausibility import MotionPlausibility
from vode_training.data.synthetic import Scene, SynthConfig, make_trajectory, render_view

W, H = 416, 128


@pytest.fixture(scope="module")
def street():
    cfg = SynthConfig(frames=40, width=W, height=H, seed=3, wall_distance=5.0)
    rng = np.random.default_rng(cfg.seed)
    traj = make_trajectory(cfg, rng)
    scene = Scene(cfg, traj[:, :3, 3], rng)
    k = cfg.intrinsics()

    def view(t_base_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        img, depth = render_view(scene, traj[2] @ t_base_cam, k, W, H)
        grey = np.clip(np.round(img @ np.array([0.299, 0.587, 0.114], np.float32) * 255), 0, 255).astype(np.uint8)
        return grey, depth

    return view, k


def turning(view, frames: int, yaw_deg: float, step_m: float):
    """A camera that turns ``yaw_deg`` per frame (changing direction every third frame) while moving
    ``step_m`` along its heading -> (N, 4, 4) poses, grey images, depths."""
    poses, images, depths = [], [], []
    yaw, pos = 0.0, np.zeros(3)
    for i in range(frames):
        if i:
            yaw += np.radians(yaw_deg) * (1 if ((i - 1) // 3) % 2 == 0 else -1)
            pos = pos + step_m * np.array([np.sin(yaw), 0.0, np.cos(yaw)])
        t = np.eye(4)
        t[:3, :3], t[:3, 3] = euler2mat([0.0, yaw, 0.0]), pos
        img, depth = view(t)
        poses.append(t)
        images.append(img)
        depths.append(depth)
    return np.array(poses), images, depths


def run(config: PoseEstimatorConfig, poses, images, depths, k, dt: float = 0.4, depth_of=None):
    est = PoseEstimator(config)
    out = []
    for i, (img, depth) in enumerate(zip(images, depths)):
        e = est.step(img, dt * i, k, depth=depth if depth_of is None else depth_of(i, depth))
        if i:
            d = invert_se3(invert_se3(poses[i - 1]) @ poses[i]) @ e.t_prev_cur
            ang = np.degrees(np.arccos(np.clip((np.trace(d[:3, :3]) - 1) / 2, -1, 1)))
            out.append((e, float(np.linalg.norm(d[:3, 3])), float(ang)))
    return out


def test_stride_4_lk_loses_track_descriptors_hold(street):
    """6 degrees and 0.25 m a frame, every fourth frame kept: 24 degrees and 1 m between the frames
    the estimator sees (about 100 px of image motion, past LK's pyramid)."""
    view, k = street
    poses, images, depths = turning(view, 5, 24.0, 1.0)
    lk = run(PoseEstimatorConfig(pose_source="geometric", matcher="lk"), poses, images, depths, k)
    assert sum(e.source == "fallback" for e, _, _ in lk) >= 3            # LK alone loses track
    for matcher in ("auto", "descriptor"):
        steps = run(PoseEstimatorConfig(pose_source="geometric", matcher=matcher), poses, images, depths, k)
        assert [e.source for e, _, _ in steps] == ["geometric"] * 4, matcher
        assert all(e.extra["matcher"] == "descriptor" for e, _, _ in steps) or matcher == "auto"
        assert max(t for _, t, _ in steps) < 0.05 and max(r for _, _, r in steps) < 1.0, matcher


def test_small_motion_stays_with_lk(street):
    view, k = street
    poses, images, depths = turning(view, 4, 3.0, 0.3)
    steps = run(PoseEstimatorConfig(pose_source="geometric", matcher="auto"), poses, images, depths, k)
    assert [e.extra["matcher"] for e, _, _ in steps] == ["lk"] * 3
    assert max(t for _, t, _ in steps) < 0.02


def test_an_implausible_length_is_not_taken(street):
    """A depth map four times too far (a broken depth source) makes PnP's motion four times too
    long on one frame: caught against the recent speed, that frame goes on at constant velocity."""
    view, k = street
    poses, images, depths = turning(view, 6, 2.0, 0.5)
    broken = lambda i, d: d * 4.0 if i == 4 else d          # noqa: E731  the depth of frame 4, used by step 5
    checked = run(PoseEstimatorConfig(pose_source="geometric"), poses, images, depths, k, depth_of=broken)
    e, err, _ = checked[-1]
    assert e.source == "fallback" and "implausible length" in e.reason and err < 0.05
    unchecked = run(PoseEstimatorConfig(pose_source="geometric", plausibility=False), poses, images, depths, k,
                    depth_of=broken)
    e, err, _ = unchecked[-1]
    assert e.source == "geometric" and np.linalg.norm(e.t_prev_cur[:3, 3]) > 1.5


def test_plausibility_against_recent_speed_and_covariance():
    p = MotionPlausibility()
    t = np.eye(4)
    t[2, 3] = 0.25
    cov = np.eye(6) * 1e-4
    for _ in range(3):
        assert p.judge(t, cov, 0.3).plausible
        p.accept(t, 0.3)
    long = t.copy()
    long[2, 3] = 1.5
    v = p.judge(long, cov, 0.3)
    assert not v.plausible and v.expected == pytest.approx(0.25)
    assert p.judge(long, cov, 1.2).plausible               # after three dropped frames: as far as expected
    assert p.judge(long, np.eye(6) * 0.2, 0.3).plausible   # a motion this uncertain cannot be called wrong


def test_prediction_with_and_without_depth():
    k = np.array([[100.0, 0, 50], [0, 100, 40], [0, 0, 1]])
    uv = np.array([[50.0, 40.0], [60.0, 30.0]])
    t = np.eye(4)
    t[:3, :3], t[0, 3] = euler2mat([0.0, np.radians(10), 0.0]), -1.0        # T_cur_prev
    out = predict_positions(uv, np.array([2.0, np.nan]), k, t)
    q = t[:3, :3] @ np.array([0.0, 0.0, 2.0]) + t[:3, 3]
    np.testing.assert_allclose(out[0], (k @ q)[:2] / q[2])                 # with depth: the full motion
    ray = t[:3, :3] @ np.array([0.1, -0.1, 1.0])
    np.testing.assert_allclose(out[1], (k @ ray)[:2] / ray[2])             # without: the rotation alone


def test_a_net_length_off_the_recent_speed_gives_way(street):
    """A pose net whose translations are a quarter of the truth (trained at four times this frame
    rate): where the geometry fails (a blank frame) the fallback keeps its rotation and direction
    with the recent speed's length, not its own."""
    view, k = street
    poses, images, depths = turning(view, 6, 2.0, 0.5)
    images[-1] = np.full_like(images[-1], 120)                            # nothing to track: falls back

    def short_net(i):
        t = invert_se3(poses[i - 1]) @ poses[i]
        t[:3, 3] *= 0.25
        return t

    for check, expect in ((True, 0.5), (False, 0.125)):
        est = PoseEstimator(PoseEstimatorConfig(pose_source="hybrid", plausible_net=check))
        for i, (img, depth) in enumerate(zip(images, depths)):
            e = est.step(img, 0.1 * i, k, depth=depth, net_t_prev_cur=short_net(i) if i else None)
        assert e.source == "fallback"
        assert np.linalg.norm(e.t_prev_cur[:3, 3]) == pytest.approx(expect, rel=0.05), check


def test_net_length_band_both_ways():
    p = MotionPlausibility()
    t = np.eye(4)
    t[2, 3] = 1.0
    for _ in range(3):
        p.accept(t, 0.1)
    assert p.net_length(t, 0.1) is None
    short = t.copy()
    short[2, 3] = 0.3
    assert p.net_length(short, 0.1) == pytest.approx(1.0)                 # too short is as wrong as too long
    assert p.net_length(short, 0.3) == pytest.approx(3.0)                 # and the expectation follows dt


def test_descriptors_found_on_the_full_image_give_the_motion_at_the_working_resolution(street):
    """The stride-4 turn with a working resolution of half the image: descriptors found on the full
    image (the default) and mapped to the working pixels give the motion at least as exactly as
    those found on the downscaled image (a wrong mapping would shift every match by pixels)."""
    view, k = street
    poses, images, depths = turning(view, 5, 24.0, 1.0)
    err = {}
    for full in (True, False):
        cfg = PoseEstimatorConfig(pose_source="geometric", matcher="descriptor", work_width=W // 2,
                                  descriptor_full_res=full)
        steps = run(cfg, poses, images, depths, k)
        assert [e.source for e, _, _ in steps] == ["geometric"] * 4, full
        assert max(t for _, t, _ in steps) < 0.08 and max(r for _, _, r in steps) < 1.5, full
        err[full] = float(np.median([t for _, t, _ in steps]))
    assert err[True] < 0.02 and err[True] <= err[False], err
