"""Fuzz of the nodes' input path over real DDS: random encodings, sizes, steps, data lengths,
endianness and CameraInfo K values. Whatever arrives, the nodes never raise (the executor thread
and the workers live on) and every frame is accounted for: in = out + dropped + rejected once idle.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image

from ros_helpers import Harness, ensure_rclpy

pytestmark = [pytest.mark.ros]

ENCODINGS = ["mono8", "rgb8", "bgr8", "rgba8", "bgra8", "32FC1", "16UC1", "bayer_rggb8", "yuv422", "", "MONO8", "rgb16"]
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                   st.sampled_from([0.0, -1.0, 1e-300, 1e300, math.nan, math.inf, -math.inf, 20.0, 300.0]))


@pytest.fixture(scope="module")
def harness(models_dir):
    ensure_rclpy()
    from vode_ros.nodes.depth_node import DepthNode
    from vode_ros.nodes.odometry_node import OdometryNode

    params = [Parameter("model_dir", value=str(models_dir))]
    depth = DepthNode(parameter_overrides=params)
    odom = OdometryNode(parameter_overrides=params + [Parameter("pose_source", value="net")])
    h = Harness([depth, odom])
    h.stamp = 5000.0
    assert h.wait_connected(subscribers=2, timeout=60)
    yield h
    h.close()


CHANNELS = {"mono8": 1, "rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "32FC1": 4, "16UC1": 2, "rgb16": 6}
GOOD_K = [20.0, 0.0, 8.0, 0.0, 20.0, 8.0, 0.0, 0.0, 1.0]


@st.composite
def camera_input(draw):
    # Mostly plausible sizes (so that the decoder itself is reached), sometimes the edges.
    def side() -> int:
        if draw(st.integers(0, 7)) == 7:
            return draw(st.sampled_from([0, 1, 15, 100_000, 2**31 - 1]))
        return draw(st.integers(min_value=16, max_value=40))

    width, height = side(), side()
    encoding = draw(st.sampled_from(ENCODINGS))
    row = width * CHANNELS.get(encoding, 1)
    step = draw(st.one_of(st.just(row), st.just(row), st.integers(row, row + 8), st.integers(0, 200),
                          st.sampled_from([2**32 - 1])))
    step = min(step, 2**32 - 1)
    full = step * height if step * height < 200_000 else 3000
    n_bytes = draw(st.one_of(st.just(full), st.just(full), st.integers(max(0, full - 64), full),
                             st.integers(0, 3000)))
    k = draw(st.one_of(st.just(GOOD_K), st.just(GOOD_K), st.lists(FLOATS, min_size=9, max_size=9)))
    info_size = draw(st.one_of(st.just((width, height)), st.just((width, height)),
                               st.tuples(st.integers(0, 40), st.integers(0, 40))))
    data = np.random.default_rng(n_bytes).integers(0, 256, n_bytes, dtype=np.uint8).tobytes()
    return {"width": width, "height": height, "encoding": encoding, "step": step, "data": data,
            "big": draw(st.booleans()), "k": k, "info_size": info_size}


def _publish(h, x) -> None:
    h.stamp += 0.1
    sec, nsec = int(h.stamp), int(round((h.stamp % 1) * 1e9))
    info = CameraInfo(width=x["info_size"][0], height=x["info_size"][1], k=x["k"])
    img = Image(width=x["width"], height=x["height"], encoding=x["encoding"], step=x["step"],
                is_bigendian=int(x["big"]), data=x["data"])
    for m in (info, img):
        m.header.stamp.sec, m.header.stamp.nanosec = sec, nsec
        m.header.frame_id = "camera_left_optical_frame"
    h.info_pub.publish(info)
    h.image_pub.publish(img)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(x=camera_input())
def test_random_input_never_raises_and_is_always_accounted(harness, x):
    """random encodings, sizes, steps, data lengths, endianness and K values (hypothesis, 120 cases) | never a
    raise; every frame ends as out, dropped or rejected (with its reason)
    """
    h = harness
    nodes = h.nodes
    before = [n.accounts.frames_in for n in nodes]
    _publish(h, x)
    assert h.wait_for(lambda: all(n.accounts.frames_in > b for n, b in zip(nodes, before))
                      and all(n.accounts.frames_pending == 0 for n in nodes), 30.0), \
        [n.accounts.snapshot() for n in nodes]
    assert h.thread.is_alive(), "the executor thread died"
    for n in nodes:
        s = n.accounts.snapshot()
        assert s.balanced() and s.frames_in == s.frames_out + s.frames_dropped + s.frames_rejected, s
        assert n.worker._thread.is_alive()
    assert "internal_error" not in nodes[0].accounts.snapshot().rejected, nodes[0].last_problem


