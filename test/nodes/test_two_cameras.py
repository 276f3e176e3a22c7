"""Two cameras side by side: two `vode run --namespace camN --frame-prefix camN/` processes on
one DDS domain publish under their own namespace and TF frames, with no clash."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from nav_msgs.msg import Odometry
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from tf2_msgs.msg import TFMessage

from vode_ros.core.kitti import load_sequence, read_image
from vode_ros.nodes.adaptation_hook import default_save_dir

from ros_helpers import Harness, ensure_rclpy

pytestmark = [pytest.mark.ros, pytest.mark.slow]
CAMERAS = ("cam1", "cam2")


def test_default_adaptation_folder_is_per_namespace():
    """two cameras adapting online with adapt_save_dir '' | each namespace saves into its own folder"""
    base = Path.home() / ".ros" / "vode_ros" / "adapted"
    assert default_save_dir("/") == base
    assert default_save_dir("/cam1") == base / "cam1" != default_save_dir("/cam2")


def test_two_namespaced_instances_do_not_clash(models_dir, kitti_dir):
    """two instances, --namespace cam1 / cam2 and --frame-prefix cam1/ / cam2/ | outputs under /cam1 and /cam2,
    TF frames cam1/odom -> cam1/base_link -> cam1/camera_left_optical_frame and the same for cam2
    """
    ensure_rclpy()
    seq = load_sequence(kitti_dir, max_frames=3)
    procs = [subprocess.Popen([sys.executable, "-m", "vode_ros.cli.main", "run", "--model-dir", str(models_dir),
                               "--namespace", cam, "--frame-prefix", f"{cam}/", "--reliable-input"],
                              env=dict(os.environ),                 # reliable: no frame lost on a busy machine
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
             for cam in CAMERAS]
    h = Harness([])
    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    static = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    got: dict[str, list] = {f"{cam}/{k}": [] for cam in CAMERAS for k in ("depth", "odom")}
    for cam in CAMERAS:
        h.probe.create_subscription(Image, f"/{cam}/depth/image", got[f"{cam}/depth"].append, reliable)
        h.probe.create_subscription(Odometry, f"/{cam}/odom", got[f"{cam}/odom"].append, reliable)
    tf_static: list = []
    h.probe.create_subscription(TFMessage, "/tf_static", tf_static.append, static)
    try:
        assert h.wait_connected(subscribers=4, timeout=120), [p.poll() for p in procs]
        for i in range(3):
            h.publish_frame(read_image(seq.left[i]), "mono8", seq.k, 3000.0 + 0.1 * i)
            assert h.wait_for(lambda n=i: all(len(v) > n for v in got.values()), 60.0), {k: len(v) for k, v in
                                                                                          got.items()}
        names = {(ns, n) for n, ns in h.probe.get_node_names_and_namespaces()}
        for cam in CAMERAS:
            assert {(f"/{cam}", "depth_node"), (f"/{cam}", "odometry_node")} <= names, names
            odom = got[f"{cam}/odom"][-1]
            assert (odom.header.frame_id, odom.child_frame_id) == (f"{cam}/odom", f"{cam}/base_link")
        assert h.wait_for(lambda: {(t.header.frame_id, t.child_frame_id) for m in tf_static for t in m.transforms}
                          >= {(f"{c}/base_link", f"{c}/camera_left_optical_frame") for c in CAMERAS}, 20.0)
        assert h.got["depth"] == [] and h.got["odom"] == []     # nothing in the root namespace
    finally:
        h.close()
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
        for p in procs:
            out = p.communicate(timeout=60)[0]
            assert p.returncode == 0 and "Traceback" not in out, out[-3000:]
