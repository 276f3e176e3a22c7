"""The bench report as a text table and as JSON."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


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
    hdr = (f"{'net':32s} {'kind':5s} {'runtime':18s} {'FPS':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'params':>9s} "
           f"{'x DispNet ORT':>13s}")
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
            if "frames_in" in v:
                lines.append(f"  {'':12s} of {v['images_published']} images published: {v['frames_in']} reached the "
                             f"node, {v['frames_out']} out, {v['frames_dropped']} dropped (newest wins), "
                             f"{v['frames_rejected']} rejected")
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
