"""`vode compare`: every method for the same short budget, on the synthetic set and on the
KITTI clip; one table of depth Abs Rel, ATE-5, metric-scale error, step time and size.

Each (method, dataset) cell: train stage 1 (and stage 2 where the method has one, with
train.init = stage 1) for `steps` steps at the same size and batch, export ONNX, evaluate
with the same `vode eval` functions. Numbers from a short budget rank the pipelines' early
learning, not the methods' published accuracy.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from vode_ros.core.resources import resource_path

CONFIGS = resource_path("config", "train")
METHODS = ("sfmlearner", "sfmlearner_paper", "undeepvo", "deep_vo_feat", "geonet", "lkvo", "rnn_mvod")
STEREO = {"sfmlearner", "undeepvo", "deep_vo_feat"}   # trained with the right camera: metric scale


def _train(config: Path, out: Path, overrides: list[str]) -> dict[str, Any]:
    from vode_training.config import load_config
    from vode_training.trainer import Trainer

    cfg = load_config(config, overrides)
    return Trainer(cfg, out, progress=False).train()


def run_cell(method: str, data: Path, out: Path, steps: int, width: int, height: int,
             batch: int) -> dict[str, Any]:
    import torch

    from vode_ros.tools.evaluate import evaluate_depth, evaluate_pose
    from vode_training.export import export_checkpoint
    from vode_training.trainer import load_checkpoint, method_from_checkpoint

    common = [f"data.path={data}", f"data.width={width}", f"data.height={height}", f"train.steps={steps}",
              f"train.batch_size={batch}", f"train.ckpt_every={steps}", f"train.log_every={max(1, steps // 5)}"]
    t0 = time.monotonic()
    res = _train(CONFIGS / f"{method}.yaml", out / "stage1", common)
    seconds, n_steps = res["seconds"], res["trained_steps"]
    ckpt = res["checkpoint"]
    stage2 = CONFIGS / f"{method}_stage2.yaml"
    if stage2.is_file():
        res = _train(stage2, out / "stage2", common + [f"train.init={ckpt}"])
        seconds, n_steps, ckpt = seconds + res["seconds"], n_steps + res["trained_steps"], res["checkpoint"]
    model = method_from_checkpoint(load_checkpoint(ckpt))
    params = {k: sum(p.numel() for p in v.parameters()) for k, v in model.nets.items()}
    export_checkpoint(ckpt, out / "onnx")
    metric = method in STEREO
    depth = evaluate_depth(data, out / "onnx", median_scaling=not metric, progress=False)
    pose = evaluate_pose(data, out / "onnx", progress=False)
    row = {
        "method": method, "data": str(data), "steps": n_steps, "size": f"{width}x{height}", "batch": batch,
        "abs_rel": depth["metrics"]["abs_rel"], "a1": depth["metrics"]["a1"],
        "depth_gt": depth.get("gt_source", ""), "median_scaling": not metric,
        "ate5_mean": pose["ate5"]["mean"], "ate5_std": pose["ate5"]["std"],
        "step_s": seconds / max(1, n_steps), "params_m": {k: round(v / 1e6, 2) for k, v in params.items()},
        "wall_s": time.monotonic() - t0,
    }
    if metric:
        row["scale_error"] = pose["path_length_est"] / pose["path_length_gt"] - 1.0
    torch.set_num_threads(2)
    return row


def to_markdown(rows: list[dict[str, Any]]) -> str:
    head = ("| method | data | steps | Abs Rel | δ<1.25 | ATE-5 (m) | metric-scale error | s/step | params (M) |\n"
            "|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['method']} | {Path(r['data']).name} | failed: {r['error']} |||||||")
            continue
        scale = f"{r['scale_error'] * 100:+.1f} %" if "scale_error" in r else "n/a (mono)"
        params = " + ".join(f"{k} {v}" for k, v in r["params_m"].items())
        lines.append(f"| {r['method']} | {Path(r['data']).name} | {r['steps']} | {r['abs_rel']:.3f}"
                     f"{'' if not r['median_scaling'] else ' (med.)'} | {r['a1']:.3f} | "
                     f"{r['ate5_mean']:.4f} ± {r['ate5_std']:.4f} | {scale} | {r['step_s']:.2f} | {params} |")
    return "\n".join(lines)


def compare(datasets: list[Path], out: Path, methods: tuple[str, ...] = METHODS, steps: int = 100,
            width: int = 208, height: int = 64, batch: int = 4, log=print) -> list[dict[str, Any]]:
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for data in datasets:
        for method in methods:
            if not (CONFIGS / f"{method}.yaml").is_file():
                log(f"skip {method}: no config/train/{method}.yaml")
                continue
            log(f"{method} on {data.name}: {steps} steps at {width}x{height}")
            try:
                rows.append(run_cell(method, data, out / data.name / method, steps, width, height, batch))
            except Exception as exc:   # one broken method must not hide the others' numbers
                rows.append({"method": method, "data": str(data), "error": f"{type(exc).__name__}: {exc}"})
            (out / "compare.json").write_text(json.dumps(rows, indent=2, default=float))
    md = to_markdown(rows)
    (out / "compare.md").write_text(
        f"# vode compare ({steps} steps per stage, {width}x{height}, batch {batch})\n\n{md}\n\n"
        "Abs Rel vs the data's ground truth (synthetic: exact depth; KITTI clip: stereo SGBM pseudo-GT); "
        "'(med.)' = per-image median scaling (monocular methods). ATE-5: SfMLearner's 5-frame protocol "
        "on the chained pairwise poses. Metric-scale error: predicted / true path length - 1 (stereo-"
        "trained methods, no alignment). s/step: wall time per step on this machine, both stages.\n")
    return rows
