"""`vode compare`: every method trained on a split's training sequences for the same budget,
scored on its held-out sequences; one Markdown table + JSON.

Split ``NAME``: ``<splits>/NAME_train.txt`` and ``NAME_heldout.txt``, one folder name a line
(KITTI odometry layout) under the data root. Stereo-trained methods (:data:`STEREO`, metric
scale) train on the training folders with right images; monocular methods on all of them.
Every stage trains ``steps`` steps at the same size and batch (two-stage methods: stage 2 starts
from stage 1 and trains ``steps`` more). The last checkpoint is exported to ONNX and scored on
every held-out sequence with the ``vode eval`` functions: depth (median-scaled, metric, and the
constant-depth baseline on the same pixels) and the pose net alone (pose_source net).

Output folder: ``settings.json`` (the budget; a resumed compare must match it), one folder per
method (``stage1/``, ``stage2/`` with checkpoints, ``onnx/``, ``state.json``: training time per
stage, ``result.json``: the finished row), ``compare.json`` and ``compare.md`` over every
finished method. With ``resume`` finished methods are skipped and an unfinished stage continues
from its checkpoint; SIGINT / SIGTERM stop training after the current step with a checkpoint.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from vode_ros.core.atomic_file import atomic_write
from vode_ros.core.resources import resource_path

CONFIGS = resource_path("config", "train")
SPLITS = resource_path("config", "splits")
METHODS = ("sfmlearner", "sfmlearner_paper", "undeepvo", "deep_vo_feat", "geonet", "lkvo", "rnn_mvod")
STEREO = {"sfmlearner", "undeepvo", "deep_vo_feat"}   # trained with the right camera: metric scale
SETTINGS_KEYS = ("split", "train", "heldout", "steps", "width", "height", "batch", "max_frames")


class CompareError(ValueError):
    """Bad input (split, data root, output folder); the message says what to do."""


class CompareStopped(RuntimeError):
    """Training was stopped by a signal after a checkpoint; the same command with --resume continues."""


def read_split(path: Path) -> list[str]:
    """Folder names of a split file: one a line, '#' comments and blank lines skipped."""
    if not path.is_file():
        raise CompareError(f"split file {path} not found: give a split NAME with {path.parent}/NAME_train.txt "
                           "and NAME_heldout.txt (--split, --splits-dir)")
    names = [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines()]
    names = [n for n in names if n]
    if not names:
        raise CompareError(f"split file {path} lists no folder")
    return names


def default_data_roots() -> list[Path]:
    """Where a split's folders are looked for without --data-root: the repo's data/, then the shared
    data folder next to the repo (where pose_bench looks too)."""
    data = resource_path("data")
    return [data, data.parent / ".." / "shared" / "data"]


def find_data_root(names: list[str], given: Path | None, split_file: Path) -> Path:
    """The data root holding every folder in ``names`` (the given one, else the first default that does)."""
    candidates = [given] if given is not None else default_data_roots()
    for root in candidates:
        if all((root / n).is_dir() for n in names):
            return root.resolve()
    root = candidates[0]
    if not root.is_dir():
        raise CompareError(f"data root {root} not found: pass --data-root DIR, the folder holding the split's sequences")
    missing = next(n for n in names if not (root / n).is_dir())
    raise CompareError(f"data root {root} has no folder {missing} (listed in {split_file}): pass --data-root DIR, "
                       "the folder holding the split's sequences")


def is_stereo(folder: Path) -> bool:
    return (folder / "image_1").is_dir() or (folder / "image_3").is_dir()


def hardware() -> dict[str, Any]:
    """What the figures were measured on (s/step and wall time depend on it)."""
    import platform

    import torch

    from vode_training.distributed import choose_device

    device = choose_device("auto")
    return {"cpu_count": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
            "torch_device": str(device), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}


@dataclass
class Settings:
    """The budget and data of one compare; a resumed compare has to match it."""

    split: str
    train: list[str]
    heldout: list[str]
    data_root: str
    steps: int = 2000
    width: int = 416
    height: int = 128
    batch: int = 4
    max_frames: int = 0                       # 0 = all frames (per training folder and held-out sequence)
    threads: int = 0                          # train.num_threads of every method; 0 = the configs' own
    stereo_train: list[str] = field(default_factory=list)

    @classmethod
    def from_split(cls, split: str, data_root: Path | None = None, splits_dir: Path = SPLITS,
                   **budget: Any) -> Settings:
        train_file, heldout_file = splits_dir / f"{split}_train.txt", splits_dir / f"{split}_heldout.txt"
        train, heldout = read_split(train_file), read_split(heldout_file)
        root = find_data_root(train, data_root, train_file)
        if any(not (root / n).is_dir() for n in heldout):
            missing = next(n for n in heldout if not (root / n).is_dir())
            raise CompareError(f"data root {root} has no folder {missing} (listed in {heldout_file}): pass "
                               "--data-root DIR, the folder holding the split's sequences")
        if set(train) & set(heldout):
            raise CompareError(f"{train_file} and {heldout_file} share {sorted(set(train) & set(heldout))}: "
                               "a held-out sequence must not be trained on")
        return cls(split, train, heldout, str(root), stereo_train=[n for n in train if is_stereo(root / n)],
                   **budget)

    def key(self) -> dict[str, Any]:
        return {k: asdict(self)[k] for k in SETTINGS_KEYS}


def _progress(iterable, desc: str, total: int, enabled: bool | None):
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, disable=None if enabled is None else not enabled,
                file=sys.stderr, dynamic_ncols=True)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_json(path: Path, obj: Any) -> None:
    with atomic_write(path) as fh:         # a kill mid-write must not leave half a file to resume from
        fh.write(json.dumps(obj, indent=2, default=float))


def stage_configs(method: str) -> list[Path]:
    stages = [CONFIGS / f"{method}.yaml"]
    if (CONFIGS / f"{method}_stage2.yaml").is_file():
        stages.append(CONFIGS / f"{method}_stage2.yaml")
    return stages


def _overrides(s: Settings, folders: list[str], init: str = "") -> list[str]:
    ckpt_every = max(1, min(s.steps, 250))      # an interrupted run loses at most 250 steps (a signal saves at once)
    out = ["data.kind=kitti_odometry", f"data.root={json.dumps(s.data_root)}", f"data.paths={json.dumps(folders)}",
           f"data.width={s.width}", f"data.height={s.height}", f"data.max_frames={s.max_frames}",
           f"train.steps={s.steps}", f"train.batch_size={s.batch}", f"train.ckpt_every={ckpt_every}",
           f"train.log_every={max(1, s.steps // 20)}", "train.image_every=0", "train.keep_every=0"]
    if s.threads:
        out.append(f"train.num_threads={s.threads}")
    return out + ([f"train.init={json.dumps(init)}"] if init else [])


def train_stages(method: str, s: Settings, out: Path, progress: bool) -> dict[str, Any]:
    """Train (or resume, or skip when done) every stage of ``method`` under ``out``; -> state.json's content."""
    from vode_training.config import load_config
    from vode_training.trainer import Trainer

    folders = s.stereo_train if method in STEREO else s.train
    if not folders:
        raise CompareError(f"{method} trains with the right camera, but no training folder of split {s.split} "
                           "has image_1/ or image_3/")
    state_path = out / "state.json"
    state = _read_json(state_path)
    init = ""
    for i, config in enumerate(stage_configs(method), 1):
        name = f"stage{i}"
        ckpt = out / name / "checkpoint.pt"
        st = state.setdefault(name, {"config": config.name, "folders": folders, "seconds": 0.0, "steps": 0})
        if st["steps"] < s.steps:
            cfg = load_config(config, _overrides(s, folders, init))
            resume = ckpt if ckpt.is_file() else None
            t0 = time.monotonic()
            res = Trainer(cfg, out / name, resume=resume, progress=progress).train()
            st["seconds"] += res["seconds"]                          # the steps alone: s/step
            st["wall_s"] = st.get("wall_s", 0.0) + time.monotonic() - t0   # with data loading and setup
            st["steps"] = res["steps"]
            _write_json(state_path, state)
            if res["stopped_by"]:
                raise CompareStopped(f"{method} {name} stopped by {res['stopped_by']} after step {res['steps']} "
                                     f"(checkpoint {ckpt})")
        init = str(ckpt)
    return state


def score_method(method: str, s: Settings, out: Path, state: dict[str, Any],
                 progress: bool | None) -> dict[str, Any]:
    """Export the last stage and score it on every held-out sequence -> the method's row."""
    from vode_ros.tools.evaluate import evaluate_depth, evaluate_pose
    from vode_training.export import export_checkpoint
    from vode_training.checkpoint import load_checkpoint, method_from_checkpoint

    t0 = time.monotonic()
    last = out / f"stage{len(state)}" / "checkpoint.pt"
    model = method_from_checkpoint(load_checkpoint(last))
    params = {k: round(sum(p.numel() for p in v.parameters()) / 1e6, 2) for k, v in model.nets.items()}
    export_checkpoint(last, out / "onnx")
    metric = method in STEREO
    scores = []
    for name in s.heldout:
        data = Path(s.data_root) / name
        frames = s.max_frames or None
        depth = evaluate_depth(data, out / "onnx", max_frames=frames, progress=progress)
        pose = evaluate_pose(data, out / "onnx", max_frames=frames, progress=progress, pose_source="net")
        sc = depth["scores"]
        row = {"sequence": name, "depth_gt": depth["gt_source"], "n_images": depth["n_images"],
               "abs_rel": sc["median_scaled"]["abs_rel"], "a1": sc["median_scaled"]["a1"],
               "constant_abs_rel": sc["constant"]["abs_rel"], "constant_a1": sc["constant"]["a1"],
               "ate5_mean": pose["ate5"]["mean"], "ate5_std": pose["ate5"]["std"],
               "end_drift_pct": pose["end_drift_pct"], "n_frames": pose["n_frames"]}
        if metric:
            row.update(metric_abs_rel=sc["metric"]["abs_rel"], metric_a1=sc["metric"]["a1"],
                       depth_scale_error=depth["metric_scale"]["error"],
                       path_scale_error=pose["path_length_est"] / max(pose["path_length_gt"], 1e-9) - 1.0)
        scores.append(row)
    step_s, eval_s = sum(st["seconds"] for st in state.values()), time.monotonic() - t0
    train_s = sum(st.get("wall_s", st["seconds"]) for st in state.values())
    steps = [st["steps"] for st in state.values()]
    return {"method": method, "metric": metric, "stages": len(state), "steps_per_stage": s.steps,
            "steps": steps, "train_folders": state["stage1"]["folders"], "params_m": params,
            "train_s": train_s, "eval_s": eval_s, "wall_s": train_s + eval_s,
            "s_per_step": step_s / max(1, sum(steps)), "heldout": scores}


def _check_out(out: Path, s: Settings, resume: bool) -> None:
    saved = _read_json(out / "settings.json")
    # a run killed before its first state.json still left a stage folder (and maybe a checkpoint)
    runs = [p.name for p in out.iterdir() if (p / "stage1").is_dir()] if out.is_dir() else []
    if not resume:
        if runs:
            raise CompareError(f"{out} holds an earlier compare ({', '.join(sorted(runs))}): add --resume to "
                               "continue it, or pass a new --out")
        return
    if saved and saved != s.key():
        diff = sorted(k for k in s.key() if saved.get(k) != s.key()[k])
        raise CompareError(f"{out}: --resume with a different budget or split ({', '.join(diff)} differ from "
                           f"{out / 'settings.json'}): use the same options, or a new --out")


def compare(s: Settings, out: Path, methods: tuple[str, ...] = METHODS, resume: bool = False,
            progress: bool | None = None, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train and score ``methods`` under ``out`` (see the module doc) -> the report (compare.json's content).

    Raises CompareStopped when a signal stopped training (the report so far is written)."""
    unknown = [m for m in methods if not (CONFIGS / f"{m}.yaml").is_file()]
    if unknown:
        raise CompareError(f"no config/train/{unknown[0]}.yaml: methods are {', '.join(METHODS)}")
    _check_out(out, s, resume)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "settings.json", s.key())
    t0 = time.monotonic()
    hw = hardware()
    errors: dict[str, str] = {}
    show = sys.stderr.isatty() if progress is None else progress
    if log is None:
        from tqdm import tqdm

        def log(msg: str) -> None:      # between the progress bars, not through them
            tqdm.write(msg, file=sys.stderr)
    try:
        for method in _progress(methods, "compare", len(methods), progress):
            mdir = out / method
            if resume and (mdir / "result.json").is_file():
                log(f"{method}: finished earlier, skipped")
                continue
            mdir.mkdir(exist_ok=True)
            stages = len(stage_configs(method))
            log(f"{method}: {stages} stage(s) x {s.steps} steps at {s.width}x{s.height}, batch {s.batch}")
            try:
                state = train_stages(method, s, mdir, show)
                _write_json(mdir / "result.json", score_method(method, s, mdir, state, progress))
            except CompareStopped:
                raise
            except Exception as exc:   # one broken method must not hide the others' numbers
                errors[method] = f"{type(exc).__name__}: {exc}"
                log(f"{method} failed: {errors[method]}")
            write_report(out, s, hw, errors, time.monotonic() - t0)
    finally:
        report = write_report(out, s, hw, errors, time.monotonic() - t0)
    return report


def write_report(out: Path, s: Settings, hw: dict[str, Any], errors: dict[str, str],
                 session_s: float) -> dict[str, Any]:
    """compare.json + compare.md + compare.png over every finished method in ``out`` (also those of earlier
    runs)."""
    rows = [_read_json(out / m / "result.json") for m in METHODS if (out / m / "result.json").is_file()]
    rows += [{"method": m, "error": e} for m, e in errors.items()]
    report = {"settings": asdict(s), "hardware": hw, "session_s": session_s,
              "total_wall_s": sum(r.get("wall_s", 0.0) for r in rows), "methods": rows}
    _write_json(out / "compare.json", report)
    with atomic_write(out / "compare.md") as fh:
        fh.write(to_markdown(report))
    if any("error" not in r for r in rows):
        from vode_ros.tools.plots import plot_compare

        plot_compare(rows, out / "compare.png", title=f"vode compare: split {s.split}, {s.steps} steps per stage, "
                                                      f"held-out {', '.join(s.heldout)}")
    return report


def _f(x: float | None, fmt: str = ".3f") -> str:
    return "—" if x is None else format(x, fmt)


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| method | stages × steps | held-out | Abs Rel (med.) | δ<1.25 (med.) | Abs Rel / δ<1.25 (metric) | "
            "constant depth Abs Rel / δ<1.25 | ATE-5 (m), pose net | end drift | metric-scale error depth / path | "
            "wall | s/step | params (M) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['method']} | failed: {r['error']} ||||||||||||")
            continue
        params = " + ".join(f"{k} {v}" for k, v in r["params_m"].items())
        for h in r["heldout"]:
            metric = (f"{h['metric_abs_rel']:.3f} / {h['metric_a1']:.3f}" if r["metric"] else "n/a (mono)")
            scale = (f"{h['depth_scale_error'] * 100:+.1f} % / {h['path_scale_error'] * 100:+.1f} %"
                     if r["metric"] else "n/a (mono)")
            lines.append(
                f"| {r['method']} | {r['stages']} × {r['steps_per_stage']} | {h['sequence']} | {_f(h['abs_rel'])} | "
                f"{_f(h['a1'])} | {metric} | {_f(h['constant_abs_rel'])} / {_f(h['constant_a1'])} | "
                f"{h['ate5_mean']:.4f} ± {h['ate5_std']:.4f} | {h['end_drift_pct']:.1f} % | {scale} | "
                f"{duration(r['wall_s'])} | {r['s_per_step']:.2f} | {params} |")
    return "\n".join(lines)


def to_markdown(report: dict[str, Any]) -> str:
    s, hw = report["settings"], report["hardware"]
    gpu = f", GPU {hw['gpu']}" if hw.get("gpu") else ""
    stereo = ", ".join(s["stereo_train"]) or "none"
    threads = s["threads"] or "the configs' (2)"
    frames = f"; at most {s['max_frames']} frames per sequence" if s["max_frames"] else ""
    return (
        f"# vode compare: split {s['split']}, {s['steps']} steps per stage\n\n"
        f"Budget: {s['steps']} steps per training stage (two-stage methods train {s['steps']} more in "
        f"stage 2, from stage 1), {s['width']}x{s['height']}, batch {s['batch']}{frames}.\n\n"
        f"Split {s['split']}: trained on {', '.join(s['train'])} (stereo-trained methods on the folders with "
        f"right images: {stereo}); scored on the held-out {', '.join(s['heldout'])}, never trained on.\n\n"
        f"Hardware: {hw['cpu_count']} CPUs ({hw['cpu']}), torch {hw['torch']} on {hw['torch_device']}{gpu}, "
        f"{threads} training thread(s). "
        f"Total wall time {duration(report['total_wall_s'])} over the methods (training, export, scoring; "
        f"summed over resumed runs).\n\n{table(report['methods'])}\n\n"
        "Depth vs the held-out sequence's ground truth (KITTI: stereo SGBM pseudo-GT), Eigen protocol: "
        "'(med.)' = per-image median scaling (every method); 'metric' = the prediction in metres, for the "
        "stereo-trained methods; 'constant depth' = one depth per image (the GT median) on the same pixels, "
        "the bar a depth net has to clear. ATE-5: SfMLearner's 5-frame protocol on the pose net's chained "
        "poses (pose_source net, no geometry); end drift: end-position error without alignment, % of the "
        "path. Metric-scale error (stereo-trained methods): median predicted / true depth - 1, and predicted "
        "/ true path length of the pose net - 1. Wall: training + export + scoring; s/step: training time "
        "per step, all stages.\n")
