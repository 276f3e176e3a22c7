"""`vode bench`: speed of the depth / pose nets and of the real nodes, from one run on one machine.

1. Nets (randomly initialised: speed does not depend on the weights) - the SfMLearner DispNet
   baseline, the small DepthNet, LiteDepthNet, PoseNet, LitePoseNet - plus, with a models dir,
   the shipped depth.onnx / pose.onnx, each in torch (eval, inference mode), ONNX Runtime fp32
   and ONNX Runtime int8 (static QDQ quantisation, calibrated on KITTI clip frames preprocessed
   by ``OnnxModel.preprocess``, the run time's own code). All candidates are timed round-robin
   in several rounds, so load that comes and goes hits them alike; the ratio column is FPS over
   the FPS of DispNet in ORT fp32 measured in the same run.
2. Nodes: DepthNode + OdometryNode (real rclpy, one in-process executor) on the lite fp32
   models (and the models dir's), fed KITTI frames (1226x370 mono8) by a publisher thread at
   maximum rate and at 30 Hz (``pub_hz``; the nodes keep the newest frame); output rates vs the
   raw ``OnnxModel.run`` rate of the same files, and latency from the image header stamp (wall
   time at publish) to receipt of depth / odometry.
3. int8 accuracy of a trained depth model (``--depth-model``, else the models dir's, else the
   shipped one): Abs Rel of int8 vs fp32 depth on the clip, and of both vs SGBM stereo pseudo-GT.
4. GPU rows when ONNX Runtime offers CUDA / TensorRT, else one line saying they were skipped.

ORT sessions: graph optimisation ALL, intra-op threads = --threads, inter-op 1, sequential.
Needs torch (the training extras) for the random nets; ``run_bench`` returns the JSON report.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import platform
import shutil
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vode_ros.core.resources import demo_clip

DEFAULT_DATA = demo_clip()
MEAN, STD = [0.45], [0.225]          # the training default (model.mean / model.std)
BASELINE = ("dispnet", "ort-fp32")
OPSET = 17


@dataclass
class BenchConfig:
    width: int = 416
    height: int = 128
    threads: int = 2
    seconds: float = 3.0            # timing budget per candidate (split over the rounds)
    rounds: int = 5
    warmup: int = 2                 # untimed calls per candidate before timing
    min_iters: int = 2              # timed calls per candidate and round, at least
    channels: int = 1               # 1 = grey like the shipped models and the KITTI clip
    models_dir: Path | None = None
    depth_model: Path | None = None  # int8 accuracy model (default: models_dir/depth.onnx)
    data_dir: Path = DEFAULT_DATA
    calib_frames: int = 16
    accuracy_frames: int = 0        # 0 = all frames of the clip
    node_seconds: float = 5.0
    pub_hz: tuple[float, ...] = (0.0, 30.0)   # feed rates of the node runs; 0 = as fast as possible
    torch: bool = True
    int8: bool = True
    int8_baseline: bool = True      # quantise the 31.6 M-parameter DispNet too (seconds of I/O)
    nodes: bool = True
    work_dir: Path | None = None    # keep the exported / quantised models here
    log: Callable[[str], None] = field(default=print, repr=False)


# --------------------------------------------------------------------------- ORT sessions
def ort_settings(threads: int) -> dict[str, Any]:
    return {"graph_optimization_level": "ORT_ENABLE_ALL", "intra_op_num_threads": threads,
            "inter_op_num_threads": 1, "execution_mode": "ORT_SEQUENTIAL"}


def session_options(threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return opts


def make_session(path: Path, threads: int, provider: str = "CPUExecutionProvider",
                 provider_options: dict | None = None):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), session_options(threads), providers=[provider],
                                provider_options=[provider_options or {}])


# --------------------------------------------------------------------------- random nets, export
@dataclass
class NetSpec:
    name: str            # dispnet | small | lite (depth); small | lite (pose); shipped
    kind: str            # depth | pose
    label: str
    module: Any = None   # torch module (None for shipped ONNX files)
    params: int = 0
    fp32: Path | None = None
    int8: Path | None = None


def random_nets(channels: int) -> list[NetSpec]:
    """The benchmarked nets, randomly initialised, eval mode (seeded)."""
    import torch

    from vode_training.nets.registry import build_depth_net, build_pose_net

    torch.manual_seed(0)
    specs = [NetSpec("dispnet", "depth", "DispNet (SfMLearner, baseline)", build_depth_net("dispnet", channels)),
             NetSpec("small", "depth", "DepthNet (small)", build_depth_net("small", channels)),
             NetSpec("lite", "depth", "LiteDepthNet", build_depth_net("lite", channels)),
             NetSpec("small", "pose", "PoseNet (small)", build_pose_net("small", channels)),
             NetSpec("lite", "pose", "LitePoseNet", build_pose_net("lite", channels))]
    for s in specs:
        s.module.eval()
        s.params = sum(p.numel() for p in s.module.parameters())
    return specs


def _finest(module):
    import torch.nn as nn

    class Finest(nn.Module):
        """Export wrapper: the finest inverse depth only (as the method's export)."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, image):
            return self.net(image)[0]

    return Finest(module)


def input_shape(kind: str, channels: int, width: int, height: int) -> tuple[int, int, int, int]:
    return (1, channels * (2 if kind == "pose" else 1), height, width)


def export_random(spec: NetSpec, channels: int, width: int, height: int, path: Path) -> Path:
    """torch module -> ONNX with vode metadata (loadable by OnnxModel and the nodes)."""
    import io

    import onnx
    import torch

    in_name, out_name = ("image", "inv_depth") if spec.kind == "depth" else ("frames", "pose")
    module = _finest(spec.module) if spec.kind == "depth" else spec.module
    x = torch.zeros(input_shape(spec.kind, channels, width, height))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():   # the settings of vode_training.export (opset 17, TorchScript exporter)
            torch.onnx.export(module.eval(), (x,), buf, input_names=[in_name], output_names=[out_name],
                              opset_version=OPSET, dynamo=False, do_constant_folding=True)
    model = onnx.load_from_string(buf.getvalue())
    _add_metadata(model, {
        "vode.kind": spec.kind, "vode.method": f"bench-random-{spec.name}", "vode.input_width": str(width),
        "vode.input_height": str(height), "vode.channels": str(channels),
        "vode.color": "gray" if channels == 1 else "rgb", "vode.mean": json.dumps(MEAN * channels),
        "vode.std": json.dumps(STD * channels), "vode.metric_scale": "false", "vode.min_depth": "0.1",
        "vode.max_depth": "100.0", "vode.trained_on": "none (random weights, speed only)",
        "vode.train_steps": "0",
        "vode.created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "vode.output": "bench model with random weights"})
    onnx.save(model, str(path))
    return path


def _add_metadata(model, meta: dict[str, str]) -> None:
    """Replace the model's metadata_props (in memory; as vode_training.export._set_metadata does on file)."""
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)


def onnx_params(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT))


# --------------------------------------------------------------------------- calibration, int8
def clip_inputs(model_path: Path, data_dir: Path, indices: list[int] | None = None) -> list[np.ndarray]:
    """Net inputs (C, H, W) of clip frames, preprocessed by the run time's OnnxModel.preprocess."""
    from vode_ros.runtime.inference import OnnxModel
    from vode_ros.core.kitti import load_sequence, read_image

    model = OnnxModel(model_path, ["CPUExecutionProvider"], threads=1)
    seq = load_sequence(data_dir)
    idx = list(range(len(seq))) if indices is None else indices
    out = []
    for i in idx:
        img = read_image(seq.left[i])
        out.append(model.preprocess(img, "mono8" if img.ndim == 2 else "rgb8"))
    return out


def spaced(n_total: int, n: int) -> list[int]:
    """n frame indices spread evenly over 0..n_total-1."""
    n = max(1, min(n, n_total))
    return sorted({int(round(v)) for v in np.linspace(0, n_total - 1, n)})


def calibration_batches(kind: str, frames: list[np.ndarray]) -> list[np.ndarray]:
    """(1, C, H, W) images, or (1, 2C, H, W) [current, previous] pairs for pose."""
    if kind == "depth":
        return [f[None] for f in frames]
    return [np.concatenate([frames[i], frames[i - 1]], 0)[None] for i in range(1, len(frames))] or \
        [np.concatenate([frames[0], frames[0]], 0)[None]]


def _tail_nodes(model) -> list[str]:
    """Names of the last Conv on each path to a graph output and of everything after it.

    They stay fp32: 8-bit steps on the sigmoid-mapped inverse depth (or on the 0.01-scaled pose)
    would be a large relative error at far range, and these few nodes cost little."""
    producers = {o: n for n in model.graph.node for o in n.output}
    stop = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
    tail, todo = set(), [o.name for o in model.graph.output]
    while todo:
        node = producers.get(todo.pop())
        if node is None or node.name in tail:
            continue
        tail.add(node.name)
        if node.op_type not in stop:
            todo.extend(node.input)
    return sorted(tail)


def _stem_nodes(model, max_channels: int = 8) -> list[str]:
    """The first Conv(s) reading the graph input when it has few channels (an image): stay fp32.

    An int8 conv on 1..6 input channels runs ORT's generic im2col path, slower than its fp32
    NCHWc kernel (profiled: the stem of LiteDepthNet took 11 % of the int8 run time)."""
    inputs = {i.name: i for i in model.graph.input}
    out = []
    for node in model.graph.node:
        if node.op_type == "Conv" and node.input and node.input[0] in inputs:
            dims = inputs[node.input[0]].type.tensor_type.shape.dim
            if len(dims) == 4 and dims[1].dim_value and dims[1].dim_value <= max_channels:
                out.append(node.name)
    return out


def _inline_identity_initializers(model) -> int:
    """Replace Identity nodes that copy an initializer by a copy of that initializer.

    torch.onnx deduplicates equal parameters (e.g. all-zero biases) into one initializer plus
    Identity nodes; the quantiser needs each Conv bias as an initializer to quantise it to int32
    (else "Expected bias ... to be an initializer" and slower QDQ convs). This is what
    onnxruntime's quant_pre_process achieves for these graphs, without its shape-inference passes
    and model round trips (seconds on the 126 MB DispNet)."""
    import onnx

    inits = {t.name: t for t in model.graph.initializer}
    keep, n = [], 0
    for node in model.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[node.input[0]])
            t.name = node.output[0]
            model.graph.initializer.append(t)
            n += 1
        else:
            keep.append(node)
    if n:
        del model.graph.node[:]
        model.graph.node.extend(keep)
    return n


def quantize_int8(fp32_path: Path, out_path: Path, calib: list[np.ndarray], keep_stem_fp32: bool = True,
                  pre_process: bool = False) -> dict[str, Any]:
    """Static int8 quantisation, QDQ format, per-channel int8 weights, uint8 activations (MinMax
    calibration on ``calib``); the output head (``_tail_nodes``) and, with ``keep_stem_fp32``, the
    first conv on the image (``_stem_nodes``) stay fp32. Metadata is kept."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    model = onnx.load(str(fp32_path))
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    meta = {p.key: p.value for p in model.metadata_props}
    in_name = model.graph.input[0].name
    def fp32_nodes(m):
        return _tail_nodes(m) + (_stem_nodes(m) if keep_stem_fp32 else [])

    exclude = fp32_nodes(model)
    pre = out_path.with_suffix(".pre.onnx")
    preprocessed = False
    src = model
    if pre_process:   # ORT's recommended pre-processing (shape inference + graph optimisation)
        try:
            from onnxruntime.quantization.shape_inference import quant_pre_process

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quant_pre_process(model, str(pre), skip_symbolic_shape=True)
            src = onnx.load(str(pre))
            names = {n.name for n in src.graph.node}
            if not set(exclude) <= names:          # renamed by the optimiser: recompute on its graph
                exclude = fp32_nodes(src)
            preprocessed = True
        except Exception:   # noqa: BLE001 - fall back to the exported graph
            src = model
    if not preprocessed:
        _inline_identity_initializers(src)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {in_name: x.astype(np.float32)}

    def quiet(record) -> bool:   # the quantiser's root-logger advice to pre-process: done above
        return "pre-processing before quantization" not in record.getMessage()

    root = logging.getLogger()
    root.addFilter(quiet)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_static(src, str(out_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=exclude)
    finally:
        root.removeFilter(quiet)
    seconds = time.perf_counter() - t0
    if pre.exists():
        pre.unlink()
    q = onnx.load(str(out_path))
    meta["vode.quantization"] = (f"int8 static QDQ, per-channel int8 weights, uint8 activations, MinMax on "
                                 f"{len(calib)} inputs, fp32 nodes: {len(exclude)}")
    _add_metadata(q, meta)
    onnx.save(q, str(out_path))
    return {"path": str(out_path), "calibration_inputs": len(calib), "fp32_nodes": exclude,
            "pre_processed": "quant_pre_process" if preprocessed else "identity initializers inlined",
            "seconds": round(seconds, 2)}


# --------------------------------------------------------------------------- timing
def stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    if a.size == 0:
        return {"fps": 0.0, "ms_mean": float("nan"), "ms_p50": float("nan"), "ms_p95": float("nan"), "n": 0}
    return {"fps": float(1000.0 / a.mean()), "ms_mean": float(a.mean()), "ms_p50": float(np.percentile(a, 50)),
            "ms_p95": float(np.percentile(a, 95)), "n": int(a.size)}


def round_robin(cands: dict[str, Callable[[], Any]], seconds: float, rounds: int, warmup: int = 2,
                min_iters: int = 2) -> dict[str, list[float]]:
    """Time each callable for ``seconds`` in total, interleaved in ``rounds`` slices (ms per call)."""
    for fn in cands.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in cands}
    slice_s = seconds / max(1, rounds)
    for _ in range(max(1, rounds)):
        for key, fn in cands.items():
            end = time.perf_counter() + slice_s
            n = 0
            while n < min_iters or time.perf_counter() < end:
                t0 = time.perf_counter()
                fn()
                times[key].append((time.perf_counter() - t0) * 1e3)
                n += 1
    return times


def _torch_runner(module, shape):
    import torch

    x = torch.randn(*shape)

    def run():
        with torch.inference_mode():
            module(x)
    return run


def _ort_runner(session, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: x})


# --------------------------------------------------------------------------- nodes
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
        depth_node = DepthNode(context=ctx, namespace=ns, parameter_overrides=params)
        odom_node = OdometryNode(context=ctx, namespace=ns, parameter_overrides=params)
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
        time.sleep(cfg.node_seconds)
        t1, pub1 = time.time(), published[0]
        drops = (depth_node.worker.dropped - drop0[0], odom_node.worker.dropped - drop0[1])
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
                           "executor": "MultiThreadedExecutor(4), one process",
                           "node_threads_param": cfg.threads}
    for key, raw_key, dropped in (("depth", "depth", drops[0]), ("odom", "pose", drops[1])):
        rows = [(t, lat) for t, lat in got[key] if t0 <= t < t1]
        lat = [r[1] * 1e3 for r in rows]
        hz = len(rows) / window
        out[key] = {"hz": hz, "latency_ms_p50": float(np.percentile(lat, 50)) if lat else float("nan"),
                    "latency_ms_p95": float(np.percentile(lat, 95)) if lat else float("nan"),
                    "frames_dropped": dropped, "raw_fps": raw[raw_key],
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


# --------------------------------------------------------------------------- int8 accuracy
def int8_accuracy(fp32_path: Path, cfg: BenchConfig, work: Path) -> dict[str, Any]:
    from vode_ros.runtime.inference import DepthEstimator, OnnxModel
    from vode_ros.core.kitti import load_sequence, read_image
    from vode_ros.core.depth_metrics import compute_depth_metrics, mean_metrics
    from vode_ros.core.stereo_depth import sgbm_depth

    seq = load_sequence(cfg.data_dir)
    n = len(seq) if cfg.accuracy_frames <= 0 else min(cfg.accuracy_frames, len(seq))
    calib_idx = spaced(len(seq), cfg.calib_frames)
    used = sorted(set(calib_idx) | set(range(n)))
    inputs = dict(zip(used, clip_inputs(fp32_path, cfg.data_dir, used)))
    q = quantize_int8(fp32_path, work / "accuracy_depth.int8.onnx", [inputs[i][None] for i in calib_idx])
    fp32 = OnnxModel(fp32_path, ["CPUExecutionProvider"], cfg.threads, expected_kind="depth")
    int8 = OnnxModel(work / "accuracy_depth.int8.onnx", ["CPUExecutionProvider"], cfg.threads, expected_kind="depth")
    m = fp32.meta
    metric = m.metric_scale
    lo, hi = max(m.min_depth, 1e-3), min(m.max_depth, 80.0)
    vs_fp32, vs_gt32, vs_gt8 = [], [], []
    for i in range(n):
        d32 = DepthEstimator(fp32)(inputs[i])
        d8 = DepthEstimator(int8)(inputs[i])
        vs_fp32.append(compute_depth_metrics(d32, d8, lo, hi, garg_crop=False, median_scaling=False))
        if seq.right is not None and seq.baseline:
            gt = sgbm_depth(read_image(seq.left[i]), read_image(seq.right[i]), float(seq.k[0, 0]),
                            float(seq.baseline), max_depth=80.0)
            vs_gt32.append(compute_depth_metrics(gt, d32, 1e-3, 80.0, garg_crop=False, median_scaling=not metric))
            vs_gt8.append(compute_depth_metrics(gt, d8, 1e-3, 80.0, garg_crop=False, median_scaling=not metric))
    out: dict[str, Any] = {"model": str(fp32_path), "method": m.method, "frames": n,
                           "calibration_frames": calib_idx, "quantization": q,
                           "int8_vs_fp32": mean_metrics(vs_fp32)}
    out["int8_vs_fp32_abs_rel_ok"] = out["int8_vs_fp32"]["abs_rel"] <= 0.02
    if vs_gt32:
        g32, g8 = mean_metrics(vs_gt32), mean_metrics(vs_gt8)
        rel = (g8["abs_rel"] - g32["abs_rel"]) / g32["abs_rel"]
        out.update({"sgbm_median_scaling": not metric, "fp32_vs_sgbm": g32, "int8_vs_sgbm": g8,
                    "abs_rel_change_rel": rel, "within_2pct": abs(rel) <= 0.02})
    return out


# --------------------------------------------------------------------------- the run
def _machine() -> dict[str, Any]:
    import onnxruntime as ort

    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "onnxruntime": ort.__version__,
            "providers_available": list(ort.get_available_providers())}
    try:
        info["load_avg_start"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        cfg.log(f"[{time.perf_counter() - t_start:5.1f} s] {msg}")

    report: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "settings": {"width": cfg.width, "height": cfg.height, "channels": cfg.channels, "threads": cfg.threads,
                     "seconds_per_candidate": cfg.seconds, "rounds": cfg.rounds, "ort": ort_settings(cfg.threads),
                     "torch": None, "models_dir": str(cfg.models_dir) if cfg.models_dir else None,
                     "data_dir": str(cfg.data_dir), "calibration_frames": cfg.calib_frames},
        "machine": _machine(), "rows": [], "notes": []}
    work = Path(cfg.work_dir) if cfg.work_dir else Path(tempfile.mkdtemp(prefix="vode_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        _run(cfg, report, work, log)
    finally:
        if cfg.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    try:
        report["machine"]["load_avg_end"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    report["bench_seconds"] = round(time.perf_counter() - t_start, 1)
    log("done")
    return report


def _run(cfg: BenchConfig, report: dict[str, Any], work: Path, log) -> None:
    w, h, c = cfg.width, cfg.height, cfg.channels
    specs: list[NetSpec] = []
    have_torch = True
    try:
        import torch
    except ImportError:
        have_torch = False
        report["notes"].append("torch not installed: random nets and torch rows skipped")
    if have_torch:
        log(f"building and exporting the random nets ({w}x{h}, {c} channel{'s' if c > 1 else ''}) ...")
        specs = random_nets(c)
        for s in specs:
            s.fp32 = export_random(s, c, w, h, work / f"{s.kind}_{s.name}.onnx")
    if cfg.models_dir:
        md = Path(cfg.models_dir)
        for kind in ("depth", "pose"):
            f = md / f"{kind}.onnx"
            if f.is_file():
                specs.append(NetSpec("shipped", kind, f"models-dir {kind}.onnx", fp32=f, params=onnx_params(f)))
            else:
                report["notes"].append(f"{f} not found: not measured")
    if not specs:
        raise RuntimeError("nothing to measure: install torch or pass --models-dir with depth.onnx / pose.onnx")
    if cfg.int8:
        calib_src = {}
        idx = spaced(_clip_len(cfg.data_dir), cfg.calib_frames)
        for s in specs:
            if (s.kind, s.name) == ("depth", BASELINE[0]) and not cfg.int8_baseline:
                report["notes"].append("int8 of the DispNet baseline skipped (--no-int8-baseline / --quick)")
                continue
            random = s.module is not None          # the random nets share one preprocessing (metadata)
            key = (s.kind, random)
            if key not in calib_src:
                src = work / "depth_lite.onnx" if random else s.fp32     # a small model to preprocess with
                calib_src[key] = calibration_batches(s.kind, clip_inputs(src, cfg.data_dir, idx))
            s.int8 = work / f"{s.kind}_{s.name}.int8.onnx"
            log(f"int8: quantising {s.label} ({len(calib_src[key])} calibration inputs) ...")
            quantize_int8(s.fp32, s.int8, calib_src[key])
    cands: dict[str, Callable[[], Any]] = {}
    meta: dict[str, tuple[NetSpec, str]] = {}
    if have_torch and cfg.torch:
        prev_threads = torch.get_num_threads()
        torch.set_num_threads(cfg.threads)
        report["settings"]["torch"] = {"version": torch.__version__, "threads": cfg.threads,
                                       "mode": "eval + inference_mode, fp32"}
    for s in specs:
        shape = input_shape(s.kind, c, w, h) if s.module is not None else _onnx_shape(s.fp32)
        if s.module is not None and cfg.torch:
            cands[f"{s.kind}/{s.name}/torch"] = _torch_runner(s.module, shape)
            meta[f"{s.kind}/{s.name}/torch"] = (s, "torch")
        cands[f"{s.kind}/{s.name}/ort-fp32"] = _ort_runner(make_session(s.fp32, cfg.threads), shape)
        meta[f"{s.kind}/{s.name}/ort-fp32"] = (s, "ort-fp32")
        if s.int8 is not None:
            cands[f"{s.kind}/{s.name}/ort-int8"] = _ort_runner(make_session(s.int8, cfg.threads), shape)
            meta[f"{s.kind}/{s.name}/ort-int8"] = (s, "ort-int8")
    gpu = _gpu_candidates(specs, cfg, work)
    for key, (fn, s, runtime) in gpu["cands"].items():
        cands[key], meta[key] = fn, (s, runtime)
    report["gpu"] = gpu["info"]
    log(f"timing {len(cands)} candidates round-robin, {cfg.rounds} rounds, {cfg.seconds:g} s each ...")
    times = round_robin(cands, cfg.seconds, cfg.rounds, cfg.warmup, cfg.min_iters)
    if have_torch and cfg.torch:
        torch.set_num_threads(prev_threads)
    base_key = f"depth/{BASELINE[0]}/{BASELINE[1]}"
    base_fps = stats(times[base_key])["fps"] if base_key in times else float("nan")
    for key, ms in times.items():
        s, runtime = meta[key]
        row = {"key": key, "net": s.name, "label": s.label, "kind": s.kind, "runtime": runtime,
               "params": s.params, **stats(ms)}
        row["ratio_to_baseline"] = row["fps"] / base_fps if base_fps == base_fps else float("nan")
        report["rows"].append(row)
    report["baseline"] = {"key": base_key, "fps": base_fps}
    rows = {r["key"]: r for r in report["rows"]}
    combos = {}
    for dn, pn in (("lite", "lite"), ("small", "small"), ("dispnet", "small"), ("shipped", "shipped")):
        for rt in ("torch", "ort-fp32", "ort-int8", "ort-cuda-fp32", "ort-tensorrt-fp32"):
            d, p = rows.get(f"depth/{dn}/{rt}"), rows.get(f"pose/{pn}/{rt}")
            if d and p:
                ms = d["ms_mean"] + p["ms_mean"]
                combos[f"{dn}+{pn}/{rt}"] = {"depth": dn, "pose": pn, "runtime": rt, "ms_mean": ms,
                                             "ms_p50": d["ms_p50"] + p["ms_p50"], "fps": 1000.0 / ms,
                                             "ratio_to_baseline": 1000.0 / ms / base_fps}
    report["depth_plus_pose"] = combos
    lite = combos.get("lite+lite/ort-fp32")
    if lite:
        report["target"] = {"fps_min": 30.0, "ratio_min": 7.0, "lite_ort_fp32_fps": lite["fps"],
                            "lite_ort_fp32_ratio": lite["ratio_to_baseline"],
                            "met": lite["fps"] >= 30.0 and lite["ratio_to_baseline"] >= 7.0}
    if cfg.nodes:
        report["nodes"] = {}
        sets = []
        if have_torch:
            lite_dir = work / "nodes_lite"
            lite_dir.mkdir(exist_ok=True)
            for kind in ("depth", "pose"):
                shutil.copyfile(work / f"{kind}_lite.onnx", lite_dir / f"{kind}.onnx")
            sets.append(("lite_fp32", lite_dir))
        if cfg.models_dir and all((Path(cfg.models_dir) / f"{k}.onnx").is_file() for k in ("depth", "pose")):
            sets.append(("shipped_fp32", Path(cfg.models_dir)))
        for name, d in sets:
            for hz in cfg.pub_hz:
                feed = f"{hz:g}Hz" if hz > 0 else "max"
                log(f"nodes: {name}, feed {feed} ...")
                try:
                    raw = raw_model_rates(d, cfg) if hz == cfg.pub_hz[0] else raw
                    report["nodes"][f"{name}@{feed}"] = measure_nodes(d, cfg, raw, hz)
                except Exception as exc:   # noqa: BLE001 - report, keep the rest of the bench
                    report["nodes"][f"{name}@{feed}"] = {"error": f"{exc.__class__.__name__}: {exc}"}
    acc_model = cfg.depth_model or (Path(cfg.models_dir) / "depth.onnx" if cfg.models_dir else None)
    if acc_model is None:                        # the shipped model, when there is one
        from vode_ros.runtime.inference import default_model_dir

        shipped = default_model_dir() / "depth.onnx"
        acc_model = shipped if shipped.is_file() else None
    if cfg.int8 and acc_model and Path(acc_model).is_file():
        log(f"int8 accuracy of {acc_model} ...")
        report["int8_accuracy"] = int8_accuracy(Path(acc_model), cfg, work)
    else:
        report["int8_accuracy"] = None
        report["notes"].append("int8 accuracy skipped: no trained depth model (none shipped; give --models-dir "
                               "or --depth-model)" if cfg.int8 else "int8 accuracy skipped (--no-int8)")


def _clip_len(data_dir: Path) -> int:
    from vode_ros.core.kitti import load_sequence

    return len(load_sequence(data_dir))


def _onnx_shape(path: Path) -> tuple[int, ...]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return tuple(int(d) for d in sess.get_inputs()[0].shape)


def _gpu_candidates(specs: list[NetSpec], cfg: BenchConfig, work: Path) -> dict[str, Any]:
    import onnxruntime as ort

    avail = ort.get_available_providers()
    gpu_eps = [p for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider") if p in avail]
    if not gpu_eps:
        return {"cands": {}, "info": {"skipped": True,
                                      "line": f"GPU rows skipped: onnxruntime offers {', '.join(avail)} "
                                              "(no CUDA / TensorRT execution provider)"}}
    cands, errors = {}, []
    cache = work / "trt_cache"
    cache.mkdir(exist_ok=True)
    for ep in gpu_eps:
        short = "cuda" if ep.startswith("CUDA") else "tensorrt"
        opts = {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)} if short == "tensorrt" else {}
        for s in specs:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")     # "not in available provider names": reported below
                    sess = make_session(s.fp32, cfg.threads, ep, opts)
                if sess.get_providers()[0] != ep:
                    raise RuntimeError(f"fell back to {sess.get_providers()[0]}")
                cands[f"{s.kind}/{s.name}/ort-{short}-fp32"] = (_ort_runner(sess, _onnx_shape(s.fp32)), s,
                                                                f"ort-{short}-fp32")
            except Exception as exc:   # noqa: BLE001
                errors.append(f"{ep} {s.label}: {exc.__class__.__name__}: {exc}")
    return {"cands": cands, "info": {"skipped": False, "providers": gpu_eps, "tensorrt_cache": str(cache),
                                     "errors": errors}}


# --------------------------------------------------------------------------- output
def _fmt_params(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n / 1e3:.0f} K"


def format_report(rep: dict[str, Any]) -> str:
    s, m = rep["settings"], rep["machine"]
    lines = [f"vode bench  {s['width']}x{s['height']}, {s['channels']} channel(s), {s['threads']} threads, "
             f"{s['seconds_per_candidate']:g} s per candidate in {s['rounds']} round-robin rounds",
             f"machine: {m.get('cpu', m['processor'])}, {m['cpu_count']} CPUs, load average at start "
             f"{m.get('load_avg_start')}, at end {m.get('load_avg_end')}; onnxruntime {m['onnxruntime']}",
             "ORT session: " + ", ".join(f"{k}={v}" for k, v in s["ort"].items())
             + (f"; torch {s['torch']['version']} {s['torch']['threads']} threads, {s['torch']['mode']}"
                if s.get("torch") else ""),
             *([f"models dir (rows 'models-dir ...', nodes 'shipped_fp32'): {s['models_dir']}"] if s.get("models_dir") else []),
             "int8: static QDQ (onnxruntime.quantization.quantize_static), per-channel int8 weights, uint8 "
             f"activations, MinMax calibration on {s['calibration_frames']} clip frames via OnnxModel.preprocess; "
             "output head and image stem conv kept fp32", ""]
    hdr = f"{'net':32s} {'kind':5s} {'runtime':18s} {'FPS':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'params':>9s} {'x DispNet ORT':>13s}"
    lines += [hdr, "-" * len(hdr)]
    for r in rep["rows"]:
        lines.append(f"{r['label']:32s} {r['kind']:5s} {r['runtime']:18s} {r['fps']:8.1f} {r['ms_p50']:8.2f} "
                     f"{r['ms_p95']:8.2f} {_fmt_params(r['params']):>9s} {r['ratio_to_baseline']:12.2f}x")
    lines.append("")
    lines.append("depth + pose per frame (sum of mean times):")
    for k, v in rep.get("depth_plus_pose", {}).items():
        lines.append(f"  {k:32s} {v['ms_mean']:8.2f} ms  {v['fps']:7.1f} FPS  {v['ratio_to_baseline']:6.2f}x DispNet ORT fp32")
    t = rep.get("target")
    if t:
        lines.append(f"target (lite depth + lite pose, ORT fp32): >= {t['fps_min']:g} FPS and >= {t['ratio_min']:g}x: "
                     f"{t['lite_ort_fp32_fps']:.1f} FPS, {t['lite_ort_fp32_ratio']:.1f}x -> "
                     f"{'met' if t['met'] else 'NOT met'}")
    g = rep.get("gpu") or {}
    if g.get("skipped"):
        lines.append(g["line"])
    elif g:
        lines.append(f"GPU providers: {', '.join(g['providers'])}; TensorRT engine cache {g['tensorrt_cache']}"
                     + (f"; errors: {'; '.join(g['errors'])}" if g.get("errors") else ""))
    for name, n in (rep.get("nodes") or {}).items():
        lines.append("")
        if "error" in n:
            lines.append(f"nodes ({name}): failed: {n['error']}")
            continue
        feed = "max rate" if n["feed_hz"] == "max" else f"target {n['feed_hz']:g} Hz"
        lines.append(f"nodes ({name}, {n['model_dir']}): DepthNode + OdometryNode, {n['executor']}, threads param "
                     f"{n['node_threads_param']}; images published at {n['published_hz']:.1f} Hz ({feed}), "
                     f"{n['seconds']:.1f} s window")
        for key, label in (("depth", "depth/image"), ("odom", "odom")):
            v = n[key]
            lines.append(f"  {label:12s} {v['hz']:6.1f} Hz   raw OnnxModel.run {v['raw_fps']:6.1f} FPS   ratio "
                         f"{v['ratio_to_raw']:.2f}   latency stamp->receipt p50 {v['latency_ms_p50']:.1f} ms "
                         f"p95 {v['latency_ms_p95']:.1f} ms   dropped {v['frames_dropped']}")
        p = n["pipeline"]
        lines.append(f"  both         {p['hz']:6.1f} Hz   raw depth+pose sequential {p['raw_sequential_fps']:6.1f} FPS"
                     f"   ratio {p['ratio_to_raw']:.2f}")
    a = rep.get("int8_accuracy")
    if a:
        lines += ["", f"int8 accuracy: {a['model']} ({a['method']}), {a['frames']} clip frames, calibrated on "
                      f"{len(a['calibration_frames'])} of them"]
        f = a["int8_vs_fp32"]
        lines.append(f"  int8 vs fp32 depth (fp32 as reference): Abs Rel {f['abs_rel']:.4f}  RMSE {f['rmse']:.3f} m  "
                     f"d<1.25 {f['a1']:.4f}  -> {'within' if a['int8_vs_fp32_abs_rel_ok'] else 'NOT within'} 0.02")
        if "fp32_vs_sgbm" in a:
            g32, g8 = a["fp32_vs_sgbm"], a["int8_vs_sgbm"]
            ms = "median-scaled" if a["sgbm_median_scaling"] else "metric, no median scaling"
            lines.append(f"  vs SGBM pseudo-GT ({ms}): Abs Rel fp32 {g32['abs_rel']:.4f}, int8 {g8['abs_rel']:.4f} "
                         f"({100 * a['abs_rel_change_rel']:+.2f} %) -> {'within' if a['within_2pct'] else 'NOT within'} 2 %")
    for note in rep.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def to_json(rep: dict[str, Any], path: Path) -> None:
    def clean(o):
        if isinstance(o, float) and o != o:
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if isinstance(o, (np.floating, np.integer)):
            return clean(o.item())
        if isinstance(o, Path):
            return str(o)
        return o

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(clean(rep), indent=2))
