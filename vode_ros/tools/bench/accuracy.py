"""int8 accuracy of a trained depth model: Abs Rel of int8 vs fp32 depth on the clip, and of both
vs SGBM stereo pseudo ground truth."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .calibration import clip_inputs, spaced
from .config import BenchConfig
from .int8 import quantize_int8


def int8_accuracy(fp32_path: Path, cfg: BenchConfig, work: Path) -> dict[str, Any]:
    from vode_ros.core.depth_metrics import compute_depth_metrics, mean_metrics
    from vode_ros.core.kitti import load_sequence, read_image
    from vode_ros.core.stereo_depth import sgbm_depth
    from vode_ros.runtime.inference import DepthNet, OnnxModel

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
        d32 = DepthNet(fp32)(inputs[i])
        d8 = DepthNet(int8)(inputs[i])
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
