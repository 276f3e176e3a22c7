"""Evaluate the exported ONNX models on a KITTI-odometry-layout folder (numpy + ONNX Runtime).

Used by ``vode eval depth`` / ``vode eval pose`` (vode_ros/cli/eval.py); no torch.

Depth (:func:`evaluate_depth`): depth.onnx on every left frame (network resolution; the
prediction is resized to the ground truth's size by ``depth_metrics``), Eigen protocol
(``depth_metrics.compute_depth_metrics``: min_depth < gt < cap, optional Garg crop, clamp,
7 metrics averaged per image) against the folder's ground truth (``vode_ros.core.depth_truth``:
depth_0/*.png, depth/*.npy, Velodyne, or SGBM pseudo-GT from the stereo pair). Every run
scores three predictions on the same pixels:

- ``median_scaled``: the model with per-image median scaling (what a monocular method is
  judged by);
- ``metric``: the model as it is, in metres (meaningful when its metadata says metric), with
  the scale error: median over images of median(pred) / median(gt) - 1;
- ``constant``: one constant depth per image, the GT median (median scaling of any constant):
  the bar a model has to clear to have learned anything about structure.

Beside the scores, ``breakdown`` says where the headline prediction is wrong: Abs Rel and
predicted / true depth by image band (top to bottom) and by GT depth range, pixels pooled over
the images (``vode_ros.core.depth_breakdown``); with ``plots`` also as a figure.

The depth cap is the one of the domain: 80 m when the GT reaches past 20 m (driving), 10 m
indoors (``max_depth=None``, the default; the median GT depth of the first frames decides).
The Garg crop defaults to on for Velodyne GT only (it describes the LiDAR's coverage).

Pose (:func:`evaluate_pose`): the odometry node's per-frame work,
``runtime.odometry_pipeline.OdometryPipeline``, with the same pose source (net | geometric |
hybrid) and depth for the geometry (depth net, stereo SGBM at about 416 px wide as the node, or
the folder's sensor depth), through ``tools.pose_bench``'s prepare / run_source (one pipeline for
the benchmark, the evaluation and the node) -> the camera trajectory; against ``poses.txt``:
ATE-5 (SfMLearner protocol, snippets of the integrated trajectory),
full-trajectory ATE after Sim(3) and SE(3), KITTI t_err / r_err after 'none', 'scale' and
'sim3' alignment (lengths: the devkit's that fit, else multiples of 10 m, or 1 m, that fit), RPE
(1 frame, after Sim(3)), and evo's APE / RPE when evo is installed. Beside them the same figures of
a plain classical odometry on the same images and depth (``tools.classical_vo``: ORB + PnP-RANSAC,
mono: essential matrix with the depth's length), the bar the estimator has to clear.

Bad input raises :class:`EvalInputError` (the CLI prints it and exits with 2).
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from vode_ros.core import depth_metrics as dm
from vode_ros.core.atomic_file import atomic_write
from vode_ros.core import kitti_odometry_metrics as km
from vode_ros.core import trajectory as tj
from vode_ros.core.depth_breakdown import DepthErrorBreakdown, default_depth_edges
from vode_ros.tools.plots import plot_curve, plot_depth_breakdown
from vode_ros.core.depth_truth import (GT_LABELS, GT_SOURCES, DepthTruthError, GroundTruth,  # noqa: F401
                                       choose_gt, read_calib, velodyne_depth_map)


class EvalInputError(ValueError):
    """Missing / unusable input; the message says what is needed."""


# --------------------------------------------------------------------------- helpers

def _progress(iterable, desc: str, total: int, enabled: bool | None):
    """tqdm on stderr; ``enabled=None`` shows it only on a terminal."""
    if enabled is False:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=desc, total=total, unit="frame",
                disable=None if enabled is None else not enabled, file=sys.stderr)


def _load_sequence(data: str | Path, max_frames: int | None, first_frame: int = 0):
    from vode_ros.core.kitti import KittiFormatError, load_sequence

    if not Path(data).is_dir():
        raise EvalInputError(f"data folder not found: {data}")
    try:
        return load_sequence(data, max_frames=max_frames or None, first_frame=first_frame)
    except KittiFormatError as exc:
        raise EvalInputError(str(exc)) from exc


def _load_model(model_dir: str | Path | None, kind: str):
    from vode_ros.runtime.inference import ModelLoadError, OnnxModel, default_model_dir

    d = Path(model_dir) if model_dir else default_model_dir()
    path = d / f"{kind}.onnx"
    try:
        return OnnxModel(path, expected_kind=kind)
    except ModelLoadError as exc:
        raise EvalInputError(str(exc)) from exc


def _encoding(img: np.ndarray) -> str:
    return "mono8" if img.ndim == 2 else "rgb8"


def _model_info(model) -> dict:
    return {"path": str(model.path), "provider": model.provider, "method": model.meta.method,
            "input": [model.meta.width, model.meta.height], "color": model.meta.color,
            "metric_scale": model.meta.metric_scale, "metadata": dict(model.meta.raw)}


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    return x


def write_json(result: dict, path: str | Path) -> Path:
    """Write ``result`` as JSON atomically (NaN / inf -> null)."""
    out = Path(path)
    with atomic_write(out) as fh:
        json.dump(_jsonable(result), fh, indent=2)
        fh.write("\n")
    return out


# --------------------------------------------------------------------------- depth

def domain_cap(gt_depths: list[np.ndarray]) -> float:
    """80 m for outdoor ground truth, 10 m indoors: the 95th percentile of valid GT decides."""
    vals = np.concatenate([g[(g > 0) & np.isfinite(g)].ravel() for g in gt_depths] or [np.zeros(0)])
    return 80.0 if vals.size and float(np.percentile(vals, 95)) > 20.0 else 10.0


def evaluate_depth(data: str | Path, model_dir: str | Path | None = None, gt: str = "auto",
                   median_scaling: bool | None = None, garg_crop: bool | None = None,
                   min_depth: float = 1e-3, max_depth: float | None = None, max_frames: int | None = None,
                   plots: str | Path | None = None, progress: bool | None = None,
                   matlab_offset: bool = True, stride: int = 1) -> dict:
    """Depth metrics of depth.onnx on the left frames of ``data`` (every ``stride``-th; see the module doc).

    ``median_scaling`` picks which of the three scores is the headline ``metrics`` (default:
    median-scaled unless the model is metric); all three are in the result.
    """
    from vode_ros.core.kitti import read_image
    from vode_ros.runtime.inference import DepthNet

    seq = _load_sequence(data, max_frames)
    try:
        source = choose_gt(seq, gt)
        truth = GroundTruth(seq, source, matlab_offset)
    except DepthTruthError as exc:
        raise EvalInputError(str(exc)) from exc
    model = _load_model(model_dir, "depth")
    estimator = DepthNet(model)     # recurrent models: frames in order, state carried by model.run
    if median_scaling is None:
        median_scaling = not model.meta.metric_scale
    if garg_crop is None:
        garg_crop = source == "velodyne"
    k_net = model.intrinsics_for_net(seq.k, seq.image_size)
    frames = list(range(0, len(seq), max(1, int(stride))))
    rows: dict[str, list[dict]] = {"median_scaled": [], "metric": [], "constant": []}
    samples, cap, breakdown = {}, max_depth, None
    keep = {frames[0], frames[len(frames) // 2], frames[-1]}
    t0 = time.perf_counter()
    for i in _progress(frames, "depth", len(frames), progress):
        img = read_image(seq.left[i])
        pred = estimator(model.preprocess(img, _encoding(img)), fx=float(k_net[0, 0]))
        gt_depth = truth(i, img)
        if cap is None:
            cap = domain_cap([gt_depth])
        common = {"min_depth": min_depth, "max_depth": cap, "garg_crop": garg_crop}
        if breakdown is None:
            breakdown = DepthErrorBreakdown(depth_edges=default_depth_edges(cap), **common)
        pred_gt = dm.resize_to_truth(pred, gt_depth.shape)     # once for the four scorings below
        for name, p, med in (("median_scaled", pred_gt, True), ("metric", pred_gt, False),
                             ("constant", np.ones_like(pred_gt), True)):
            m = dm.compute_depth_metrics(gt_depth, p, median_scaling=med, **common)
            m["frame"] = i
            rows[name].append(m)
        scale = rows["median_scaled"][-1]["scale"] if median_scaling else 1.0
        if np.isfinite(scale):
            breakdown.add(gt_depth, pred_gt, scale)
        if plots is not None and i in keep:
            samples[i] = (img, pred * (scale if np.isfinite(scale) else 1.0), gt_depth)
    seconds = time.perf_counter() - t0
    means = {name: dm.mean_metrics(r) for name, r in rows.items()}
    headline = "median_scaled" if median_scaling else "metric"
    med_scales = np.array([r["scale"] for r in rows["median_scaled"] if r["n_valid"] > 0], dtype=np.float64)
    pred_over_true = float(np.median(1.0 / med_scales)) if med_scales.size else float("nan")
    result = {
        "task": "depth",
        "data": str(seq.root),
        "gt_source": source,
        "n_images": int(means[headline]["n_images"]),
        "n_frames": len(seq),
        "metrics": {k: means[headline][k] for k in dm.METRIC_NAMES},
        "scores": {name: {k: m[k] for k in dm.METRIC_NAMES} for name, m in means.items()},
        "scale": {k: means["median_scaled"][k] for k in ("scale_mean", "scale_std", "scale_median", "scale_std_rel")},
        "metric_scale": {"pred_over_true": pred_over_true, "error": pred_over_true - 1.0,
                         "model_claims_metric": bool(model.meta.metric_scale)},
        "n_skipped": int(means[headline]["n_skipped"]),
        "settings": {
            "protocol": "Eigen (SfMLearner compute_errors)", "min_depth": min_depth,
            "max_depth": cap, "max_depth_rule": "given" if max_depth is not None else "domain: 80 m outdoor, 10 m indoor",
            "garg_crop": bool(garg_crop), "median_scaling": bool(median_scaling), "headline": headline,
            "stride": int(stride), "gt": truth.settings, "image_size": list(seq.image_size),
        },
        "model": _model_info(model),
        "seconds": seconds,
        "per_image": [{"frame": r["frame"], "abs_rel": r["abs_rel"], "scale": r["scale"],
                       "n_valid": r["n_valid"]} for r in rows["median_scaled"]],
        "breakdown": breakdown.result() if breakdown is not None else {"bands": [], "ranges": []},
    }
    if plots is not None:
        result["plots"] = _depth_plots(Path(plots), samples, rows[headline], source, median_scaling)
        result["plots"].append(str(plot_depth_breakdown(Path(plots) / "depth_error_breakdown.png", result["breakdown"],
                                                  headline)))
    return result


def _depth_plots(out: Path, samples: dict, per_image: list, source: str, median_scaled: bool) -> list[str]:
    from .plots import save_depth_panel

    files = []
    label = {"png": "sensor depth", "npy": "GT depth", "velodyne": "Velodyne GT", "sgbm": "SGBM pseudo-GT"}[source]
    for i, (img, pred, gt_depth) in sorted(samples.items()):
        files.append(str(save_depth_panel(img, pred, gt_depth, out / f"depth_{i:06d}.png",
                                          titles=(f"frame {i}", "prediction (median-scaled)"
                                                  if median_scaled else "prediction (metres)", label))))
    frames = [r["frame"] for r in per_image]
    files.append(str(plot_curve(out / "depth_abs_rel.png", frames, [r["abs_rel"] for r in per_image],
                                "frame", "Abs Rel", f"depth error per frame (vs. {label})")))
    return files


# --------------------------------------------------------------------------- pose

POSE_DEPTHS = {"net": "mono", "stereo": "stereo", "gt": "rgbd"}      # --depth -> pose_bench depth mode


def pose_depth_mode(seq, pose_source: str, depth: str) -> str:
    """--depth (auto | net | stereo | gt) -> pose_bench's depth mode for this folder (none for the net source)."""
    if pose_source == "net":
        return "none"
    if depth == "auto":
        depth = "stereo" if seq.right is not None else "net"
    if depth not in POSE_DEPTHS:
        raise EvalInputError(f"--depth must be auto, net, stereo or gt, got {depth!r}")
    if depth == "stereo" and seq.right is None:
        raise EvalInputError(f"{seq.root}: --depth stereo needs the right images (image_1/ or image_3/) and the "
                             "baseline in calib.txt")
    if depth == "gt" and (seq.depth is None or all(d is None for d in seq.depth)):
        raise EvalInputError(f"{seq.root}: --depth gt needs depth_0/*.png (uint16, metres * 256 or the TUM "
                             "factor the folder's README gives)")
    return POSE_DEPTHS[depth]


def predict_trajectory(seq, pose_source: str = "net", depth_mode: str = "none", model_dir=None,
                       progress: bool | None = None, keyframes: bool = False, essential: str = "auto",
                       length_smoothing: float = -1.0) -> tuple[np.ndarray, dict, dict]:
    """The odometry node's OdometryPipeline over the sequence (pose_bench's prepare / run_source).

    -> (absolute (N, 4, 4) with frame 0 at the origin, estimator statistics, the models used)."""
    from vode_ros.runtime.pose.config import PoseEstimatorConfig
    from vode_ros.tools.pose_bench import NetRunner, prepare, run_source

    models = {}
    if pose_source != "geometric":
        models["pose"] = _load_model(model_dir, "pose")
    if depth_mode == "mono":
        models["depth"] = _load_model(model_dir, "depth")
    nets = NetRunner(models.get("depth"), models.get("pose")) if models else None
    show = progress is not False
    frames = prepare(seq, depth_mode, nets, None, progress=show)
    from vode_ros.runtime.pose.depth_input import resolve_length_smoothing, use_essential

    config = PoseEstimatorConfig(keyframes=keyframes, essential=use_essential(essential, depth_mode),
                                 length_smoothing=resolve_length_smoothing(length_smoothing, depth_mode))
    out = run_source(seq, frames, pose_source, config, progress=show)
    st = out["stats"]
    classical = None
    if depth_mode != "none":           # the classical odometry on the same images and depth
        from vode_ros.tools.pose_bench import run_baseline

        classical = run_baseline(frames, seq.k, depth_mode)
    stats = {"fallbacks": int(st["fallback"]), "essential": config.essential,
             "length_smoothing": config.length_smoothing,
             "inliers_median": float(np.median(st["inliers"])) if st["inliers"] else None,
             "inlier_ratio_median": float(np.median(st["inlier_ratio"])) if st["inlier_ratio"] else None,
             "rmse_px_median": float(np.nanmedian(st["rmse_px"])) if st["rmse_px"] else None,
             "ms": {"depth": 1e3 * frames["t_depth"],
                    "pose_net": float(np.mean(st["net_ms"])) if st["net_ms"] and pose_source != "geometric" else 0.0,
                    "estimator": float(np.mean(st["ms"][1:])) if len(st["ms"]) > 1 else 0.0},
             "classical": classical}
    return out["poses"], stats, models


def evaluate_pose(data: str | Path, model_dir: str | Path | None = None,
                  lengths: tuple[float, ...] | None = None, max_frames: int | None = None,
                  plots: str | Path | None = None, progress: bool | None = None,
                  pose_source: str = "hybrid", depth: str = "auto", keyframes: bool = False,
                  first_frame: int = 0, essential: str = "auto", length_smoothing: float = -1.0) -> dict:
    """Trajectory metrics of a pose source on ``data`` against its poses.txt (see the module doc).

    pose_source: net | geometric | hybrid (the odometry node's parameter); depth: the geometry's
    depth, auto (stereo where the folder has right images, else the depth net) | net | stereo | gt;
    keyframes, essential, length_smoothing: the odometry node's parameters of those names; first_frame: start there,
    the ground truth rebased to it."""
    from vode_ros.runtime.pose.config import POSE_SOURCES

    if pose_source not in POSE_SOURCES:
        raise EvalInputError(f"--pose-source must be one of {', '.join(POSE_SOURCES)}, got {pose_source!r}")
    seq = _load_sequence(data, max_frames, first_frame)
    if seq.poses is None:
        raise EvalInputError(f"{seq.root}: pose evaluation needs ground-truth poses: poses.txt "
                             "(KITTI format, one 3x4 row-major cam0 pose per frame)")
    if len(seq) < 5:
        raise EvalInputError(f"{seq.root}: pose evaluation needs at least 5 frames, got {len(seq)}")
    depth_mode = pose_depth_mode(seq, pose_source, depth)
    t0 = time.perf_counter()
    try:
        est, stats, models = predict_trajectory(seq, pose_source, depth_mode, model_dir, progress, keyframes,
                                                essential, length_smoothing)
    except ValueError as exc:          # a bad choice of essential or length_smoothing
        raise EvalInputError(str(exc)) from exc
    seconds = time.perf_counter() - t0
    gt = np.linalg.inv(seq.poses[0]) @ seq.poses        # frame 0 at the origin, like est
    classical = stats.pop("classical")
    if classical is not None:
        from vode_ros.tools.pose_bench import score

        classical = {**score(classical["poses"], gt), "ms": classical["ms"], "failures": classical["stats"]["fallback"],
                     "method": "ORB (2,000) + brute-force Hamming cross-check + the previous frame's depth + "
                               "PnP-RANSAC at 2 px" + (", essential matrix for rotation and direction"
                                                         if depth_mode == "mono" else "") + ", frame to frame"}
    ate5_mean, ate5_std = tj.ate5(est, gt)
    ate = {a: tj.ate_rmse(est, gt, a) for a in ("sim3", "se3", "scale")}
    if lengths is None:
        lengths = km.fitting_lengths(gt)
    kitti = {}
    for a in ("none", "scale", "sim3"):
        r = km.kitti_errors(est, gt, lengths=lengths, align=a)
        kitti[a] = r
    rpe = km.rpe(est, gt, delta=1, align="sim3")
    ape = km.ape(est, gt, align="sim3")
    per_frame = ape.pop("errors")
    evo = km.evo_ape_rpe(est, gt, delta=1)
    result = {
        "task": "pose",
        "data": str(seq.root),
        "first_frame": int(first_frame),
        "n_frames": len(seq),
        "path_length_gt": tj.path_length(gt),
        "path_length_est": tj.path_length(est),
        # both start at the origin: the end-position error without alignment, % of the GT path
        "end_drift_pct": float(100.0 * np.linalg.norm(est[-1, :3, 3] - gt[-1, :3, 3]) / max(tj.path_length(gt), 1e-9)),
        "ate5": {"mean": ate5_mean, "std": ate5_std, "n_snippets": len(seq) - 4,
                 "protocol": "SfMLearner: 5-frame snippets of the integrated trajectory, "
                             "per-snippet least-squares scale, sqrt(sum sq) / 5"},
        "ate": ate,
        "kitti": kitti,
        "lengths": [float(x) for x in lengths],
        "rpe": rpe,
        "ape": ape,
        "evo": evo if evo is not None else "evo not installed (pip install evo)",
        "classical": classical if classical is not None else "no depth (pose source net): no classical baseline",
        "per_frame_error_sim3": per_frame,
        "pose_source": pose_source,
        "keyframes": keyframes,
        "essential": stats["essential"],
        "length_smoothing": stats["length_smoothing"],
        "depth": {"none": "none (the pose net alone)", "mono": "depth net", "stereo": "stereo SGBM (about 416 px wide)",
                  "rgbd": "sensor depth (depth_0/)"}[depth_mode],
        "estimator": stats,
        "settings": {"pairs": "consecutive (previous, current) -> T_prev_cur (runtime.odometry_pipeline.OdometryPipeline)",
                     "integration": "W_i = W_{i-1} @ T_{i-1,i}", "step_size": km.STEP_SIZE,
                     "metric_scale_model": models["pose"].meta.metric_scale if "pose" in models else None},
        "model": _model_info(models["pose"]) if "pose" in models else None,
        "seconds": seconds,
        "est_poses": est[:, :3, :].reshape(len(est), 12),
    }
    if plots is not None:
        aligned, _ = km.align_poses(est, gt, "sim3")
        out = Path(plots)
        from .plots import plot_trajectory_topview

        files = [str(plot_trajectory_topview(aligned, gt, out / "trajectory_topview.png",
                                             title="trajectory (Sim(3)-aligned)", plane="xz",
                                             ate=ate["sim3"]["rmse"]))]
        files.append(str(plot_curve(out / "trajectory_error.png", np.arange(len(per_frame)), per_frame,
                                    "frame", "position error [m]", "position error after Sim(3) alignment")))
        result["plots"] = files
    return result


# --------------------------------------------------------------------------- output

def format_breakdown(breakdown: dict) -> list[str]:
    """Two short tables: Abs Rel and predicted / true depth per band and per depth range."""
    lines = []
    for key, title in (("bands", "by image band"), ("ranges", "by ground-truth depth")):
        rows = [r for r in breakdown.get(key, []) if r["n_pixels"]]
        if rows:
            cells = ", ".join(f"{r['group']} {r['abs_rel']:.3f} (x{r['pred_over_true']:.2f})" for r in rows)
            lines.append(f"Abs Rel {title} (predicted / true): {cells}")
    return lines


def format_depth(result: dict) -> str:
    s = result["settings"]
    lines = [f"depth: {result['n_images']} images of {result['data']} vs. {GT_LABELS[result['gt_source']]}; "
             f"{s['min_depth']:g} < gt < {s['max_depth']:g} m, Garg crop {'on' if s['garg_crop'] else 'off'}; "
             f"model {result['model']['path']} ({result['model']['method']}, {result['model']['provider']})",
             f"{'':22}" + dm.format_metrics(result["scores"]["metric"]).splitlines()[0]]
    names = {"median_scaled": "model, median-scaled", "metric": "model, metric (as is)",
             "constant": "constant (GT median)"}
    for key, label in names.items():
        lines.append(f"{label:22}" + dm.format_metrics(result["scores"][key]).splitlines()[1])
    ms = result["metric_scale"]
    if np.isfinite(ms["pred_over_true"]):
        claim = "the model claims metric scale" if ms["model_claims_metric"] else "the model is not metric"
        lines.append(f"predicted / true scale: {ms['pred_over_true']:.3f} ({ms['error']:+.1%}; {claim})")
    sc = result["scale"]
    if sc["scale_median"] is not None and np.isfinite(sc["scale_median"]):
        lines.append(f"median-scaling ratio: median {sc['scale_median']:.3f}, std/median {sc['scale_std_rel']:.3f}")
    lines += format_breakdown(result.get("breakdown", {}))
    if result["n_skipped"]:
        lines.append(f"({result['n_skipped']} images without valid ground truth skipped)")
    return "\n".join(lines)


def format_pose(result: dict) -> str:
    a5 = result["ate5"]
    model = result["model"]["path"] if result.get("model") else "none"
    st = result["estimator"]
    start = f" from frame {result['first_frame']} (ground truth rebased)" if result.get("first_frame") else ""
    speed = f", speed filtered (length_smoothing {result['length_smoothing']:g})" if result.get("length_smoothing") else ""
    lines = [f"pose: {result['n_frames']} frames of {result['data']}{start}, GT path {result['path_length_gt']:.1f} m, "
             f"estimated path {result['path_length_est']:.1f} m",
             f"pose source {result['pose_source']}{' with keyframes' if result.get('keyframes') else ''}"
             f"{', essential matrix for rotation and direction' if result.get('essential') else ''}"
             f"{speed}, "
             f"depth {result['depth']}; pose net {model}; "
             f"{st['fallbacks']} fallbacks to the net"
             + (f", median {st['inliers_median']:.0f} inliers" if st["inliers_median"] is not None else ""),
             f"ATE-5 (SfMLearner)        {a5['mean']:.4f} ± {a5['std']:.4f} m",
             f"ATE full, Sim(3) aligned  {result['ate']['sim3']['rmse']:.4f} m (scale {result['ate']['sim3']['scale']:.3f})",
             f"ATE full, SE(3) aligned   {result['ate']['se3']['rmse']:.4f} m",
             f"end drift (no alignment)  {result['end_drift_pct']:.2f} % of the path"]
    c = result.get("classical")
    if isinstance(c, dict):
        ours_path = 100.0 * (result["path_length_est"] / max(result["path_length_gt"], 1e-9) - 1.0)
        lines.append(f"classical baseline, same inputs ({c['method']}): ATE-5 {c['ate5']:.4f} ± {c['ate5_std']:.4f} m, "
                     f"ATE Sim(3) {c['ate_sim3']:.4f} m, end drift {c['end_drift_pct']:.2f} %, path "
                     f"{c['path_err_pct']:+.1f} % (ours {ours_path:+.1f} %)")
    elif c:
        lines.append(f"classical baseline: {c}")
    lens = ", ".join(f"{x:g}" for x in result["lengths"]) or "none fits"
    lines.append(f"KITTI t_err / r_err over lengths [{lens}] m, segments every {result['settings']['step_size']} frames:")
    for a, r in result["kitti"].items():
        if r["n_segments"]:
            lines.append(f"  align {a:<6} t_err {r['t_err']:7.2f} %   r_err {r['r_err']:7.2f} deg/100m   "
                         f"({r['n_segments']} segments, lengths used {', '.join(f'{x:g}' for x in r['lengths_used'])})")
        else:
            lines.append(f"  align {a:<6} no segment fits the trajectory")
    rpe = result["rpe"]
    lines.append(f"RPE (1 frame, Sim(3))     trans rmse {rpe['trans']['rmse']:.4f} m, rot rmse {rpe['rot']['rmse']:.4f} deg")
    evo = result["evo"]
    if isinstance(evo, dict):
        lines.append(f"evo: APE (Sim(3)) rmse {evo['ape_trans_sim3']['rmse']:.4f} m, RPE trans rmse "
                     f"{evo['rpe_trans']['rmse']:.4f} m, RPE rot rmse {evo['rpe_rot_deg']['rmse']:.4f} deg")
    else:
        lines.append(f"evo: {evo}")
    return "\n".join(lines)
