"""Soak test: the KITTI clip in a loop at a fixed rate through the nodes, for minutes.

Three processes, as on a robot: a camera (publisher process), the nodes (`vode run`), and
this one, which measures what comes out: frames in/out, drops (newest-frame-wins and
others), latency from image stamp (set to wall time at publish) to receipt, and the nodes'
resident memory over time.

    vode bench soak --minutes 10 --rate 20
    vode bench soak --minutes 1 --rate 20 --size 416x128   # a camera that publishes the nets' size
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from vode_ros.bag import topics as T
from vode_ros.core.atomic_file import atomic_write
from vode_ros.tools import launch_runner


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'416x128' -> (416, 128); None or '' -> None (the clip's own size)."""
    if not text:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must be WIDTHxHEIGHT, e.g. 416x128, got {text!r}") from None
    if w < 32 or h < 32:
        raise ValueError(f"--size {text}: at least 32x32")
    return w, h


def publish_loop(data_dir: Path, rate: float, seconds: float, size: tuple[int, int] | None = None) -> int:
    """The camera process: left images + CameraInfo of the clip, looped, stamped with wall time.

    ``size`` (W, H): publish the frames resized to it (INTER_AREA) with K scaled alike, as a
    camera driver set to that resolution would."""
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from vode_ros.core.kitti import load_sequence, read_image

    from vode_ros.core.geometry import scale_intrinsics

    seq = load_sequence(data_dir)
    frames = [read_image(p) for p in seq.left]
    k, (width, height) = seq.k, seq.image_size
    if size is not None:
        import cv2

        frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
        k, (width, height) = scale_intrinsics(seq.k, seq.image_size, size), size
    rclpy.init()
    node = rclpy.create_node("vode_soak_camera")
    img_pub = node.create_publisher(Image, T.LEFT_IMAGE, qos_profile_sensor_data)
    info_pub = node.create_publisher(CameraInfo, T.LEFT_INFO, qos_profile_sensor_data)
    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    info.k = [float(v) for v in k.reshape(-1)]
    info.header.frame_id = T.LEFT_FRAME
    period = 1.0 / rate
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < seconds:
        img = frames[i % len(frames)]
        msg = Image(height=img.shape[0], width=img.shape[1], encoding="mono8", step=img.shape[1], data=img.tobytes())
        msg.header.frame_id = T.LEFT_FRAME
        msg.header.stamp = node.get_clock().now().to_msg()
        info.header.stamp = msg.header.stamp
        info_pub.publish(info)
        img_pub.publish(msg)
        i += 1
        time.sleep(max(0.0, t0 + i * period - time.monotonic()))
    print(json.dumps({"published": i}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def run_soak(minutes: float, rate: float, data_dir: Path, model_dir: Path | None = None,
             json_path: Path | None = None, log=print, size: tuple[int, int] | None = None) -> dict:
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from vode_ros_msgs.msg import VodeStatus

    seconds = minutes * 60.0
    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    run_cmd = [sys.executable, "-m", "vode_ros.cli.main", "run"] + (["--model-dir", str(model_dir)] if model_dir else [])
    from rclpy.executors import SingleThreadedExecutor

    # A context of its own: the caller (a test session, a tool) may have rclpy initialised already.
    context = rclpy.Context()
    rclpy.init(context=context)
    probe = rclpy.create_node("vode_soak_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(probe)
    lat = {"depth": [], "odom": []}
    status: dict[str, VodeStatus] = {}
    process_ms: dict[str, list[float]] = {"depth": [], "pose": []}
    rel = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)

    def on_out(kind):
        def cb(msg):
            now = probe.get_clock().now().nanoseconds
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            lat[kind].append((now - stamp) * 1e-6)
        return cb

    probe.create_subscription(Image, "/depth/image", on_out("depth"), rel)
    probe.create_subscription(Odometry, "/odom", on_out("odom"), rel)
    def on_status(m: VodeStatus) -> None:
        status[m.node] = m
        if m.process_ms > 0:
            process_ms.setdefault(m.node, []).append(float(m.process_ms))

    probe.create_subscription(VodeStatus, "/vode/status", on_status, rel)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    # Started last before the try: whatever fails above leaves no node process behind.
    nodes = subprocess.Popen(run_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        t_wait = time.monotonic() + 60
        while probe.count_publishers("/depth/image") < 1 or probe.count_publishers("/odom") < 1:
            if time.monotonic() > t_wait or nodes.poll() is not None:
                raise RuntimeError("the nodes did not start (run `vode run` alone to see why)")
            time.sleep(0.1)
        time.sleep(1.0)
        log(f"soak: {minutes} min at {rate} Hz (nodes pid {nodes.pid}, ROS_DOMAIN_ID {env['ROS_DOMAIN_ID']})")
        camera = subprocess.Popen([sys.executable, "-m", "vode_ros.tools.soak", str(data_dir), str(rate), str(seconds)]
                                  + ([f"{size[0]}x{size[1]}"] if size else []),
                                  env=env, stdout=subprocess.PIPE, text=True)
        samples = []   # (t, rss MB)
        t0 = time.monotonic()
        while camera.poll() is None:
            samples.append((time.monotonic() - t0, rss_mb(nodes.pid)))
            time.sleep(min(5.0, max(0.5, seconds / 60)))
        published = json.loads(camera.stdout.read().strip().splitlines()[-1])["published"]
        time.sleep(2.0)
    finally:
        executor.shutdown()
        probe.destroy_node()
        context.try_shutdown()
        launch_runner.stop(nodes)
    # RSS growth after warm-up (allocator pools, ORT arenas and DDS buffers fill first):
    # the first 10 % of the run, at least 30 s when the run is long enough.
    warmup = max(0.1 * seconds, min(30.0, 0.5 * seconds))
    rss = np.array([s[1] for s in samples if s[0] >= warmup] or [samples[-1][1]])
    result = {
        "minutes": minutes, "rate_hz": rate, "published": published,
        "image_size": list(size) if size else "clip",
        "depth": _node_summary(status.get("depth"), lat["depth"], process_ms["depth"]),
        "odometry": _node_summary(status.get("pose"), lat["odom"], process_ms["pose"]),
        "lost_in_transport": published - max((status[k].frames_in for k in status), default=0),
        "rss_warmup_s": warmup, "rss_mb_after_warmup": float(rss[0]), "rss_mb_end": float(rss[-1]),
        "rss_growth_pct": float((rss[-1] - rss[0]) / rss[0] * 100.0),
        "rss_samples": [(round(t, 1), round(m, 1)) for t, m in samples],
    }
    if json_path:
        with atomic_write(json_path) as fh:
            fh.write(json.dumps(result, indent=2))
    return result


def _node_summary(st, latencies: list[float], process_ms: list[float] = ()) -> dict:
    lat = np.array(latencies) if latencies else np.array([np.nan])
    proc = np.array(process_ms) if len(process_ms) else np.array([np.nan])
    out = {"received": len(latencies), "latency_ms_p50": float(np.percentile(lat, 50)),
           "latency_ms_p95": float(np.percentile(lat, 95)),
           # what one frame costs the node without queueing (1000 / p50 = the rate it sustains)
           "process_ms_p50": float(np.percentile(proc, 50)), "process_ms_p95": float(np.percentile(proc, 95))}
    if st is not None:
        out.update(frames_in=int(st.frames_in), frames_out=int(st.frames_out),
                   dropped_newest_wins=int(st.frames_dropped), rejected=int(st.frames_rejected))
        out["lost_other"] = int(st.frames_in) - int(st.frames_out) - int(st.frames_dropped) - int(st.frames_rejected)
    return out


if __name__ == "__main__":   # the camera process
    sys.exit(publish_loop(Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]),
                          parse_size(sys.argv[4]) if len(sys.argv) > 4 else None))
