"""Node behaviour under a clumsy or hostile user, with real rclpy over DDS: a metric-trust change while
running, stereo with reliable input on nodes slower than the camera, large images on best-effort input.

Each test's docstring is a row of docs/reliability.md (scripts/reliability_table.py).
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from rcl_interfaces.msg import Log
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from vode_ros.core.kitti import load_sequence, read_image

from ros_helpers import Harness, ensure_rclpy

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.needs_data, pytest.mark.needs_models]
ROSOUT = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
KEEP_ALL = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture(scope="module")
def seq(kitti_dir):
    return load_sequence(kitti_dir, max_frames=40)


def _image(img: np.ndarray, stamp: float, frame: str) -> Image:
    msg = Image(height=img.shape[0], width=img.shape[1], encoding="mono8", step=img.shape[1], data=img.tobytes())
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int(round((stamp % 1) * 1e9))
    msg.header.frame_id = frame
    return msg


def _settled(node, timeout: float = 60.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if node.accounts.frames_pending == 0 and node.worker.wait_idle(0.5):
            return True
        time.sleep(0.1)
    return False


def test_metric_trust_that_flips_while_running_is_said_each_time(models_dir, seq):
    """`ros2 param set /depth_node domain indoor` on a running depth node fed KITTI frames (a driving model), then
    back to driving, then indoor again | every frame is processed (before: one frame rejected as
    `processing_failed: Logger severity cannot be changed between calls`); the "depth is relative" warning is logged
    each time the model stops being trusted, and vode/status names the scale source
    """
    ensure_rclpy()
    from rclpy.parameter_client import AsyncParameterClient

    from vode_ros.nodes.depth_node import DepthNode

    depth = DepthNode(parameter_overrides=[Parameter("model_dir", value=str(models_dir))])
    h = Harness([depth])
    logs: list[Log] = []
    h.probe.create_subscription(Log, "/rosout", logs.append, ROSOUT)
    client = AsyncParameterClient(h.probe, "/depth_node")
    try:
        assert h.wait_connected() and client.wait_for_services(10.0)
        t = 3000.0
        for domain in ("", "indoor", "driving", "indoor"):
            if domain:      # as `ros2 param set`: through the node's parameter service
                future = client.set_parameters([Parameter("domain", value=domain)])
                assert h.wait_for(future.done, 10.0) and future.result().results[0].successful
            for _ in range(2):
                before = depth.frames_out
                h.publish_frame(read_image(seq.left[int(t) % len(seq)]), "mono8", seq.k, t)
                assert h.wait_for(lambda b=before: depth.frames_out > b or depth.frames_rejected, 30.0)
                t += 0.1
        assert _settled(depth)
        snap = depth.accounts.snapshot()
        assert snap.rejected == {} and snap.frames_out == 8, snap
        warnings = [m.msg for m in logs if m.name == "depth_node" and m.level == 30 and "depth is relative" in m.msg]
        assert len(warnings) == 2, [m.msg for m in logs if m.name == "depth_node"]
        assert "this camera is indoor" in warnings[0]
        assert h.wait_for(lambda: h.got["status"] and "depth is relative" in h.got["status"][-1].scale_source, 10.0)
    finally:
        h.close()


class _SlowDepthNode:
    """The depth node with a fixed delay per frame: a node slower than the camera (made in the test, so the
    node's own code is what runs)."""

    delay_s = 0.2

    @classmethod
    def make(cls, **kwargs):
        from vode_ros.nodes.depth_node import DepthNode

        class SlowDepthNode(DepthNode):
            def process(self, frame):
                time.sleep(cls.delay_s)
                super().process(frame)

        return SlowDepthNode(**kwargs)


def _stereo_pairs(h, seq, n: int, t0: float, hz: float, lag: int, left_pub, right_pub, info_pub, right_info_pub):
    """n pairs at `hz`, each left CameraInfo + image, the right ones `lag` frames later (a late right camera)."""
    from vode_ros.core.kitti import read_image as read

    baseline = seq.baseline or 0.54

    def right(i: int) -> None:
        t = t0 + i / hz
        rinfo = h.camera_info(seq.k, *seq.image_size, t, "camera_right_optical_frame")
        p = np.array(rinfo.p).reshape(3, 4)
        p[0, 3] = -seq.k[0, 0] * baseline
        rinfo.p = p.reshape(-1).tolist()
        right_info_pub.publish(rinfo)
        right_pub.publish(_image(read(seq.right[i % len(seq)]), t, "camera_right_optical_frame"))

    for i in range(n + lag):
        t = t0 + i / hz
        if i < n:
            info_pub.publish(h.camera_info(seq.k, *seq.image_size, t, "camera_left_optical_frame"))
            left_pub.publish(_image(read(seq.left[i % len(seq)]), t, "camera_left_optical_frame"))
        if i >= lag:
            right(i - lag)
        time.sleep(1.0 / hz)


@pytest.mark.needs_stereo_data
@pytest.mark.parametrize("lag", [0, 6], ids=["together", "right_6_frames_late"])
def test_reliable_stereo_on_a_node_slower_than_the_camera_processes_every_pair(models_dir, seq, lag):
    """stereo with reliable_input on a node slower than the camera (40 pairs at 20 Hz, 0.2 s of work each,
    reliable_queue_size 2), both cameras together or the right one 6 frames late | every pair is processed, in
    stamp order: the right camera has its own callback group, back-pressure holds each camera per pair, a late
    right image is matched by stamp (not called silent), nothing is `stereo_unpaired`; in = out + dropped +
    rejected + pending at every moment; left images whose right ones never come go on alone after stereo_timeout
    of silence or, already waiting, are given up then (`stereo_unpaired`): nothing stays pending (before: pairs
    rejected as `stereo_unpaired` once the lefts ran ahead of their partners by the pairer's queue, and "the right
    camera is silent; left images go on alone")
    """
    ensure_rclpy()
    params = [Parameter("model_dir", value=str(models_dir)), Parameter("mode", value="stereo"),
              Parameter("reliable_input", value=True), Parameter("reliable_queue_size", value=2),
              Parameter("scale_mode", value="stereo")]
    depth = _SlowDepthNode.make(parameter_overrides=params)
    h = Harness([depth])
    left_pub = h.probe.create_publisher(Image, "/camera/left/image_raw", KEEP_ALL)
    info_pub = h.probe.create_publisher(CameraInfo, "/camera/left/camera_info", KEEP_ALL)
    right_pub = h.probe.create_publisher(Image, "/camera/right/image_raw", KEEP_ALL)
    right_info_pub = h.probe.create_publisher(CameraInfo, "/camera/right/camera_info", KEEP_ALL)
    stamps: list[float] = []
    h.probe.create_subscription(Image, "/depth/image", lambda m: stamps.append(m.header.stamp.sec
                                                                               + m.header.stamp.nanosec * 1e-9),
                                QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    n = 40
    try:
        assert h.wait_for(lambda: all(p.get_subscription_count() >= 1 for p in (left_pub, info_pub, right_pub,
                                                                                 right_info_pub)), 20.0)
        time.sleep(0.5)
        balanced = []
        sampler_stop = []

        def sample():
            while not sampler_stop:
                balanced.append(depth.accounts.snapshot().balanced())
                time.sleep(0.01)

        import threading

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _stereo_pairs(h, seq, n, 4000.0 + 100 * lag, 20.0, lag, left_pub, right_pub, info_pub, right_info_pub)
        assert _settled(depth, 90.0)
        snap = depth.accounts.snapshot()
        assert snap.frames_in == n and snap.frames_out == n and snap.rejected == {} and snap.frames_dropped == 0, snap
        assert "right_camera_silent" not in depth._problems, depth._problems
        assert h.wait_for(lambda: len(stamps) == n, 10.0) and stamps == sorted(stamps), (len(stamps), snap)
        # Two left images whose right ones never come: each goes on alone (the right camera silent for
        # stereo_timeout) or, already waiting for a partner, is given up after it; nothing stays pending.
        for i in range(2):
            t = 5000.0 + 100 * lag + 0.05 * i
            info_pub.publish(h.camera_info(seq.k, *seq.image_size, t, "camera_left_optical_frame"))
            left_pub.publish(_image(read_image(seq.left[i]), t, "camera_left_optical_frame"))
        ended = lambda: depth.accounts.snapshot().frames_in == n + 2 and _settled(depth, 0.5)  # noqa: E731
        assert h.wait_for(ended, 15.0), (depth.accounts.snapshot(), len(depth.inputs.pairer.left))
        sampler_stop.append(True)
        sampler.join(2.0)
        snap = depth.accounts.snapshot()
        assert snap.frames_out + snap.rejected.get("stereo_unpaired", 0) == n + 2 and snap.balanced(), snap
        assert all(balanced) and len(balanced) > 10
    finally:
        h.close()


# A camera in another process: N images of W x H, best effort (sensor data QoS), at 4 Hz, then it stays up.
BIG_IMAGES = """
import sys, time
import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
w, h, enc, seconds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
rclpy.init()
node = rclpy.create_node("big_camera")
pub = node.create_publisher(Image, "/camera/left/image_raw", qos_profile_sensor_data)
ch = 1 if enc == "mono8" else 3
data = np.random.default_rng(0).integers(0, 255, (h, w, ch), dtype=np.uint8).tobytes()
end, i = time.monotonic() + seconds, 0
while time.monotonic() < end:
    msg = Image(height=h, width=w, encoding=enc, step=w * ch, data=data)
    msg.header.stamp.sec = 7000 + i
    pub.publish(msg)
    i += 1
    time.sleep(0.25)
print(i, flush=True)
"""


@pytest.mark.parametrize("case", ["large_best_effort", "best_effort_into_reliable"])
def test_a_topic_with_publishers_and_no_images_is_said_once(models_dir, case):
    """images of 1920x1080 bgr8 published best effort from another process (DDS drops such samples whole:
    rgb8 640x480 2 of 8, 1226x370 0 of 8 here), or a best-effort camera into reliable_input | after 5 s the node
    says once on the log and keeps on /diagnostics (`images_not_arriving`) that the topic has publishers and no
    image arrived, with the fixes: reliable input, image_transport compressed, a shared-memory transport, a
    smaller image (or, for the QoS mismatch, that the two do not match); the node keeps running (before: nothing
    was said)
    """
    import subprocess
    import sys

    ensure_rclpy()
    from vode_ros.nodes.depth_node import DepthNode

    reliable = case == "best_effort_into_reliable"
    depth = DepthNode(parameter_overrides=[Parameter("model_dir", value=str(models_dir)),
                                           Parameter("reliable_input", value=reliable)])
    h = Harness([depth])
    logs: list[Log] = []
    h.probe.create_subscription(Log, "/rosout", logs.append, ROSOUT)
    size = ["640", "480", "mono8"] if reliable else ["1920", "1080", "bgr8"]
    camera = subprocess.Popen([sys.executable, "-c", BIG_IMAGES, *size, "12"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        said = lambda: [m.msg for m in logs if m.name == "depth_node" and "no image arrived in 5 s" in m.msg]  # noqa: E731
        assert h.wait_for(lambda: said(), 25.0), [m.msg for m in logs if m.name == "depth_node"]
        (line,) = said()
        assert "/camera/left/image_raw has 2 publishers but no image arrived" in line     # the camera and the probe
        if reliable:
            assert "best effort and reliable_input subscribes reliable, so they do not match" in line
        else:
            for fix in ("reliable_input:=true", "image_transport:=compressed", "config/fastdds_large_images.xml",
                        "a smaller image"):
                assert fix in line
        assert h.wait_for(lambda: any(kv.key == "problem_images_not_arriving" for d in h.got["diag"][-2:]
                                      for s in d.status for kv in s.values), 5.0)
        if reliable:
            assert depth.frames_in == 0      # a QoS mismatch lets nothing through; a 1080p image now and then does
        time.sleep(2.0)
        assert len(said()) == 1, "said more than once"
    finally:
        camera.wait(30)
        h.close()


def _beyond(spec, side: str):
    """A value just outside a bound of `spec` (same type as its default), or None."""
    bound = spec.low if side == "low" else spec.high
    if bound is None:
        return None
    step = 1 if isinstance(spec.default, int) and not isinstance(spec.default, bool) else max(abs(bound) * 0.01, 1e-3)
    value = bound - step if side == "low" else bound + step
    if isinstance(spec.default, list):
        return [type(spec.default[0])(value)] * len(spec.default) if spec.default else None
    return type(spec.default)(value)


def test_every_parameter_at_and_beyond_its_bounds(models_dir, seq):
    """every numeric parameter of both nodes set (as `ros2 param set`) to its lowest and highest allowed value, and
    just beyond each | at a bound: applied (or, read at start-up only, refused with "restart"); beyond: refused with
    the range in the reason, the old value kept; afterwards both nodes still process a frame and their accounts
    balance
    """
    ensure_rclpy()
    from vode_ros.nodes.depth_node import DepthNode
    from vode_ros.nodes.odometry_node import OdometryNode

    params = [Parameter("model_dir", value=str(models_dir))]
    depth, odom = DepthNode(parameter_overrides=params), OdometryNode(parameter_overrides=params)
    h = Harness([depth, odom])
    tried = 0
    try:
        assert h.wait_connected(subscribers=2)
        for node in (depth, odom):
            for name, spec in node.params.specs.items():
                if spec.low is None and spec.high is None or name in ("threads",):   # threads: a model reload each
                    continue
                old = node.get_parameter(name).value
                for side in ("low", "high"):
                    bound = spec.low if side == "low" else spec.high
                    if bound is None:
                        continue
                    value = type(spec.default)(bound) if not isinstance(spec.default, list) else \
                        [type(spec.default[0])(bound)] * len(spec.default)
                    (r,) = node.set_parameters([Parameter(name, value=value)])
                    assert r.successful or (not spec.live and "restart" in r.reason), (name, value, r.reason)
                    bad = _beyond(spec, side)
                    if bad is not None:
                        before = node.get_parameter(name).value
                        (r,) = node.set_parameters([Parameter(name, value=bad)])
                        assert not r.successful and r.reason, (name, bad)
                        assert list(np.atleast_1d(node.get_parameter(name).value)) == list(np.atleast_1d(before))
                    tried += 1
                node.set_parameters([Parameter(name, value=old)])
        assert tried >= 20, tried
        for i in range(2):
            before = (depth.frames_out, odom.frames_out)
            h.publish_frame(read_image(seq.left[i]), "mono8", seq.k, 9000.0 + 0.1 * i)
            assert h.wait_for(lambda b=before: depth.frames_out > b[0] and odom.frames_out > b[1], 30.0)
        for node in (depth, odom):
            assert _settled(node) and node.accounts.snapshot().balanced()
    finally:
        h.close()
