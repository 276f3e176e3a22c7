"""The odometry node's per-frame work without ROS (runtime.odometry_pipeline) on a synthetic street
with exact poses: the integrated trajectory, the stamp rules (repeat, back, forward gap), and one
stereo match per pair shared with the depth pipeline."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from vode_ros.core.frames import mount_transform
from vode_ros.runtime.odometry_pipeline import (OdometryPipeline, OdometrySettings, StampRejected,
                                                integrate_sequence)
from vode_ros.runtime.pose.config import PoseEstimatorConfig
from vode_ros.runtime.frame_share import FrameShare
from vode_training.data.synthetic import generate_sequence

MOUNT = mount_transform([0.2, 0.0, 1.65], [0.0, 0.02, 0.0])


@pytest.fixture(scope="module")
def seq():
    return generate_sequence(frames=20, width=416, height=128, seed=3)


def _ns(seq, i: int) -> int:
    return 1_000_000_000 + int(round(seq.times[i] * 1e9))


def _stereo_pipeline(**settings) -> OdometryPipeline:
    return OdometryPipeline(None, OdometrySettings(PoseEstimatorConfig(pose_source="geometric"), "stereo", MOUNT,
                                                   **settings))


def _step(p: OdometryPipeline, seq, i: int, stamp_ns: int | None = None):
    return p.step(seq.left[i], "mono8", _ns(seq, i) if stamp_ns is None else stamp_ns, seq.k, right=seq.right[i],
                  baseline=seq.baseline)


def _camera_pose(step) -> np.ndarray:
    """The step's base_link pose as the camera's in the first camera's frame."""
    return np.linalg.inv(MOUNT) @ step.pose @ MOUNT


def test_stereo_geometry_follows_the_exact_trajectory(seq):
    p = _stereo_pipeline()
    frames = [{"image": seq.left[i], "encoding": "mono8", "stamp_ns": _ns(seq, i), "k": seq.k,
               "right": seq.right[i], "baseline": seq.baseline} for i in range(8)]
    poses, steps = integrate_sequence(p, frames)
    assert steps[0].estimate.source == "start" and steps[0].pose_covariance is None
    assert all(s.estimate.source == "geometric" for s in steps[1:]), [s.estimate.reason for s in steps]
    err = np.linalg.norm(poses[:, :3, 3] - seq.poses[:8, :3, 3], axis=1)
    assert err.max() < 0.1, err                             # 7 m driven
    assert np.allclose(poses[-1], _camera_pose(steps[-1]))
    # base_link moves forward (x) at about 1 m per frame (10 m/s)
    assert steps[-1].twist_linear[0] == pytest.approx(10.0, rel=0.1)
    traces = [np.trace(s.pose_covariance[:3, :3]) for s in steps[1:]]
    assert all(b > a for a, b in zip(traces, traces[1:]))    # the pose covariance grows along the path


def test_stamp_rules_refuse_a_repeat_and_reset_on_time_going_back(seq):
    p = _stereo_pipeline()
    for i in range(3):
        _step(p, seq, i)
    with pytest.raises(StampRejected) as exc:
        _step(p, seq, 3, stamp_ns=_ns(seq, 2))
    assert exc.value.reason == "duplicate_stamp"
    assert _step(p, seq, 3).estimate.source == "geometric"        # refused before any state changed
    back = _step(p, seq, 4, stamp_ns=_ns(seq, 0))
    assert back.estimate.source == "start" and np.allclose(back.pose, np.eye(4))
    assert [r for r, _ in back.notes] == ["time_back"]


def test_a_stamp_gap_is_bridged_at_the_last_velocity_with_an_inflated_covariance(seq):
    """A stamp gap of 1.2 s (over max_frame_gap 1 s; e.g. stereo pairs lost while the right camera was
    silent) | bridged at the last velocity up to max_bridge_gap (3 s), the covariance inflated by the gap,
    a `stamp_gap` note, measured again from the next frame (before: the gap's motion skipped, 12 m short
    on this scene)"""
    p = _stereo_pipeline()
    for i in range(6):
        last = _step(p, seq, i)
    step_cov = np.trace(last.estimate.covariance[:3, :3])
    bridged = _step(p, seq, 17)
    assert bridged.estimate.source == "bridged" and [r for r, _ in bridged.notes] == ["stamp_gap"]
    truth = seq.poses[17, :3, 3]
    assert np.linalg.norm(_camera_pose(bridged)[:3, 3] - truth) < 0.6       # skipping it: 12 m short
    assert np.trace(bridged.estimate.covariance[:3, :3]) > 100 * step_cov
    assert bridged.twist_linear[0] == pytest.approx(10.0, rel=0.1)
    after = _step(p, seq, 18)
    assert after.estimate.source == "geometric", after.estimate.reason     # measured again from frame 17
    assert np.linalg.norm(_camera_pose(after)[:3, 3] - seq.poses[18, :3, 3]) < 0.6


def test_a_gap_past_max_bridge_gap_is_not_integrated(seq):
    """A stamp gap past max_bridge_gap | not integrated: the pose goes on from the last one, with a log
    line saying so; odometry restarts from the next frame"""
    p = _stereo_pipeline(max_bridge_gap=1.1)
    for i in range(6):
        last = _step(p, seq, i)
    after_gap = _step(p, seq, 17)
    assert after_gap.estimate.source == "start" and "not integrated" in after_gap.notes[0][1]
    assert np.allclose(after_gap.pose, last.pose)                         # goes on from the last pose
    assert after_gap.pose_covariance is not None                          # what the trajectory gathered
    assert _step(p, seq, 18).estimate.source == "geometric"


def test_one_stereo_match_per_pair_shared_between_callers(seq):
    share = FrameShare()
    got = []
    barrier = threading.Barrier(2)

    def ask():
        barrier.wait()
        got.append(share.depth(5, seq.left[0], seq.right[0], float(seq.k[0, 0]), seq.baseline))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert share.computed["sgbm"] == 1 and share.shared["sgbm"] == 1 and got[0] is got[1]
    assert not got[0].flags.writeable                       # read by both: nobody may write into it
    valid = (got[0] > 0) & (seq.depth[0] > 0)
    assert np.median(np.abs(got[0][valid] - seq.depth[0][valid]) / seq.depth[0][valid]) < 0.05


@pytest.mark.needs_models
def test_depth_and_odometry_pipelines_match_a_pair_once(seq, models_dir):
    """As `vode run` wires them: the depth pipeline's stereo scale and the odometry's geometry read
    one SGBM map per stereo pair."""
    from vode_ros.runtime.depth_pipeline import DepthPipeline, DepthSettings
    from vode_ros.runtime.inference import OnnxModel

    share = FrameShare()
    depth = DepthPipeline(OnnxModel(models_dir / "depth.onnx", ["CPUExecutionProvider"], expected_kind="depth"),
                          DepthSettings(scale_mode="stereo", have_stereo=True), share)
    pose_model = OnnxModel(models_dir / "pose.onnx", ["CPUExecutionProvider"], expected_kind="pose")
    odom = OdometryPipeline(pose_model, OdometrySettings(PoseEstimatorConfig(pose_source="hybrid"), "stereo", MOUNT),
                            shared=share)
    for i in range(4):
        d = depth.step(seq.left[i], "mono8", _ns(seq, i), seq.k, right=seq.right[i], baseline=seq.baseline)
        o = _step(odom, seq, i)
    assert share.computed["sgbm"] == 4 and share.shared["sgbm"] == 4
    # The shipped depth and pose nets take the same input: preprocessed once per frame too.
    assert share.computed["net_input"] == 4 and share.shared["net_input"] == 4
    assert o.estimate.source == "hybrid"
    assert depth.scaler.updates == 4 and np.isfinite(d.scale) and d.scale > 0
    # The scaled depth is the stereo depth's scale: median ratio to the exact depth near 1.
    truth = seq.depth[3]
    import cv2

    truth = cv2.resize(truth, d.depth.shape[::-1], interpolation=cv2.INTER_NEAREST)
    ok = truth > 0
    assert np.median(d.depth[ok] / truth[ok]) == pytest.approx(1.0, abs=0.15)


@pytest.mark.needs_models
def test_net_source_integrates_the_nets_motions_without_image_work_for_the_geometry(seq, models_dir):
    from vode_ros.runtime.inference import OnnxModel, PoseNet

    model = OnnxModel(models_dir / "pose.onnx", ["CPUExecutionProvider"], expected_kind="pose")
    p = OdometryPipeline(model, OdometrySettings(PoseEstimatorConfig(pose_source="net"), "none", MOUNT))
    net, want, prev = PoseNet(model), np.eye(4), None
    for i in range(5):
        s = _step(p, seq, i)
        cur = model.preprocess(seq.left[i], "mono8")
        if prev is not None:
            want = want @ net(cur, prev)
        prev = cur
        np.testing.assert_allclose(_camera_pose(s), want, atol=1e-9)
    assert s.estimate.source == "net" and p.frontend.stats.frames == 5
    assert not p.frontend.estimator.started                 # no corners, no resizing: the geometry never ran
    np.testing.assert_allclose(s.estimate.covariance, PoseEstimatorConfig().net_covariance())
