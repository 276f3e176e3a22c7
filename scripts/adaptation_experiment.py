#!/usr/bin/env python3
"""Online adaptation under a domain shift: synthetic-only model -> KITTI clip, adapted in the node.

    .venv/bin/python scripts/adaptation_experiment.py [--out runs/adaptation_experiment] [--json FILE]

1. ``vode synth OUT/synth --frames 60``: textured synthetic street scenes (exact GT, stereo).
2. ``vode train --config config/train/sfmlearner.yaml --set data.path=OUT/synth`` under a wall-clock
   limit (``--train-seconds``, nice 10; the last checkpoint written counts), export -> OUT/model_synth
   (+ a nets-only checkpoint.pt there, which the node's adaptation starts from).
3. "before": ``vode eval depth`` (SGBM pseudo-GT of the KITTI clip; metric, and median-scaled) and
   ``vode eval pose`` (ATE-5; plus the un-aligned path length ratio, which shows the metric scale).
4. The real nodes in this process (rclpy): the KITTI clip (stereo) is streamed in loops at
   ``--rate`` Hz into the depth node (mode stereo) and the odometry node. Phase A: adapt off
   (``--baseline-seconds``); phase B: a fresh depth node with adapt on (``--adapt-seconds``).
   Inference rate / latency of both phases are measured in this one run; then
   ``~/save_adapted`` writes OUT/model_adapted.
5. "after": the same evaluations on OUT/model_adapted. Everything goes to the JSON report.

The clip is both the adaptation stream and the evaluation set (test-time adaptation): frames are
seen while streaming; the held-out split (every n-th frame) only guards the swaps.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 80))   # private, like the tests
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def vode(*args: str, timeout: float | None = None, nice: int = 0) -> subprocess.CompletedProcess:
    cmd = (["nice", "-n", str(nice)] if nice else []) + [sys.executable, "-m", "vode_ros.cli.main", *args]
    log(" ".join(cmd))
    try:
        return subprocess.run(cmd, cwd=REPO, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        log(f"stopped after {timeout:.0f} s wall (the last checkpoint counts)")
        return subprocess.CompletedProcess(cmd, -1)


# -- 1-2: synthetic data, model -------------------------------------------------------------------
def make_synthetic_model(args, out: Path) -> dict:
    synth, run, model = out / "synth", out / "run_synth", out / "model_synth"
    if not (synth / "times.txt").is_file():
        vode("synth", str(synth), "--frames", str(args.synth_frames), "--no-progress", nice=10)
    t0 = time.monotonic()
    if not (run / "checkpoint.pt").is_file() or args.retrain:
        vode("train", "--config", str(REPO / "config/train/sfmlearner.yaml"), "--out", str(run), "--no-progress",
             "--set", f"data.path={synth}", "--set", f"data.width={args.width}", "--set", f"data.height={args.height}",
             "--set", f"train.steps={args.train_steps}", "--set", "train.ckpt_every=10",
             "--set", f"train.num_threads={args.train_threads}",
             timeout=args.train_seconds, nice=10)
    train_wall = time.monotonic() - t0
    from vode_training.checkpoint import export_nets, load_checkpoint
    from vode_training.export import export_checkpoint

    ckpt = load_checkpoint(run / "checkpoint.pt")
    export_checkpoint(run / "checkpoint.pt", model)
    export_nets(run / "checkpoint.pt", model / "checkpoint.pt")
    return {"synth": str(synth), "run": str(run), "model_dir": str(model), "train_steps_done": int(ckpt["step"]),
            "train_wall_s": round(train_wall, 1), "width": args.width, "height": args.height}


# -- 3/5: evaluation ------------------------------------------------------------------------------
def evaluate(model_dir: Path, data: Path) -> dict:
    from vode_ros.tools import evaluate as run_eval

    d_metric = run_eval.evaluate_depth(data, model_dir, gt="sgbm", median_scaling=False, progress=False)
    d_median = run_eval.evaluate_depth(data, model_dir, gt="sgbm", median_scaling=True, progress=False)
    pose = run_eval.evaluate_pose(data, model_dir, progress=False)
    res = {"depth_metric": d_metric["metrics"], "depth_metric_scale_median": d_metric["scale"]["scale_median"],
           "depth_median_scaled": d_median["metrics"], "ate5": pose["ate5"]["mean"], "ate5_std": pose["ate5"]["std"],
           "path_length_ratio_est_over_gt": pose["path_length_est"] / pose["path_length_gt"],
           "ate_se3_rmse": pose["ate"]["se3"]["rmse"], "ate_sim3_rmse": pose["ate"]["sim3"]["rmse"],
           "trained_on": d_metric["model"]["metadata"].get("vode.trained_on")}
    log(f"{model_dir.name}: Abs Rel {res['depth_metric']['abs_rel']:.3f} (median-scaled "
        f"{res['depth_median_scaled']['abs_rel']:.3f}), ATE-5 {res['ate5']:.4f} m, path length ratio "
        f"{res['path_length_ratio_est_over_gt']:.2f}")
    return res


# -- 4: streaming through the nodes ---------------------------------------------------------------
class Streamer:
    """Publishes the stereo clip in loops (a 2 s stamp gap between loops) and records vode/status."""

    def __init__(self, data: Path, rate: float):
        import numpy as np
        import rclpy
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        from vode_ros.core.image_codec import encode_image
        from vode_ros.core.kitti import load_sequence, read_image
        from vode_ros_msgs.msg import VodeStatus

        if not rclpy.ok():
            rclpy.init()
        self.np, self.Image, self.CameraInfo, self.encode = np, Image, CameraInfo, encode_image
        self.seq = load_sequence(data)
        self.left = [read_image(p) for p in self.seq.left]
        self.right = [read_image(p) for p in self.seq.right]
        self.rate = rate
        self.node = Node("adaptation_experiment_player")
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.pubs = {k: self.node.create_publisher(t, topic, qos) for k, t, topic in (
            ("left", Image, "/camera/left/image_raw"), ("left_info", CameraInfo, "/camera/left/camera_info"),
            ("right", Image, "/camera/right/image_raw"), ("right_info", CameraInfo, "/camera/right/camera_info"))}
        self.status: list[tuple[float, object]] = []
        self.node.create_subscription(VodeStatus, "/vode/status",
                                      lambda m: self.status.append((time.monotonic(), m)), 100)
        self.executor = MultiThreadedExecutor(num_threads=3)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.t_stream = 1000.0

    def _info(self, stamp, frame, right: bool):
        np = self.np
        msg = self.CameraInfo()
        msg.header.stamp, msg.header.frame_id = stamp, frame
        msg.width, msg.height = self.seq.image_size
        msg.distortion_model, msg.d = "plumb_bob", [0.0] * 5
        msg.k = self.seq.k.reshape(-1).astype(float).tolist()
        p = np.zeros((3, 4))
        p[:, :3] = self.seq.k
        if right:
            p[0, 3] = -self.seq.k[0, 0] * self.seq.baseline
        msg.p = p.reshape(-1).tolist()
        return msg

    def _img(self, img, stamp, frame):
        msg = self.Image()
        msg.header.stamp, msg.header.frame_id = stamp, frame
        for key, value in self.encode(img, "mono8").items():
            setattr(msg, key, value)
        return msg

    def add(self, node) -> None:
        self.executor.add_node(node)

    def stream(self, seconds: float) -> dict:
        from builtin_interfaces.msg import Time

        end = time.monotonic() + seconds
        period = 1.0 / self.rate
        sent, loops = 0, 0
        next_t = time.monotonic()
        while time.monotonic() < end:
            for i in range(len(self.left)):
                if time.monotonic() >= end:
                    break
                t = self.t_stream + i * period
                stamp = Time(sec=int(t), nanosec=int(round((t % 1) * 1e9)))
                self.pubs["right_info"].publish(self._info(stamp, "camera_right_optical_frame", True))
                self.pubs["right"].publish(self._img(self.right[i], stamp, "camera_right_optical_frame"))
                self.pubs["left_info"].publish(self._info(stamp, "camera_left_optical_frame", False))
                self.pubs["left"].publish(self._img(self.left[i], stamp, "camera_left_optical_frame"))
                sent += 1
                next_t += period
                time.sleep(max(0.0, next_t - time.monotonic()))
            loops += 1
            self.t_stream += len(self.left) * period + 2.0       # a gap: the next loop is a new segment
        return {"sent": sent, "loops": loops}

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def rates(streamer: Streamer, t0: float, t1: float, node: str) -> dict:
    import numpy as np

    msgs = [m for t, m in streamer.status if t0 <= t <= t1 and m.node == node]
    if len(msgs) < 2:
        return {"frames": len(msgs)}
    inf = np.array([m.inference_ms for m in msgs])
    tot = np.array([m.total_ms for m in msgs])
    return {"frames": len(msgs), "fps": round((msgs[-1].frames_out - msgs[0].frames_out) / (t1 - t0), 3),
            "inference_ms_mean": round(float(inf.mean()), 2), "inference_ms_p50": round(float(np.median(inf)), 2),
            "inference_ms_p95": round(float(np.percentile(inf, 95)), 2),
            "total_ms_mean": round(float(tot.mean()), 2), "total_ms_p95": round(float(np.percentile(tot, 95)), 2),
            "dropped": int(msgs[-1].frames_dropped - msgs[0].frames_dropped),
            "capacity_fps_from_inference_ms": round(1000.0 / float(inf.mean()), 1)}


def run_nodes(args, model_dir: Path, out: Path, data: Path) -> dict:
    from rclpy.parameter import Parameter
    from std_srvs.srv import Trigger

    from vode_ros.nodes.depth_node import DepthNode
    from vode_ros.nodes.odometry_node import OdometryNode

    streamer = Streamer(data, args.rate)
    save_dir = out / "model_adapted"
    common = [Parameter("model_dir", value=str(model_dir)), Parameter("mode", value="stereo"),
              Parameter("threads", value=args.ort_threads)]
    odom = OdometryNode(parameter_overrides=[Parameter("model_dir", value=str(model_dir)),
                                             Parameter("threads", value=args.ort_threads)])
    streamer.add(odom)
    result: dict = {"rate_hz": args.rate, "load_avg_before": os.getloadavg(), "cpu_count": os.cpu_count()}
    # Phase A: adapt off.
    depth = DepthNode(parameter_overrides=common)
    streamer.add(depth)
    time.sleep(2.0)
    t0 = time.monotonic()
    result["stream_off"] = streamer.stream(args.baseline_seconds)
    t1 = time.monotonic()
    result["adapt_off"] = {"depth": rates(streamer, t0, t1, "depth"), "odometry": rates(streamer, t0, t1, "pose"),
                           "load_avg": os.getloadavg()}
    streamer.executor.remove_node(depth)
    depth.destroy_node()
    # Phase B: adapt on.
    adapt = {"adapt": True, "adapt_save_dir": str(save_dir), "adapt_lr": args.adapt_lr,
             "adapt_threads": args.adapt_threads, "adapt_max_steps_per_second": args.adapt_max_sps,
             "adapt_batch_size": args.adapt_batch, "adapt_check_every": args.adapt_check_every,
             "adapt_buffer_size": args.adapt_buffer, "adapt_holdout_every": args.adapt_holdout_every}
    depth = DepthNode(parameter_overrides=common + [Parameter(k, value=v) for k, v in adapt.items()])
    streamer.add(depth)
    time.sleep(2.0)
    t0 = time.monotonic()
    timeline = []
    stop = threading.Event()

    def sample():
        while not stop.wait(10.0):
            s = depth.adapter.stats
            timeline.append({"t": round(time.monotonic() - t0, 1), "steps": s.steps, "swaps": s.swaps,
                             "rollbacks": s.rollbacks, "heldout_before": s.heldout_before,
                             "heldout_after": s.heldout_after, "train_loss": s.last_loss})
            log(f"adapting: {timeline[-1]}")

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result["stream_on"] = streamer.stream(args.adapt_seconds)
    t1 = time.monotonic()
    stop.set()
    result["adapt_on"] = {"depth": rates(streamer, t0, t1, "depth"), "odometry": rates(streamer, t0, t1, "pose"),
                          "load_avg": os.getloadavg()}
    result["adapter"] = depth.adapter.stats.as_dict()
    result["adapter"]["steps_per_second_recent"] = depth.adapter.steps_per_second
    result["adapter_params"] = adapt
    result["timeline"] = timeline
    result["odometry_model_after"] = str(odom.model.path)
    client = streamer.node.create_client(Trigger, "/depth_node/save_adapted")
    client.wait_for_service(timeout_sec=10)
    res = client.call(Trigger.Request(), timeout_sec=300)
    result["save"] = {"success": bool(res and res.success), "message": res.message if res else "no answer"}
    log(f"save_adapted: {result['save']}")
    depth.adapter.stop()
    time.sleep(3.0)             # let a last odometry reload (after an accepted swap) answer
    streamer.executor.remove_node(depth)
    depth.destroy_node()
    streamer.executor.remove_node(odom)
    odom.destroy_node()
    streamer.close()
    result["save_dir"] = str(save_dir)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "adaptation_experiment")
    ap.add_argument("--json", type=Path, default=None, help="report (default OUT/adaptation_experiment.json)")
    ap.add_argument("--data", type=Path, default=REPO / "data" / "kitti_odometry_06_0000-0050")
    ap.add_argument("--synth-frames", type=int, default=60)
    ap.add_argument("--width", type=int, default=224, help="network width (224x64: affordable on 2 shared cores)")
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--train-steps", type=int, default=1000, help="upper bound; --train-seconds usually stops first")
    ap.add_argument("--train-seconds", type=float, default=290.0)
    ap.add_argument("--train-threads", type=int, default=1)
    ap.add_argument("--retrain", action="store_true", help="train again even if OUT/run_synth has a checkpoint")
    ap.add_argument("--rate", type=float, default=10.0, help="camera rate of the stream, Hz (KITTI: 10)")
    ap.add_argument("--baseline-seconds", type=float, default=30.0)
    ap.add_argument("--adapt-seconds", type=float, default=270.0)
    ap.add_argument("--adapt-lr", type=float, default=1e-4)
    ap.add_argument("--adapt-threads", type=int, default=1)
    ap.add_argument("--adapt-max-sps", type=float, default=10.0)
    ap.add_argument("--adapt-batch", type=int, default=2)
    ap.add_argument("--adapt-check-every", type=int, default=10)
    ap.add_argument("--adapt-buffer", type=int, default=64)
    ap.add_argument("--adapt-holdout-every", type=int, default=5)
    ap.add_argument("--ort-threads", type=int, default=1, help="ONNX Runtime threads of each node")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "machine": {
        "cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg(),
        "note": "shared machine (other developers' training runs in parallel): timings are indicative"}}
    report["synthetic_model"] = make_synthetic_model(args, out)
    model_dir = Path(report["synthetic_model"]["model_dir"])
    report["before"] = evaluate(model_dir, args.data)
    report["stream"] = run_nodes(args, model_dir, out, args.data)
    if report["stream"]["save"]["success"]:
        report["after"] = evaluate(out / "model_adapted", args.data)
        b, a = report["before"], report["after"]
        report["summary"] = {
            "abs_rel_metric": [b["depth_metric"]["abs_rel"], a["depth_metric"]["abs_rel"]],
            "abs_rel_median_scaled": [b["depth_median_scaled"]["abs_rel"], a["depth_median_scaled"]["abs_rel"]],
            "ate5": [b["ate5"], a["ate5"]],
            "path_length_ratio": [b["path_length_ratio_est_over_gt"], a["path_length_ratio_est_over_gt"]],
            "depth_fps_adapt_off_on": [report["stream"]["adapt_off"]["depth"].get("fps"),
                                       report["stream"]["adapt_on"]["depth"].get("fps")],
            "depth_inference_ms_adapt_off_on": [report["stream"]["adapt_off"]["depth"].get("inference_ms_mean"),
                                                report["stream"]["adapt_on"]["depth"].get("inference_ms_mean")],
            "adapter": {k: report["stream"]["adapter"][k] for k in ("steps", "checks", "swaps", "rollbacks")}}
    report["machine"]["load_avg_end"] = os.getloadavg()
    path = args.json or out / "adaptation_experiment.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    log(f"wrote {path}")
    print(json.dumps(report.get("summary", {}), indent=2, default=str))
    return 0 if "summary" in report else 1


if __name__ == "__main__":
    raise SystemExit(main())
