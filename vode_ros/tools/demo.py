"""`vode demo`: a KITTI-layout clip through the real ROS 2 nodes, then a report.

1. convert the clip to a rosbag2 (vode_ros.bag.kitti_to_bag);
2. start the nodes in a second process (`vode run`, the launch file's twin) on an isolated
   DDS domain;
3. in this process, play the bag at its recorded pace and record the nodes' outputs
   (depth, odometry, TF, status) into another rosbag2;
4. evaluate what was recorded: ATE vs ground truth after Sim(3) alignment, ATE-5, depth
   metrics vs stereo SGBM pseudo ground truth, rates; write report.json and plots.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from vode_ros.bag import topics as T
from vode_ros.core.atomic_file import atomic_write
from vode_ros.core.resources import demo_clip
from vode_ros.tools import launch_runner

DEFAULT_DATA = demo_clip()
DEFAULT_OUT = Path("reports") / "demo"       # relative to the working directory
RECORDED = {
    "/depth/image": "sensor_msgs/msg/Image",
    "/depth/camera_info": "sensor_msgs/msg/CameraInfo",
    "/odom": "nav_msgs/msg/Odometry",
    "/tf": "tf2_msgs/msg/TFMessage",
    "/vode/status": "vode_ros_msgs/msg/VodeStatus",
}
# Stamps start here instead of 0 (time 0 means "latest" to TF and "unset" to sim time).
STAMP_OFFSET = 1_000_000_000.0


DEFAULT_MODE, DEFAULT_POSE_SOURCE = "stereo", "hybrid"    # the best measured on the clip (README)


class DemoIncomplete(RuntimeError):
    """Frames were lost between the bag and the recorder although the replay was reliable."""


def _launch_arguments(model_dir: Path | None, mode: str, pose_source: str) -> dict:
    args: dict = {"mode": mode, "reliable_input": True}
    if model_dir:
        args["model_dir"] = str(model_dir)
    if 'DeclareLaunchArgument("pose_source"' in launch_runner.launch_file().read_text():
        args["pose_source"] = pose_source
    return args


def _start_nodes(model_dir: Path | None, log_path: Path, env: dict, mode: str = DEFAULT_MODE,
                 pose_source: str = DEFAULT_POSE_SOURCE) -> tuple[subprocess.Popen, str]:
    """The nodes in a second process: launch/vode.launch.py where ROS 2 launch is installed, else
    `vode run` (its twin from the same parameter file). Returns (process, "ros2 launch" | "vode run")."""
    try:
        return launch_runner.start(_launch_arguments(model_dir, mode, pose_source), log_path=log_path,
                                   env=env), "ros2 launch"
    except launch_runner.PackageNotRegistered as exc:
        # Launch is there but cannot find the package: say so, rather than fall back in silence.
        print(f"vode demo: {exc}", file=sys.stderr)
    except launch_runner.LaunchUnavailable:
        pass
    # Reliable, lossless replay: a left + right pair of full-size images back to back overflows
    # best-effort delivery on a busy machine (most stereo frames were lost), and every frame counts here.
    cmd = [sys.executable, "-m", "vode_ros.cli.main", "run", "--mode", mode, "--pose-source", pose_source,
           "--reliable-input"]
    if model_dir:
        cmd += ["--model-dir", str(model_dir)]
    with open(log_path, "w") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True), \
            "vode run"


def play_and_record(in_bag: Path, out_bag: Path, model_dir: Path | None, rate: float,
                    work: Path, log=print, n_frames: int = 0, mode: str = DEFAULT_MODE,
                    pose_source: str = DEFAULT_POSE_SOURCE) -> dict:
    """Run the nodes in a child process, play `in_bag` into them, record into `out_bag`."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    from vode_ros.bag.play_record import BagPlayer, BagRecorder

    env = dict(os.environ)
    # An isolated, machine-local DDS domain: the demo must not talk to a robot on the network.
    env.setdefault("ROS_DOMAIN_ID", str(random.randint(100, 199)))
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE")})
    node_log = work / "nodes.log"
    proc, runner = _start_nodes(model_dir, node_log, env, mode, pose_source)
    rclpy.init()
    player = BagPlayer(in_bag, topics=[T.LEFT_IMAGE, T.LEFT_INFO, T.RIGHT_IMAGE, T.RIGHT_INFO, T.TF_STATIC],
                       rate=rate, reliable=True)
    recorder = BagRecorder(out_bag, RECORDED)
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(player)
    executor.add_node(recorder)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    try:
        log(f"waiting for the nodes (ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}, log: {node_log})")
        t_end = time.monotonic() + 60
        while time.monotonic() < t_end:
            if proc.poll() is not None:
                raise RuntimeError(f"the nodes exited with status {proc.returncode}:\n{node_log.read_text()[-2000:]}")
            subs = player.publishers_by_topic[T.LEFT_IMAGE].get_subscription_count()
            pubs = [s.get_publisher_count() for s in recorder.subs]
            if subs >= 2 and min(pubs) >= 1:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the nodes did not appear on DDS within 60 s; see {node_log}")
        time.sleep(0.5)  # let the late joiners' CameraInfo subscriptions match too
        log(f"playing {in_bag.name} at {rate}x into depth_node and odometry_node")
        t0 = time.monotonic()
        player.play()
        play_s = time.monotonic() - t0
        # Wait for the last results (inference may lag the last image; with reliable input every frame
        # comes, so wait while there is progress, up to 20 s without any on a heavily loaded machine).
        last, stable_since = -1, time.monotonic()
        while time.monotonic() - stable_since < 20.0:
            n = recorder.counts["/odom"] + recorder.counts["/depth/image"]
            if n != last:
                last, stable_since = n, time.monotonic()
            if n_frames and recorder.counts["/odom"] >= n_frames and recorder.counts["/depth/image"] >= n_frames:
                break
            time.sleep(0.1)
        wall_s = time.monotonic() - t0
        # Each node publishes its vode/status right after its output: the last ones may still be on
        # their way (the report's frame counts come from them). One per frame and node.
        deadline = time.monotonic() + 5.0
        while n_frames and recorder.counts.get("/vode/status", 0) < 2 * n_frames and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        executor.shutdown()
        recorder.close()
        player.destroy_node()
        recorder.destroy_node()
        rclpy.try_shutdown()
        launch_runner.stop(proc)      # either runner: SIGINT to its process group, as Ctrl-C
    return {"play_s": play_s, "wall_s": wall_s, "counts": dict(recorder.counts), "node_log": str(node_log),
            "runner": runner}


def _index_by_stamp(stamps_ns: np.ndarray, frame_ns: np.ndarray) -> np.ndarray:
    """Frame index of each stamp (exact match; stamps are copied from the input headers)."""
    lookup = {int(s): i for i, s in enumerate(frame_ns)}
    return np.array([lookup.get(int(s), -1) for s in stamps_ns])


def evaluate(data_dir: Path, in_bag: Path, out_bag: Path, report_dir: Path, n_depth_panels: int = 3,
             log=print) -> dict:
    """Score the recorded outputs against what the folder has: poses.txt for /odom; for /depth/image
    the depth truth ``vode eval depth`` would pick (sensor depth, Velodyne, else stereo SGBM), with
    its rules (the domain's cap; Garg crop for Velodyne only). Without ground truth the plots still
    show what was published."""
    from vode_ros.bag.kitti_to_bag import stamp_ns
    from vode_ros.bag.reader import read_depth_images, read_messages, read_trajectory
    from vode_ros.core.depth_metrics import compute_depth_metrics, mean_metrics, resize_to_truth
    from vode_ros.core.depth_truth import GT_LABELS, DepthTruthError, GroundTruth, choose_gt
    from vode_ros.core.kitti import load_sequence, read_image
    from vode_ros.core.trajectory import align_positions, ate5, ate_rmse, path_length
    from vode_ros.runtime.scale import is_relative
    from vode_ros.tools.evaluate import domain_cap
    from vode_ros.tools.plots import plot_trajectory_topview, save_depth_panel

    seq = load_sequence(data_dir)
    frame_ns = np.array([stamp_ns(t, STAMP_OFFSET) for t in seq.times], dtype=np.int64)
    out: dict = {}
    status = [m for _, _, m in read_messages(out_bag, ["/vode/status"])]
    # A relative scale source: the node published relative depth / motion (say a camera the model
    # was not trained for), and the plots must not call it metres.
    scales = {role: next((m.scale_source for m in reversed(status) if m.node == role), "") for role in ("depth", "pose")}
    units = {role: "relative, no metric scale" if is_relative(src) else "m" for role, src in scales.items()}

    # Trajectory: recorded /odom vs the bag's ground truth, both base_link in odom.
    est_ns, est = read_trajectory(out_bag, "/odom")
    gt_ns, gt = read_trajectory(in_bag, T.GROUND_TRUTH) if seq.poses is not None else (np.array([]), None)
    if gt is not None and len(est) >= 3:
        gt_lookup = {int(s): i for i, s in enumerate(gt_ns)}
        pairs = [(i, gt_lookup[int(s)]) for i, s in enumerate(est_ns) if int(s) in gt_lookup]
        e = est[[p[0] for p in pairs]]
        g = gt[[p[1] for p in pairs]]
        sim3 = ate_rmse(e, g, "sim3")
        se3 = ate_rmse(e, g, "se3")
        m5, s5 = ate5(e, g) if len(e) >= 5 else (float("nan"), float("nan"))
        out["trajectory"] = {
            "frames": len(e),
            "ate_sim3_rmse_m": sim3["rmse"], "sim3_scale": sim3["scale"],
            "ate_se3_rmse_m": se3["rmse"],
            "ate5_mean_m": m5, "ate5_std_m": s5,
            # Both start at the odom origin: the end-position error without any alignment.
            "end_drift_pct": float(100.0 * np.linalg.norm(e[-1, :3, 3] - g[-1, :3, 3]) / max(path_length(g), 1e-9)),
            "path_length_gt_m": path_length(g), "path_length_est_m": path_length(e),
        }
        aligned, *_ = align_positions(e, g, "sim3")
        plot_trajectory_topview(e, g, report_dir / "trajectory.png", plane="xy", ate=sim3["rmse"],
                                title="vode_ros /odom vs ground truth (top view)",
                                labels=("vode_ros /odom (as published)", "ground truth"),
                                extra={"vode_ros /odom, Sim(3)-aligned": aligned})
    elif len(est):
        plot_trajectory_topview(est, None, report_dir / "trajectory.png", plane="xy",
                                title=f"vode_ros /odom (top view, {units['pose']}; no poses.txt to compare)",
                                labels=("vode_ros /odom (as published)",))

    # Depth: recorded /depth/image vs the folder's depth truth, at its full resolution.
    depth = read_depth_images(out_bag, "/depth/image")
    try:
        source = choose_gt(seq, "auto")
        truth = GroundTruth(seq, source)
    except DepthTruthError:
        source, truth = None, None
    if depth:
        idx = _index_by_stamp(np.array([d[0] for d in depth]), frame_ns)
        per_metric, per_median, common = [], [], None
        panel_at = set(np.linspace(0, len(depth) - 1, n_depth_panels).astype(int).tolist())
        ref_label = GT_LABELS[source] if source else "no depth ground truth"
        for j, ((_, pred), i) in enumerate(zip(depth, idx)):
            if i < 0:
                continue
            left = read_image(seq.left[i])
            ref = truth(i, left) if truth is not None else None
            if ref is None and j not in panel_at:
                continue
            full = resize_to_truth(pred, left.shape[:2])      # once, for the scores and the panel
            if ref is not None:
                if common is None:
                    common = {"max_depth": domain_cap([ref]), "garg_crop": source == "velodyne"}
                per_metric.append(compute_depth_metrics(ref, full, median_scaling=False, **common))
                per_median.append(compute_depth_metrics(ref, full, median_scaling=True, **common))
            if j in panel_at:
                save_depth_panel(left, full, ref, report_dir / f"depth_{i:06d}.png", own_ranges=True,
                                 titles=(f"frame {i}", f"vode_ros /depth/image ({units['depth']})", f"{ref_label} (m)"))
        if per_metric:
            out["depth_truth"] = {"source": source, "label": ref_label, **common}
            out["depth_metric"] = mean_metrics(per_metric)
            out["depth_median_scaled"] = mean_metrics(per_median)
            ratios = [1.0 / r["scale"] for r in per_median if r["n_valid"] and r["scale"] > 0]
            # How far off the published metres are: each panel has its own colour range, so say it here.
            out["depth_scale_pred_over_truth"] = float(np.median(ratios)) if ratios else float("nan")

    # Timing from the nodes' own status messages.
    for role in ("depth", "pose"):
        rows = [s for s in status if s.node == role]
        if rows:
            inf = np.array([s.inference_ms for s in rows])
            tot = np.array([s.total_ms for s in rows])
            proc = np.array([s.process_ms for s in rows])
            out[f"{role}_node"] = {
                "frames_in": int(rows[-1].frames_in), "frames_out": int(rows[-1].frames_out),
                "frames_dropped": int(rows[-1].frames_dropped), "frames_rejected": int(rows[-1].frames_rejected),
                "inference_ms_median": float(np.median(inf)), "inference_fps": float(1e3 / np.median(inf)),
                "receive_to_publish_ms_median": float(np.median(tot)),
                "receive_to_publish_ms_p95": float(np.percentile(tot, 95)),
                # without queueing: what one frame costs the node (1000 / it = the rate it can sustain)
                "process_ms_median": float(np.median(proc)),
                "provider": rows[-1].provider, "method": rows[-1].method,
                "scale_source": scales[role],
            }
            if role == "pose":
                moved = [s for s in rows if s.pose_source not in ("", "start")]
                inl = [s.inliers for s in moved if s.pose_source in ("geometric", "hybrid")]
                out["pose_node"].update({
                    "pose_sources": {src: sum(s.pose_source == src for s in moved)
                                     for src in sorted({s.pose_source for s in moved})},
                    "fallbacks": int(rows[-1].fallbacks),
                    "inliers_median": float(np.median(inl)) if inl else None,
                    "reprojection_rmse_px_median": float(np.nanmedian([s.reprojection_rmse_px for s in moved
                                                                       if s.inliers])) if inl else None})
    return out


def run_demo(data_dir: Path = DEFAULT_DATA, out_dir: Path = DEFAULT_OUT,
             model_dir: Path | None = None, rate: float = 1.0, storage: str = "mcap", log=print,
             mode: str = DEFAULT_MODE, pose_source: str = DEFAULT_POSE_SOURCE) -> dict:
    from vode_ros.bag.kitti_to_bag import convert
    from vode_ros.runtime.inference import OnnxModel, default_model_dir
    from vode_ros.core.kitti import KittiFormatError, load_sequence

    t_start = time.monotonic()
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    seq = load_sequence(data_dir)   # fails early, with the layout hint, on a bad folder
    if mode == "stereo" and seq.right is None:
        raise KittiFormatError(f"{data_dir}: --mode stereo needs the right images (image_1/) and the baseline in "
                               "calib.txt; use --mode mono")
    model_dir = Path(model_dir) if model_dir else default_model_dir()
    depth_model = OnnxModel(model_dir / "depth.onnx", expected_kind="depth")  # fail before any work
    OnnxModel(model_dir / "pose.onnx", expected_kind="pose")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "bags"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    in_bag, out_bag = work / "input", work / "output"
    log(f"[1/3] {data_dir} ({len(seq)} frames) -> rosbag2 {in_bag} ({storage})")
    convert(data_dir, in_bag, storage=storage, stamp_offset=STAMP_OFFSET, progress=False, overwrite=True)
    log(f"[2/3] bag -> depth_node + odometry_node (second process, real DDS; mode {mode}, pose source "
        f"{pose_source}) -> recorded bag")
    run = play_and_record(in_bag, out_bag, model_dir, rate, work, log, n_frames=len(seq), mode=mode,
                          pose_source=pose_source)
    missing = {topic: len(seq) - run["counts"][topic] for topic in ("/depth/image", "/odom")
               if run["counts"][topic] < len(seq)}
    if missing:
        raise DemoIncomplete(
            f"frames lost although the replay was reliable: {len(seq)} frames in, "
            + ", ".join(f"{run['counts'][t]} on {t}" for t in missing)
            + f"; see {run['node_log']} (the previous report in {out_dir} is kept)")
    # Only now, with a complete run to report, the previous report goes.
    for stale in [*out_dir.glob("depth_*.png"), out_dir / "trajectory.png", out_dir / "report.json"]:
        stale.unlink(missing_ok=True)
    log("[3/3] evaluating the recorded outputs")
    report = {
        "data": str(data_dir), "frames_in": len(seq), "mode": mode, "pose_source": pose_source,
        "geometry_depth": ("none (the pose net alone)" if pose_source == "net" else
                           "stereo SGBM at about 416 px wide" if mode == "stereo" else "the depth node's depth (in process)"),
        "frames_out": {"depth": run["counts"]["/depth/image"], "odometry": run["counts"]["/odom"]},
        "model": {"dir": str(model_dir), "method": depth_model.meta.method,
                  "metric_scale": depth_model.meta.metric_scale,
                  "input": f"{depth_model.meta.width}x{depth_model.meta.height} {depth_model.meta.color}",
                  "trained_on": depth_model.meta.raw.get("vode.trained_on", "")},
        "playback": {"rate": rate, "play_s": run["play_s"], "wall_s": run["wall_s"],
                     "input_fps": len(seq) / run["play_s"] if run["play_s"] > 0 else None,
                     "output_fps": run["counts"]["/odom"] / run["wall_s"] if run["wall_s"] > 0 else None},
        "bags": {"input": str(in_bag), "output": str(out_bag)},
        "runner": run["runner"],
        "replay": {"reliable": True, "frames_complete": True,
                   "qos": "player RELIABLE + KEEP_ALL, nodes reliable_input (every frame processed)"},
    }
    report.update(evaluate(data_dir, in_bag, out_bag, out_dir, log=log))
    report["notes"] = _notes(report, data_dir)
    report["demo_wall_s"] = time.monotonic() - t_start
    with atomic_write(out_dir / "report.json") as fh:
        fh.write(json.dumps(report, indent=2, default=float))
    return report


def _notes(report: dict, data_dir: Path) -> str:
    """What was scored against what, from what the folder had."""
    parts = []
    dt = report.get("depth_truth")
    if dt:
        parts.append(f"Depth is scored against {dt['label']} at full resolution, depth in (1e-3, "
                     f"{dt['max_depth']:g}) m, Garg crop {'on' if dt['garg_crop'] else 'off'} (the rules of "
                     "`vode eval depth`); 'depth_metric' uses the model's own scale, 'depth_median_scaled' applies "
                     "per-image median scaling (the monocular protocol).")
        if report.get("mode") == "stereo" and dt.get("source") == "sgbm":
            parts.append("In mode stereo the depth node publishes SGBM fused with the net (fuse_stereo): scored "
                         "against SGBM it is partly scored against itself, no fair judge; docs/adaptation.md "
                         "scores the fusion against sensor depth and on SGBM pixels hidden from it.")
    else:
        parts.append("Depth is not scored: the folder has no depth ground truth (depth_0/, Velodyne, or a right "
                     "camera for SGBM); the depth_*.png panels show what was published.")
    if "trajectory" in report:
        parts.append("ATE compares /odom (base_link in odom) with ground truth after Sim(3) alignment; ATE-5 is "
                     "SfMLearner's 5-frame snippet protocol.")
    else:
        parts.append("The trajectory is not scored: the folder has no poses.txt; trajectory.png shows /odom.")
    if Path(data_dir).name == DEFAULT_DATA.name:
        parts.append("Reference on this clip from data/README.md (classical ORB+SGBM stereo VO, not run here): "
                     "ATE-5 0.0126 +- 0.0045 m.")
    return " ".join(parts)


def summary(report: dict) -> str:
    lines = [f"mode {report.get('mode')}, pose source {report.get('pose_source')} "
             f"(geometry depth: {report.get('geometry_depth')})",
             f"frames in {report['frames_in']}, depth out {report['frames_out']['depth']}, "
             f"odometry out {report['frames_out']['odometry']}  (model: {report['model']['method']}, "
             f"{report['model']['input']})"]
    tr = report.get("trajectory")
    if tr:
        lines.append(f"trajectory: ATE {tr['ate_sim3_rmse_m']:.3f} m after Sim(3) (scale {tr['sim3_scale']:.3f}), "
                     f"{tr['ate_se3_rmse_m']:.3f} m after SE(3); ATE-5 {tr['ate5_mean_m']:.4f} +- "
                     f"{tr['ate5_std_m']:.4f} m; end drift {tr['end_drift_pct']:.2f} % of the path; "
                     f"path {tr['path_length_est_m']:.1f} m vs GT {tr['path_length_gt_m']:.1f} m")
    if not tr:
        lines.append("trajectory: not scored (no poses.txt)")
    truth = report.get("depth_truth", {}).get("label")
    if not truth:
        lines.append("depth: not scored (no depth ground truth in the folder)")
    for key, label in (("depth_metric", "depth (metric)"), ("depth_median_scaled", "depth (median-scaled)")):
        d = report.get(key)
        if d:
            lines.append(f"{label} vs {truth}: AbsRel {d['abs_rel']:.3f}  SqRel {d['sq_rel']:.3f}  "
                         f"RMSE {d['rmse']:.2f} m  d<1.25 {d['a1']:.3f}")
    if np.isfinite(report.get("depth_scale_pred_over_truth", float("nan"))):
        lines.append(f"depth scale: the published depth is x{report['depth_scale_pred_over_truth']:.2f} the truth "
                     "(median; each depth panel has its own colour range)")
    for role in ("depth_node", "pose_node"):
        n = report.get(role)
        if n:
            lines.append(f"{role}: inference {n['inference_ms_median']:.1f} ms ({n['inference_fps']:.1f} FPS) "
                         f"on {n['provider']}, per frame {n['process_ms_median']:.1f} ms, "
                         f"receive->publish p50 {n['receive_to_publish_ms_median']:.1f} ms, "
                         f"dropped {n['frames_dropped']}, rejected {n['frames_rejected']}, "
                         f"scale source {n.get('scale_source') or 'unknown'}")
            if role == "pose_node" and "pose_sources" in n:
                lines.append(f"pose_node: motions by source {n['pose_sources']}, fallbacks {n['fallbacks']}, "
                             f"median inliers {n['inliers_median']}")
    return "\n".join(lines)
