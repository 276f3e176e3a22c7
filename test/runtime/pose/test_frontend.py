"""The odometry node's pose logic without ROS: depth paired by stamp (and what never pairs),
SGBM depth from the stereo pair, covariance carried into base_link and along the trajectory."""
from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pytest

from vode_ros.core.frames import mount_transform
from vode_ros.core.geometry import se3_exp
from vode_ros.runtime.odometry import OdometryIntegrator, adjoint, motion_covariance_in_base
from vode_ros.runtime.pose.depth_input import DepthCache, resolve_geometry_depth
from vode_ros.runtime.pose.estimator import PoseEstimatorConfig
from vode_ros.runtime.pose.frontend import PoseFrontEnd
from vode_training.data.synthetic import generate_sequence


@pytest.fixture(scope="module")
def seq():
    return generate_sequence(frames=6, width=416, height=128, seed=5)


def _ns(i: int) -> int:
    return 1_000_000_000 + i * 100_000_000


def test_adjoint_moves_a_perturbation_through_a_transform():
    t = mount_transform([0.3, -0.1, 1.65], [0.05, -0.02, 0.1])
    delta = np.array([0.01, -0.02, 0.03, 0.002, -0.001, 0.003])
    lhs = t @ se3_exp(delta) @ np.linalg.inv(t)
    assert np.allclose(lhs, se3_exp(adjoint(t) @ delta), atol=1e-6)


def test_motion_covariance_in_base_rotates_and_adds_the_lever_arm():
    t_bc = mount_transform([0.0, 0.0, 1.65], [0.0, 0.0, 0.0])
    cov = np.diag([1e-4, 2e-4, 3e-4, 1e-6, 2e-6, 3e-6])       # optical: x right, y down, z forward
    out = motion_covariance_in_base(cov, t_bc)
    # base x (forward) is optical z; base y (left) is -optical x
    assert out[0, 0] == pytest.approx(3e-4 + 1.65 ** 2 * 1e-6, rel=1e-6)    # + pitch about optical x lever
    assert out[5, 5] == pytest.approx(2e-6)                                   # yaw is about optical -y
    assert np.allclose(out, out.T)


def test_pose_covariance_grows_along_the_trajectory_and_twist_is_per_second():
    integ = OdometryIntegrator(mount_transform([0, 0, 1.65], [0, 0, 0]))
    integ.start(0.0)
    step = np.eye(4)
    step[2, 3] = 1.0                                           # 1 m forward per frame
    cov = np.diag([1e-4] * 3 + [1e-6] * 3)
    traces = []
    for i in range(1, 6):
        s = integ.update(0.1 * i, step, cov)
        traces.append(np.trace(s.pose_covariance[:3, :3]))
    assert all(b > a for a, b in zip(traces, traces[1:]))
    assert s.twist_covariance[0, 0] == pytest.approx(motion_covariance_in_base(cov, integ.t_base_cam)[0, 0] / 0.01)
    # Yaw uncertainty grows the lateral position uncertainty faster than linearly.
    assert s.pose_covariance[1, 1] > 5 * 1e-4
    assert integ.update(0.6, step).pose_covariance is None      # no covariance given: none published


def test_geometry_depth_choice():
    assert resolve_geometry_depth("auto", "stereo", "hybrid") == "stereo"
    assert resolve_geometry_depth("auto", "mono", "geometric") == "depth_topic"
    assert resolve_geometry_depth("depth_topic", "stereo", "hybrid") == "depth_topic"
    assert resolve_geometry_depth("stereo", "stereo", "net") == "none"
    with pytest.raises(ValueError, match="needs mode stereo"):
        resolve_geometry_depth("stereo", "mono", "hybrid")


def test_depth_cache_pairs_by_stamp_and_counts_what_never_pairs():
    cache = DepthCache(capacity=3)
    d = np.ones((4, 4), np.float32)
    cache.put(_ns(0), d)
    assert cache.take(_ns(0)) is d
    cache.put(_ns(2), d)                         # the depth node skipped frame 1
    t0 = time.monotonic()
    assert cache.take(_ns(1), timeout=5.0) is None          # newer depth here: no wait
    assert time.monotonic() - t0 < 1.0
    for i in range(3, 7):
        cache.put(_ns(i), d)                     # 2 and 3 evicted unused (capacity 3)
    assert cache.take(_ns(5)) is d               # 4 is older than asked: given up
    cache.put(_ns(1), d)                         # too late: frame 5 has been asked for
    c = cache.counts()
    assert (c.paired, c.frames_without_depth, c.depth_unpaired) == (2, 1, 4)


def test_depth_cache_waits_for_a_late_depth_then_stops_waiting_for_a_silent_source():
    cache = DepthCache()
    threading.Timer(0.2, cache.put, args=(_ns(0), np.ones((2, 2), np.float32))).start()
    assert cache.take(_ns(0), timeout=5.0) is not None
    t0 = time.monotonic()
    assert cache.take(_ns(1), timeout=0.3) is None            # nothing comes: one timeout
    assert cache.take(_ns(2), timeout=0.3) is None            # silent: no second wait
    assert time.monotonic() - t0 < 0.55
    assert cache.counts().waits == 2


def test_front_end_with_depth_from_the_cache(seq):
    cache = DepthCache()
    fe = PoseFrontEnd(PoseEstimatorConfig(pose_source="geometric"), "depth_topic", cache,
                      depth_wait_s=5.0)       # ends as soon as the depth is in: long only for a loaded machine
    pose = np.eye(4)
    # The depth node (in parallel, one frame after the other) publishes frame i's depth a little after
    # frame i came in; it skipped frame 2 (newest frame wins), so frame 3 has no geometry. One thread
    # in order, as the depth node's worker: two timers could fire out of order.
    depth_node: queue.Queue = queue.Queue()

    def publish():
        while (i := depth_node.get()) is not None:
            time.sleep(0.05)
            cache.put(_ns(i), seq.depth[i])

    worker = threading.Thread(target=publish, daemon=True)
    worker.start()
    for i in range(len(seq)):
        if i != 2:
            depth_node.put(i)
        e = fe.step(seq.left[i], _ns(i), seq.k)
        pose = pose @ e.t_prev_cur
        if i in (1, 2, 4, 5):
            assert e.source == "geometric", e.reason
            t_true = seq.relative(i, i - 1)
            assert np.linalg.norm(e.t_prev_cur[:3, 3] - t_true[:3, 3]) < 0.05
        if i == 3:
            assert e.source == "fallback" and "no depth" in e.reason
    depth_node.put(None)
    worker.join(5.0)
    assert fe.stats.fallbacks == 1
    assert cache.counts().frames_without_depth == 1


def test_front_end_with_stereo_depth(seq):
    fe = PoseFrontEnd(PoseEstimatorConfig(pose_source="hybrid"), "stereo")
    right = seq.right
    for i in range(3):
        e = fe.step(seq.left[i], _ns(i), seq.k, net_t_prev_cur=seq.relative(i, i - 1) if i else None,
                    right=right[i], baseline=seq.baseline)
    assert e.source == "hybrid", e.reason
    e = fe.step(seq.left[3], _ns(3), seq.k, net_t_prev_cur=seq.relative(3, 2))      # right image missing
    assert fe.stats.stereo_missing == 1 and e.source == "hybrid"   # frame 2's depth is still there
    e = fe.step(seq.left[4], _ns(4), seq.k, net_t_prev_cur=seq.relative(4, 3))
    assert e.source == "fallback"
