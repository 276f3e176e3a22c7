"""The real nodes under load: DepthNode + OdometryNode in one in-process executor, fed KITTI frames
by a publisher thread; output rates vs the raw ``OnnxModel.run`` rate and header-stamp latency."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .config import BenchConfig
from .timing import round_robin, stats


def measure_nodes(model_dir: Path, cfg: BenchConfig, raw: dict[str, float], pub_hz: float = 0.0) -> dict[str, Any]:
    """DepthNode + OdometryNode in one executor, fed clip frames at ``pub_hz`` (0 = as fast as the
    publisher thread goes); output rates, latency stamp -> receipt, ratio to the raw model rates."""
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from vode_ros.core.image_codec import encode_image
    from vode_ros.core.kitti import load_sequence, read_image
    from vode_ros.nodes.depth_node import DepthNode
    from vode_ros.runtime.frame_share import FrameShare
    from vode_ros.nodes.odometry_node import OdometryNode

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    domain = int(os.environ.get("ROS_DOMAIN_ID", 100 + os.getpid() % 100))
    ns = f"vode_bench_{os.getpid()}"
    seq = load_sequence(cfg.data_dir)
    ctx = rclpy.Context()
    rclpy.init(context=ctx, domain_id=domain)
    nodes, executor, spin, feeder, stop = [], None, None, None, None
    try:
        params = [Parameter("model_dir", value=str(model_dir)), Parameter("threads", value=int(cfg.threads)),
                  Parameter("image_topic", value=f"/{ns}/camera/image_raw"),
                  Parameter("camera_info_topic", value=f"/{ns}/camera/camera_info")]
        # Hosted as `vode run` hosts them: one FrameShare, so a frame is preprocessed once for both nets.
        shared = FrameShare()
        depth_node = DepthNode(context=ctx, namespace=ns, parameter_overrides=params, frame_share=shared)
        # The pose net's rate through the node (compared with the raw net below); the geometric
        # sources' cost and accuracy are pose_bench's (they also wait for the depth node's depth).
        odom_node = OdometryNode(context=ctx, namespace=ns, frame_share=shared,
                                 parameter_overrides=params + [Parameter("pose_source", value="net")])
        probe = Node("vode_bench_probe", context=ctx, namespace=ns)
        nodes = [depth_node, odom_node, probe]
        got: dict[str, list[tuple[float, float]]] = {"depth": [], "odom": []}
        lock = threading.Lock()

        def on(key):
            def cb(msg):
                now = time.time()
                st = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
                with lock:
                    got[key].append((now, now - st))
            return cb

        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        probe.create_subscription(Image, f"/{ns}/depth/image", on("depth"), reliable)
        probe.create_subscription(Odometry, f"/{ns}/odom", on("odom"), reliable)
        img_pub = probe.create_publisher(Image, f"/{ns}/camera/image_raw", qos_profile_sensor_data)
        info_pub = probe.create_publisher(CameraInfo, f"/{ns}/camera/camera_info", qos_profile_sensor_data)
        executor = MultiThreadedExecutor(num_threads=4, context=ctx)
        for n in nodes:
            executor.add_node(n)
        spin = threading.Thread(target=executor.spin, daemon=True)
        spin.start()
        frames = []
        for path in seq.left:
            img = read_image(path)
            msg = Image()
            for k, v in encode_image(img, "mono8" if img.ndim == 2 else "rgb8").items():
                setattr(msg, k, v)
            msg.header.frame_id = "camera_left_optical_frame"
            frames.append(msg)
        info = CameraInfo(width=seq.image_size[0], height=seq.image_size[1], distortion_model="plumb_bob")
        info.header.frame_id = "camera_left_optical_frame"
        info.k = seq.k.reshape(-1).astype(float).tolist()
        info.d = [0.0] * 5
        p = np.zeros((3, 4))
        p[:, :3] = seq.k
        info.p = p.reshape(-1).tolist()
        end = time.monotonic() + 20
        while time.monotonic() < end and (img_pub.get_subscription_count() < 2 or info_pub.get_subscription_count() < 2):
            time.sleep(0.02)
        stop = threading.Event()
        published = [0]

        def feed():
            i = 0
            period = 1.0 / pub_hz if pub_hz > 0 else 0.0
            nxt = time.monotonic()
            while not stop.is_set():
                now = time.time()
                sec, nsec = int(now), int((now % 1) * 1e9)
                msg = frames[i % len(frames)]
                info.header.stamp.sec = msg.header.stamp.sec = sec
                info.header.stamp.nanosec = msg.header.stamp.nanosec = nsec
                info_pub.publish(info)
                img_pub.publish(msg)
                published[0] += 1
                i += 1
                if period:
                    nxt += period
                    time.sleep(max(0.0, nxt - time.monotonic()))
                else:
                    time.sleep(0)       # yield the GIL: "max rate", not a busy lock-out

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        end = time.monotonic() + 30
        while time.monotonic() < end and (len(got["depth"]) < 3 or len(got["odom"]) < 3):
            time.sleep(0.02)
        t0, pub0 = time.time(), published[0]
        drop0 = (depth_node.worker.dropped, odom_node.worker.dropped)
        acc0 = (depth_node.accounts.snapshot(), odom_node.accounts.snapshot())
        time.sleep(cfg.node_seconds)
        t1, pub1 = time.time(), published[0]
        drops = (depth_node.worker.dropped - drop0[0], odom_node.worker.dropped - drop0[1])
        acc1 = (depth_node.accounts.snapshot(), odom_node.accounts.snapshot())
    finally:
        if stop is not None:
            stop.set()
        if feeder is not None:
            feeder.join(timeout=5)
        for n in nodes[:2]:
            n.worker.stop()                  # nothing publishes any more
        if executor is not None:
            # Let callbacks in flight finish first: rclpy's MultiThreadedExecutor.shutdown destroys its
            # guard condition before its thread pool drains ("never retrieved ... InvalidHandle").
            time.sleep(0.3)
            executor.shutdown(timeout_sec=5)
        if spin is not None:
            spin.join(timeout=5)
        for n in reversed(nodes):
            n.destroy_node()
        rclpy.try_shutdown(context=ctx)
    window = t1 - t0
    out: dict[str, Any] = {"model_dir": str(model_dir), "seconds": round(window, 2), "feed_hz": pub_hz or "max",
                           "published_hz": (pub1 - pub0) / window, "ros_domain_id": domain,
                           "executor": "MultiThreadedExecutor(4), one process, one FrameShare (as vode run)",
                           "node_threads_param": cfg.threads}
    for key, raw_key, dropped, a0, a1 in (("depth", "depth", drops[0], acc0[0], acc1[0]),
                                          ("odom", "pose", drops[1], acc0[1], acc1[1])):
        rows = [(t, lat) for t, lat in got[key] if t0 <= t < t1]
        lat = [r[1] * 1e3 for r in rows]
        hz = len(rows) / window
        out[key] = {"hz": hz, "latency_ms_p50": float(np.percentile(lat, 50)) if lat else float("nan"),
                    "latency_ms_p95": float(np.percentile(lat, 95)) if lat else float("nan"),
                    "frames_dropped": dropped, "raw_fps": raw[raw_key],
                    # Every image of the window: published by the feeder, taken in by the node's
                    # callbacks (the rest never reached them: best-effort DDS, a full reader queue),
                    # out, dropped by newest-frame-wins, rejected. A frame lost before the node is a
                    # lost frame too: "no dropped frame" means frames_out == images published.
                    "images_published": pub1 - pub0, "frames_in": a1.frames_in - a0.frames_in,
                    "frames_out": a1.frames_out - a0.frames_out,
                    "frames_rejected": sum(a1.rejected.values()) - sum(a0.rejected.values()),
                    "ratio_to_raw": hz / raw[raw_key] if raw[raw_key] else float("nan")}
    seq_fps = raw.get("depth+pose", 0.0)
    both = min(out["depth"]["hz"], out["odom"]["hz"])
    out["pipeline"] = {"hz": both, "raw_sequential_fps": seq_fps,
                       "ratio_to_raw": both / seq_fps if seq_fps else float("nan")}
    return out


def raw_model_rates(model_dir: Path, cfg: BenchConfig) -> dict[str, float]:
    """OnnxModel.run rates of the files the nodes load, with the nodes' own session settings."""
    from vode_ros.runtime.inference import OnnxModel

    depth = OnnxModel(model_dir / "depth.onnx", ["CPUExecutionProvider"], cfg.threads, expected_kind="depth")
    pose = OnnxModel(model_dir / "pose.onnx", ["CPUExecutionProvider"], cfg.threads, expected_kind="pose")
    m = depth.meta
    xd = np.zeros((1, m.channels, m.height, m.width), np.float32)
    xp = np.zeros((1, 2 * m.channels, m.height, m.width), np.float32)
    times = round_robin({"depth": lambda: depth.run(xd), "pose": lambda: pose.run(xp),
                         "depth+pose": lambda: (depth.run(xd), pose.run(xp))},
                        cfg.seconds, cfg.rounds, cfg.warmup, cfg.min_iters)
    return {k: stats(v)["fps"] for k, v in times.items()}
