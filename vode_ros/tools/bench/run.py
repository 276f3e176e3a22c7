"""One bench run: machine description, the nets, the nodes, int8 accuracy and GPU rows -> JSON report."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from .accuracy import int8_accuracy
from .calibration import calibration_batches, clip_inputs, spaced
from .config import BASELINE, BenchConfig
from .gpu import gpu_candidates, onnx_input_shape
from .int8 import quantize_int8
from .node_runs import measure_nodes, raw_model_rates
from .random_nets import NetSpec, export_random, input_shape, onnx_params, random_nets
from .sessions import make_session, ort_settings
from .timing import ort_runner, round_robin, stats, torch_runner


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
        shape = input_shape(s.kind, c, w, h) if s.module is not None else onnx_input_shape(s.fp32)
        if s.module is not None and cfg.torch:
            cands[f"{s.kind}/{s.name}/torch"] = torch_runner(s.module, shape)
            meta[f"{s.kind}/{s.name}/torch"] = (s, "torch")
        cands[f"{s.kind}/{s.name}/ort-fp32"] = ort_runner(make_session(s.fp32, cfg.threads), shape)
        meta[f"{s.kind}/{s.name}/ort-fp32"] = (s, "ort-fp32")
        if s.int8 is not None:
            cands[f"{s.kind}/{s.name}/ort-int8"] = ort_runner(make_session(s.int8, cfg.threads), shape)
            meta[f"{s.kind}/{s.name}/ort-int8"] = (s, "ort-int8")
    gpu = gpu_candidates(specs, cfg, work)
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
            raw: dict[str, float] = {}       # measured once per model set, at the first feed rate
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
