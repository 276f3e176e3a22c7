"""The depth and odometry nodes with real rclpy in one process: outputs, conventions, bad input."""
from __future__ import annotations

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.parameter import Parameter

from vode_ros.core.kitti import load_sequence, read_image

from ros_helpers import Harness, ensure_rclpy

pytestmark = [pytest.mark.slow, pytest.mark.ros]


@pytest.fixture(scope="module")
def harness(models_dir):
    ensure_rclpy()
    from vode_ros.nodes.depth_node import DepthNode
    from vode_ros.nodes.odometry_node import OdometryNode

    params = [Parameter("model_dir", value=str(models_dir))]
    h = Harness([DepthNode(parameter_overrides=params), OdometryNode(parameter_overrides=params)])
    assert h.wait_connected(subscribers=2), "nodes did not subscribe"
    yield h
    h.close()


@pytest.fixture(scope="module")
def seq(kitti_dir):
    return load_sequence(kitti_dir, max_frames=6)


def _send(h, seq, encodings, t0=100.0):
    # Odometry and its TF arrive on two topics: wait for both, or the last of each can differ.
    n_odom, n_depth, n_tf = len(h.got["odom"]), len(h.got["depth"]), len(h.got["tf"])
    for i, enc in enumerate(encodings):
        grey = read_image(seq.left[i])
        img = {"mono8": grey, "rgb8": np.dstack([grey] * 3), "bgr8": np.dstack([grey] * 3)}[enc]
        h.publish_frame(img, enc, seq.k, t0 + 0.1 * i)
        h.wait_for(lambda n=i: len(h.got["odom"]) > n_odom + n and len(h.got["depth"]) > n_depth + n
                   and len(h.got["tf"]) > n_tf + n, 10.0)


def test_depth_odometry_and_tf(harness, seq):
    h = harness
    n0 = len(h.got["depth"])
    _send(h, seq, ["mono8", "rgb8", "bgr8", "mono8"])
    assert len(h.got["depth"]) - n0 == 4
    depth = h.got["depth"][-1]
    # REP-118: 32FC1 in metres, the input's header.
    assert depth.encoding == "32FC1"
    assert depth.header.frame_id == "camera_left_optical_frame"
    assert depth.header.stamp.sec == 100 and abs(depth.header.stamp.nanosec - 3e8) < 1e3
    arr = np.frombuffer(bytes(depth.data), np.float32).reshape(depth.height, depth.width)
    assert np.all(np.isfinite(arr)) and arr.min() > 0
    info = h.got["depth_info"][-1]
    assert (info.width, info.height) == (depth.width, depth.height)
    # K rescaled to the network input.
    assert info.k[0] == pytest.approx(seq.k[0, 0] * depth.width / seq.image_size[0], rel=1e-6)
    # Odometry and TF (REP-105).
    odom = h.got["odom"][-1]
    assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_link")
    assert len(odom.pose.covariance) == 36 and odom.pose.covariance[0] > 0
    tf = h.got["tf"][-1].transforms[0]
    assert (tf.header.frame_id, tf.child_frame_id) == ("odom", "base_link")
    assert tf.header.stamp == odom.header.stamp
    static = [t for m in h.got["tf_static"] for t in m.transforms]
    assert any(t.header.frame_id == "base_link" and t.child_frame_id == "camera_left_optical_frame" for t in static)
    # The optical frame: camera z (forward) is base x, so the mount rotation maps (0,0,1) -> (1,0,0).
    mount = [t for t in static if t.child_frame_id == "camera_left_optical_frame"][0]
    assert mount.transform.translation.z == pytest.approx(1.65)
    status = [s for s in h.got["status"] if s.node == "pose"]
    assert status and status[-1].provider == "CPUExecutionProvider"


def test_unsupported_encoding_is_rejected_and_node_keeps_running(harness, seq):
    h = harness
    depth_before = len(h.got["depth"])
    bad = np.zeros((seq.image_size[1], seq.image_size[0]), np.uint16)
    h.publish_frame(bad, "16UC1", seq.k, 200.0)
    assert h.wait_for(lambda: any(
        s.message and "unsupported encoding '16UC1'" in s.message and s.level == DiagnosticStatus.WARN
        for d in h.got["diag"] for s in d.status), 5.0), "no WARN diagnostics naming the encoding"
    assert len(h.got["depth"]) == depth_before
    _send(h, seq, ["mono8"], t0=300.0)   # still alive
    assert len(h.got["depth"]) == depth_before + 1


def test_image_size_mismatch_with_camera_info_is_rejected(harness, seq):
    h = harness
    before = len(h.got["depth"])
    grey = read_image(seq.left[0])
    h.publish_frame(grey, "mono8", seq.k, 400.0, info_size=(640, 480))
    assert h.wait_for(lambda: any("CameraInfo says 640x480" in s.message for d in h.got["diag"] for s in d.status), 5.0)
    assert len(h.got["depth"]) == before


def test_time_going_backwards_resets_odometry(harness, seq):
    h = harness
    _send(h, seq, ["mono8", "mono8"], t0=500.0)
    _send(h, seq, ["mono8"], t0=10.0)   # a bag loop
    odom = h.got["odom"][-1]
    # A reset starts the trajectory again at the odom origin.
    p = odom.pose.pose.position
    assert (p.x, p.y, p.z) == (0.0, 0.0, 0.0)
