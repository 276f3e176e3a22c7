"""With real rclpy: every bad input is answered (rejected with a reason, counted, on
/diagnostics and vode/status), every parameter is checked at run time, nothing stalls.

Each test's docstring is the row of docs/reliability.md (scripts/reliability_table.py).
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from rcl_interfaces.msg import Log
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from vode_ros.core.kitti import load_sequence, read_image

from ros_helpers import Harness, ensure_rclpy

pytestmark = [pytest.mark.ros, pytest.mark.slow]
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture(scope="module")
def seq(kitti_dir):
    return load_sequence(kitti_dir, max_frames=6)


@pytest.fixture(scope="module")
def harness(models_dir):
    ensure_rclpy()
    from vode_ros.nodes.depth_node import DepthNode
    from vode_ros.nodes.odometry_node import OdometryNode

    params = [Parameter("model_dir", value=str(models_dir))]
    depth, odom = DepthNode(parameter_overrides=params), OdometryNode(parameter_overrides=params)
    h = Harness([depth, odom])
    h.depth, h.odom = depth, odom
    h.logs = []
    rosout = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    h.probe.create_subscription(Log, "/rosout", h.logs.append, rosout)
    assert h.wait_connected(subscribers=2), "nodes did not subscribe"
    yield h
    h.close()


def _idle(h, timeout: float = 30.0) -> bool:
    return h.wait_for(lambda: all(n.accounts.frames_pending == 0 for n in (h.depth, h.odom)), timeout)


def _balanced(node) -> bool:
    s = node.accounts.snapshot()
    return s.balanced() and s.frames_pending == 0 and s.frames_in == s.frames_out + s.frames_dropped + s.frames_rejected


def _send_good(h, seq, t0: float, n: int = 2) -> None:
    for i in range(n):
        before = (h.depth.frames_out, h.odom.frames_out)
        h.publish_frame(read_image(seq.left[i]), "mono8", seq.k, t0 + 0.1 * i)
        assert h.wait_for(lambda b=before: h.depth.frames_out > b[0] and h.odom.frames_out > b[1], 30.0)


def _rejected(node, reason: str) -> int:
    return node.accounts.snapshot().rejected.get(reason, 0)


def _raw_image(width: int, height: int, encoding: str = "mono8", data: bytes = b"", stamp: float = 1.0) -> Image:
    msg = Image(width=width, height=height, encoding=encoding, step=width, data=data)
    msg.header.stamp.sec = int(stamp)
    msg.header.frame_id = "camera_left_optical_frame"
    return msg


@pytest.mark.parametrize("bad", ["nan", "inf", "fy0", "fyneg"])
def test_camera_info_with_nan_inf_or_bad_focal_is_refused(harness, seq, bad):
    """CameraInfo with NaN / Inf in K, or fy <= 0 | images rejected (`camera_info_invalid`) until a good
    CameraInfo arrives; no depth/camera_info with such a K goes out
    """
    h = harness
    k = seq.k.copy()
    k[{"nan": (0, 0), "inf": (0, 2), "fy0": (1, 1), "fyneg": (1, 1)}[bad]] = {
        "nan": math.nan, "inf": math.inf, "fy0": 0.0, "fyneg": -5.0}[bad]
    before = _rejected(h.depth, "camera_info_invalid")
    n_info = len(h.got["depth_info"])
    t0 = 1000.0 + 10 * ["nan", "inf", "fy0", "fyneg"].index(bad)
    h.publish_frame(read_image(seq.left[0]), "mono8", k, t0)
    assert h.wait_for(lambda: _rejected(h.depth, "camera_info_invalid") > before, 20.0)
    assert h.wait_for(lambda: any("camera_info_invalid" in kv.key and kv.value != "0" for d in h.got["diag"]
                                  for s in d.status for kv in s.values), 10.0)
    _send_good(h, seq, t0 + 1.0, n=1)       # a good CameraInfo: processing resumes
    assert all(np.all(np.isfinite(m.k)) for m in h.got["depth_info"][n_info:])
    assert _idle(h) and _balanced(h.depth) and _balanced(h.odom)


def test_camera_info_whose_distortion_cannot_be_undone_leaves_images_unrectified(harness, seq):
    """CameraInfo with plumb_bob but 3 coefficients in D | images processed as they come, with the raw K (as
    before rectification existed), WARN `rectify_unavailable` naming the model and the count
    """
    h = harness
    before = (h.depth.frames_out, h.odom.frames_out)
    h.publish_frame(read_image(seq.left[0]), "mono8", seq.k, 1050.0, d=(-0.2, 0.05, 0.001))
    assert h.wait_for(lambda: h.depth.frames_out > before[0] and h.odom.frames_out > before[1], 30.0)
    assert "plumb_bob' takes 5 coefficients, D has 3" in h.depth._problems["rectify_unavailable"][0]
    assert h.depth.inputs.rectifying["/camera/left/image_raw"].startswith("unavailable")
    assert _idle(h) and _balanced(h.depth) and _balanced(h.odom)


def test_tiny_and_huge_images_are_rejected_before_decoding(harness, seq):
    """a 1x1 image; an 8000x6000 image (over max_image_pixels) | rejected (`image_too_small`, `image_too_large`)
    before decoding, with the size and the way out
    """
    h = harness
    before = _rejected(h.depth, "image_too_small") + _rejected(h.depth, "image_too_large")
    h.info_pub.publish(h.camera_info(seq.k, *seq.image_size, 1100.0, "camera_left_optical_frame"))
    h.image_pub.publish(_raw_image(1, 1, data=b"\x80", stamp=1100.0))
    # The header's size is checked first: a huge frame costs nothing even before its data is looked at.
    h.image_pub.publish(_raw_image(8000, 6000, data=b"\x00" * 8000, stamp=1100.1))
    assert h.wait_for(lambda: _rejected(h.depth, "image_too_small") + _rejected(h.depth, "image_too_large")
                      >= before + 2, 20.0)
    assert h.wait_for(lambda: any("max_image_pixels" in m.msg for m in h.logs), 10.0)
    assert _idle(h) and _balanced(h.depth) and _balanced(h.odom)


def test_different_problems_are_each_logged(harness, seq):
    """two different problems within the log throttle interval | each reason has its own throttle: both are logged"""
    h = harness
    h.logs.clear()
    grey = read_image(seq.left[0])
    h.publish_frame(grey, "mono8", seq.k, 1200.0, info_size=(640, 480))             # size mismatch
    h.publish_frame(np.zeros_like(grey, dtype=np.uint16), "16UC1", seq.k, 1200.1)     # bad encoding
    assert h.wait_for(lambda: any("CameraInfo says 640x480" in m.msg for m in h.logs)
                      and any("unsupported encoding '16UC1'" in m.msg for m in h.logs), 20.0)


def test_status_is_published_while_only_bad_input_arrives(harness, seq):
    """only bad input, no good frame | vode/status still goes out (1 Hz) with the counts, /diagnostics WARN"""
    h = harness
    before = h.depth.frames_rejected
    grey = read_image(seq.left[0])
    for i in range(3):
        h.publish_frame(np.zeros_like(grey, dtype=np.uint16), "16UC1", seq.k, 1300.0 + i)
    assert h.wait_for(lambda: h.depth.frames_rejected == before + 3, 20.0)
    assert h.wait_for(lambda: any(s.node == "depth" and s.frames_rejected == before + 3 for s in h.got["status"]), 20.0)
    assert h.wait_for(lambda: h.got["diag"] and any(s.level == DiagnosticStatus.WARN for s in h.got["diag"][-1].status))


def test_identical_stamps_are_not_integrated(harness, seq):
    """two images with the same stamp | the second is rejected by the odometry node (`duplicate_stamp`): no
    motion over zero time
    """
    h = harness
    _send_good(h, seq, 1400.0, n=2)
    before, out = _rejected(h.odom, "duplicate_stamp"), h.odom.frames_out
    h.publish_frame(read_image(seq.left[2]), "mono8", seq.k, 1400.1)      # repeats the last stamp
    assert h.wait_for(lambda: _rejected(h.odom, "duplicate_stamp") > before, 20.0)
    assert h.odom.frames_out == out
    assert _idle(h) and _balanced(h.odom)


def test_forward_jump_from_stamp_zero_is_not_integrated(harness, seq):
    """stamps 0, then a jump forward (camera clock set late) | the motion across the gap (> max_frame_gap) is not
    integrated; logged as `stamp_gap`
    """
    h = harness
    h.publish_frame(read_image(seq.left[0]), "mono8", seq.k, 0.0)
    assert h.wait_for(lambda: h.got["odom"] and h.got["odom"][-1].header.stamp.sec == 0, 20.0)
    p0 = h.got["odom"][-1].pose.pose.position
    h.publish_frame(read_image(seq.left[3]), "mono8", seq.k, 1500.0)
    assert h.wait_for(lambda: h.got["odom"][-1].header.stamp.sec == 1500, 20.0)
    p1 = h.got["odom"][-1].pose.pose.position
    assert (p1.x, p1.y, p1.z) == (p0.x, p0.y, p0.z)
    assert "max_frame_gap" in h.odom._problems["stamp_gap"][0]


@pytest.mark.parametrize("name,value,why", [
    ("scale", -1.0, "out of range|>= 1e-06"), ("scale", math.nan, "out of range|finite"), ("scale_mode", "bogus", "use one of"),
    ("mode", "triple", "use one of mono, stereo"), ("providers", ["BogusProvider"], "unknown ONNX Runtime"),
    ("refine_iters", -1, "out of range|>= 1"), ("mount_xyz", [1.0], "needs 3 values"), ("image_topic", "/other", "restart"),
    ("rectify", "sometimes", "use one of auto, on, off"),
])
def test_bad_parameter_values_are_refused_with_a_reason(harness, name, value, why):
    """`ros2 param set` scale -1 / NaN, scale_mode bogus, mode triple, providers [BogusProvider], refine_iters
    -1, mount_xyz [1.0], rectify sometimes | refused with the reason; the old value stays in use (topics and mode: "restart the
    node")
    """
    node = harness.odom
    old = node.get_parameter(name).value
    (result,) = node.set_parameters([Parameter(name, value=value)])
    assert not result.successful and re.search(why, result.reason), result.reason
    assert node.get_parameter(name).value == old


def test_good_parameter_values_apply_live(harness, seq):
    """`ros2 param set` of a good value (scale, scale_mode, mount, frames, stereo_slop, camera_height) | applied
    at once; an integer for a double is taken
    """
    h = harness
    odom, depth = h.odom, h.depth
    assert all(r.successful for r in odom.set_parameters([Parameter("scale", value=2)]))   # integer for a double
    assert odom.net_scale == 2.0
    assert odom.set_parameters([Parameter("mount_xyz", value=[0.0, 0.0, 2.0])])[0].successful
    assert h.wait_for(lambda: any(t.transform.translation.z == 2.0 for m in h.got["tf_static"]
                                  for t in m.transforms), 10.0)
    assert odom.set_parameters([Parameter("odom_frame", value="map2")])[0].successful
    _send_good(h, seq, 1600.0, n=1)
    # the node has published; the probe's subscription may take the message a moment later
    assert h.wait_for(lambda: h.got["odom"] and h.got["odom"][-1].header.frame_id == "map2", 10.0)
    assert depth.set_parameters([Parameter("scale_mode", value="camera_height")])[0].successful
    assert depth.scaler.mode == "camera_height"
    assert depth.set_parameters([Parameter("camera_height", value=1.2)])[0].successful
    assert depth.scaler.camera_height == 1.2
    assert depth.set_parameters([Parameter("stereo_slop", value=0.05)])[0].successful and depth.inputs.pairer.slop == 0.05
    (r,) = depth.set_parameters([Parameter("scale_mode", value="stereo")])      # needs mode stereo
    assert not r.successful and "needs mode:=stereo" in r.reason
    for node, name, value in ((odom, "scale", 1.0), (odom, "mount_xyz", [0.0, 0.0, 1.65]), (odom, "odom_frame", "odom"),
                              (depth, "scale_mode", "model"), (depth, "camera_height", 1.65),
                              (depth, "stereo_slop", 0.02)):
        assert node.set_parameters([Parameter(name, value=value)])[0].successful


def test_bad_model_dir_at_run_time_keeps_the_model(harness, tmp_path):
    """`ros2 param set model_dir` to a folder without models | refused with the file named; the running model stays"""
    node = harness.depth
    path = node.model.path
    (r,) = node.set_parameters([Parameter("model_dir", value=str(tmp_path))])
    assert not r.successful and "model file not found" in r.reason and str(tmp_path) in r.reason
    assert node.model.path == path


def test_accounting_invariant_holds_at_every_moment(harness, seq):
    """a stream of good and bad frames | at any moment frames_in = out + dropped + rejected + pending (pending 0
    when idle); rejections counted per reason on /diagnostics
    """
    h = harness
    grey = read_image(seq.left[0])
    seen = []
    for i in range(12):
        if i % 3 == 0:
            h.publish_frame(grey, "16UC1" if i % 2 else "mono8", seq.k, 1700.0 + 0.1 * i, info_size=(640, 480))
        else:
            h.publish_frame(read_image(seq.left[i % 6]), "mono8", seq.k, 1700.0 + 0.1 * i)
        seen += [n.accounts.snapshot() for n in (h.depth, h.odom)]
    assert all(s.balanced() for s in seen)
    assert _idle(h) and _balanced(h.depth) and _balanced(h.odom)
    snap = h.depth.accounts.snapshot()

    def diag_matches() -> bool:
        if not h.got["diag"]:
            return False
        values = {kv.key: kv.value for s in h.got["diag"][-1].status if s.name.endswith("depth_node")
                  for kv in s.values}
        per_reason = sum(int(v) for k, v in values.items() if k.startswith("rejected_"))
        return values.get("frames_rejected") == str(snap.frames_rejected) == str(per_reason)

    assert h.wait_for(diag_matches, 10.0)


def test_stereo_right_camera_stops_nothing_stalls(models_dir, seq):
    """stereo mode, the right camera stops | left images go on alone after stereo_timeout (depth keeps the last
    scale, WARN `right_camera_silent`), in both nodes; the left images left without a partner are rejected
    (`stereo_unpaired`), so in = out + dropped + rejected
    """
    ensure_rclpy()
    from vode_ros.nodes.depth_node import DepthNode
    from vode_ros.nodes.odometry_node import OdometryNode

    common = [Parameter("model_dir", value=str(models_dir)), Parameter("mode", value="stereo"),
              Parameter("stereo_timeout", value=0.3)]
    depth = DepthNode(parameter_overrides=common + [Parameter("scale_mode", value="stereo")])
    odom = OdometryNode(parameter_overrides=common)
    h = Harness([depth, odom])
    right_pub = h.probe.create_publisher(Image, "/camera/right/image_raw", RELIABLE)
    right_info_pub = h.probe.create_publisher(CameraInfo, "/camera/right/camera_info", RELIABLE)
    try:
        assert h.wait_connected(subscribers=2) and h.wait_for(lambda: right_pub.get_subscription_count() >= 1)
        for i in range(3):       # pairs
            t = 2000.0 + 0.1 * i
            info = h.camera_info(seq.k, *seq.image_size, t, "camera_right_optical_frame")
            info.p[3] = -seq.k[0, 0] * seq.baseline
            right_info_pub.publish(info)
            img = read_image(seq.right[i])
            right = Image(height=img.shape[0], width=img.shape[1], encoding="mono8", step=img.shape[1],
                          data=img.tobytes())
            right.header.stamp.sec, right.header.stamp.nanosec = int(t), int(round((t % 1) * 1e9))
            right_pub.publish(right)
            h.publish_frame(read_image(seq.left[i]), "mono8", seq.k, t)
            assert h.wait_for(lambda n=i: depth.frames_out > n and odom.frames_out > n, 30.0)
        for i in range(3, 9):    # the right camera has stopped
            h.publish_frame(read_image(seq.left[i % 6]), "mono8", seq.k, 2000.0 + 0.1 * i)
            assert h.wait_for(lambda n=i: odom.accounts.frames_in > n and odom.accounts.frames_pending < 5, 30.0)
        assert h.wait_for(lambda: depth.frames_out >= 5, 30.0), depth.accounts.snapshot()
        assert h.wait_for(lambda: all(n.accounts.frames_pending == 0 for n in (depth, odom)), 30.0)
        for node in (depth, odom):
            snap = node.accounts.snapshot()
            assert snap.frames_in == 9 and snap.frames_in == snap.frames_out + snap.frames_dropped + snap.frames_rejected
            assert snap.frames_rejected == snap.rejected.get("stereo_unpaired", 0)
        assert "right_camera_silent" in depth._problems
    finally:
        h.close()



def test_reliable_input_keeps_frames_that_come_before_their_camera_info(models_dir, seq):
    """reliable_input, stereo: images and pairs that arrive before the first left / right CameraInfo | they wait
    for it (up to reliable_queue_size) and are all processed: nothing lost in a lossless replay
    """
    ensure_rclpy()
    from vode_ros.nodes.depth_node import DepthNode

    node = DepthNode(parameter_overrides=[Parameter("model_dir", value=str(models_dir)),
                                          Parameter("mode", value="stereo"), Parameter("reliable_input", value=True)])
    h = Harness([node])
    right_pub = h.probe.create_publisher(Image, "/camera/right/image_raw", RELIABLE)
    right_info_pub = h.probe.create_publisher(CameraInfo, "/camera/right/camera_info", RELIABLE)
    try:
        assert h.wait_connected() and h.wait_for(lambda: right_pub.get_subscription_count() >= 1
                                                 and right_info_pub.get_subscription_count() >= 1)
        for i in range(3):
            t = 6000.0 + 0.1 * i
            for pub, path, frame in ((h.image_pub, seq.left[i], "camera_left_optical_frame"),
                                     (right_pub, seq.right[i], "camera_right_optical_frame")):
                img = read_image(path)
                msg = Image(height=img.shape[0], width=img.shape[1], encoding="mono8", step=img.shape[1],
                            data=img.tobytes())
                msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int(round((t % 1) * 1e9))
                msg.header.frame_id = frame
                pub.publish(msg)
        assert h.wait_for(lambda: node.accounts.frames_in == 3, 30.0)
        h.info_pub.publish(h.camera_info(seq.k, *seq.image_size, 6000.0, "camera_left_optical_frame"))
        assert h.wait_for(lambda: node.inputs.pairer.left == [] or len(node.inputs.parked_pairs) > 0 or node.frames_out > 0, 30.0)
        info = h.camera_info(seq.k, *seq.image_size, 6000.0, "camera_right_optical_frame")
        info.p[3] = -seq.k[0, 0] * seq.baseline
        right_info_pub.publish(info)
        assert h.wait_for(lambda: node.frames_out == 3, 60.0), node.accounts.snapshot()
        assert node.frames_rejected == 0
    finally:
        h.close()
