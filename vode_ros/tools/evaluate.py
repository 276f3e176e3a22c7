"""Evaluate the exported ONNX models on a KITTI-odometry-layout folder (numpy + ONNX Runtime).

Used by ``vode eval depth`` / ``vode eval pose`` (vode_ros/cli/eval.py); no torch.

Depth (:func:`evaluate_depth`): depth.onnx on every left frame (network resolution; the
prediction is resized to the ground truth's size by ``depth_metrics``), Eigen protocol
(``depth_metrics.compute_depth_metrics``: 1e-3 < gt < 80 m, optional Garg crop, optional
per-image median scaling, clamp, 7 metrics averaged per image). Ground truth, in order of
preference with ``gt='auto'``:

1. ``npy``: ``depth/NNNNNN.npy`` (float32 metres, 0 = none), as written by the synthetic
   generator; exact.
2. ``velodyne``: ``velodyne/NNNNNN.bin`` (KITTI scans, float32 x, y, z, reflectance) and
   a ``Tr:`` line in ``calib.txt`` (3x4, Velodyne -> rectified cam0, as in the KITTI
   odometry calib files). Each scan is projected with ``P_left @ [Tr; 0 0 0 1]`` where
   ``P_left`` is ``P0`` (image_0 sequences) or ``P2`` (image_2); depth is the third row of
   that product (as SfMLearner's ``generate_depth_map``); points behind the scanner (x < 0)
   dropped; pixel = ``round(u) - 1``, ``round(v) - 1`` (the reference code's MATLAB offset,
   ``matlab_offset=False`` to use ``round``); several points on one pixel keep the nearest.
3. ``sgbm``: stereo pseudo-GT (``vode_ros.core.stereo_depth.sgbm_depth``) from image_0/image_1 at full
   resolution with the calibrated baseline; numDisparities = fx·b / 3 m rounded up to 16
   (128 on KITTI). Not LiDAR: report it as "vs. SGBM pseudo-GT".

The Garg crop defaults to on for Velodyne GT only (it describes the LiDAR's coverage).
Median scaling defaults to on unless the model's metadata says ``vode.metric_scale=true``.

Pose (:func:`evaluate_pose`): pose.onnx on every consecutive pair (current, previous) ->
``T_{i-1,i}``, integrated ``W_i = W_{i-1} T_{i-1,i}`` (``trajectory.integrate_relative``);
against ``poses.txt``: ATE-5 (SfMLearner protocol, snippets of the integrated trajectory),
full-trajectory ATE after Sim(3) and SE(3), KITTI t_err / r_err after 'none', 'scale' and
'sim3' alignment (lengths: the devkit's that fit, else multiples of 10 m, or 1 m, that fit), RPE
(1 frame, after Sim(3)), and evo's APE / RPE when evo is installed.

Bad input raises :class:`EvalInputError` (the CLI prints it and exits with 2).
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vode_ros.core import depth_metrics as dm
from vode_ros.core import kitti_odometry_metrics as km
from vode_ros.core import trajectory as tj

GT_SOURCES = ("npy", "velodyne", "sgbm")


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


def _load_sequence(data: str | Path, max_frames: int | None):
    from vode_ros.core.kitti import KittiFormatError, load_sequence

    if not Path(data).is_dir():
        raise EvalInputError(f"data folder not found: {data}")
    try:
        return load_sequence(data, max_frames=max_frames or None)
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
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + out.name + ".", dir=out.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(_jsonable(result), fh, indent=2)
            fh.write("\n")
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out


def read_calib(root: Path) -> dict[str, np.ndarray]:
    """All 12-number lines of calib.txt (P0..P3, Tr) as (3, 4) arrays."""
    from vode_ros.core.kitti import parse_calib

    return parse_calib(Path(root) / "calib.txt")


# --------------------------------------------------------------------------- ground truth

def velodyne_depth_map(scan: np.ndarray, tr_velo_cam: np.ndarray, p_left: np.ndarray,
                       image_size: tuple[int, int], matlab_offset: bool = True) -> np.ndarray:
    """Project one KITTI Velodyne scan (N, 4) into the left image -> depth (H, W) float32, 0 = none.

    ``tr_velo_cam`` (3, 4): Velodyne -> rectified cam0 (KITTI odometry ``Tr``); ``p_left``
    (3, 4): ``P0`` or ``P2``. Follows SfMLearner's ``generate_depth_map`` (see module doc).
    """
    width, height = image_size
    pts = np.asarray(scan, dtype=np.float64).reshape(-1, 4)[:, :3]
    pts = pts[pts[:, 0] >= 0]
    hom = np.concatenate([pts, np.ones((len(pts), 1))], axis=1)                  # (N, 4)
    velo_to_img = np.asarray(p_left) @ np.vstack([np.asarray(tr_velo_cam), [0, 0, 0, 1]])
    im = hom @ velo_to_img.T                                                       # (N, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = im[:, 0] / im[:, 2]
        v = im[:, 1] / im[:, 2]
    off = 1.0 if matlab_offset else 0.0
    u = np.round(u) - off
    v = np.round(v) - off
    ok = np.isfinite(u) & np.isfinite(v) & (u >= 0) & (v >= 0) & (u < width) & (v < height)
    u, v, z = u[ok].astype(np.int64), v[ok].astype(np.int64), im[ok, 2]
    depth = np.full(height * width, np.inf)
    np.minimum.at(depth, v * width + u, z)
    depth[~np.isfinite(depth)] = 0.0
    depth[depth < 0] = 0.0
    return depth.reshape(height, width).astype(np.float32)


def _velodyne_available(root: Path) -> bool:
    return (root / "velodyne").is_dir() and "Tr" in read_calib(root)


def choose_gt(seq, gt: str = "auto") -> str:
    """Resolve ``gt`` ('auto' | npy | velodyne | sgbm) for a sequence; EvalInputError if unusable."""
    root = Path(seq.root)
    has_npy = (root / "depth").is_dir() and any((root / "depth").glob("*.npy"))
    has_velo = _velodyne_available(root)
    has_stereo = seq.right is not None and seq.baseline is not None
    if gt == "auto":
        if has_npy:
            return "npy"
        if has_velo:
            return "velodyne"
        if has_stereo:
            return "sgbm"
        raise EvalInputError(
            f"{root}: no depth ground truth: needs depth/NNNNNN.npy, or velodyne/NNNNNN.bin with a "
            "'Tr:' line in calib.txt, or a right camera (image_1/ + P1) for SGBM pseudo-GT")
    if gt not in GT_SOURCES:
        raise EvalInputError(f"gt must be one of auto, {', '.join(GT_SOURCES)}; got {gt!r}")
    if gt == "npy" and not has_npy:
        raise EvalInputError(f"{root}: --gt npy needs depth/NNNNNN.npy files (float32 metres)")
    if gt == "velodyne" and not has_velo:
        raise EvalInputError(f"{root}: --gt velodyne needs velodyne/NNNNNN.bin and a 'Tr:' line "
                             "(Velodyne -> cam0, 12 numbers) in calib.txt")
    if gt == "sgbm" and not has_stereo:
        raise EvalInputError(f"{root}: --gt sgbm needs the right camera: image_1/ (or image_3/) and "
                             "P1 (P3) in calib.txt")
    return gt


class GroundTruth:
    """Depth ground truth per frame index, at full image resolution."""

    def __init__(self, seq, source: str, matlab_offset: bool = True):
        self.seq = seq
        self.source = source
        self.root = Path(seq.root)
        self.matlab_offset = matlab_offset
        self.settings: dict = {"source": source}
        if source == "velodyne":
            calib = read_calib(self.root)
            left_key = "P0" if seq.left[0].parent.name == "image_0" else "P2"
            self.tr, self.p_left = calib["Tr"], calib[left_key]
            self.settings.update(projection=f"{left_key} @ Tr", matlab_offset=matlab_offset)
        elif source == "sgbm":
            fxb = seq.k[0, 0] * seq.baseline
            self.num_disp = int(min(256, max(16, math.ceil(fxb / 3.0 / 16.0) * 16)))
            self.settings.update(num_disparities=self.num_disp, block_size=5,
                                 nearest_depth_m=float(fxb / (self.num_disp - 1)),
                                 note="stereo pseudo ground truth, not LiDAR")

    def __call__(self, i: int, left: np.ndarray) -> np.ndarray:
        from vode_ros.core.kitti import read_image

        if self.source == "npy":
            path = self.root / "depth" / f"{self.seq.left[i].stem}.npy"
            if not path.is_file():
                raise EvalInputError(f"{path}: missing (depth/ must hold one .npy per left image)")
            return np.load(path).astype(np.float32)
        if self.source == "velodyne":
            path = self.root / "velodyne" / f"{self.seq.left[i].stem}.bin"
            if not path.is_file():
                raise EvalInputError(f"{path}: missing (velodyne/ must hold one scan per left image)")
            scan = np.fromfile(path, dtype=np.float32).reshape(-1, 4)
            return velodyne_depth_map(scan, self.tr, self.p_left, self.seq.image_size, self.matlab_offset)
        from vode_ros.core.stereo_depth import sgbm_depth

        right = read_image(self.seq.right[i])
        return sgbm_depth(left, right, float(self.seq.k[0, 0]), float(self.seq.baseline),
                          num_disparities=self.num_disp, block_size=5)


# --------------------------------------------------------------------------- depth

def evaluate_depth(data: str | Path, model_dir: str | Path | None = None, gt: str = "auto",
                   median_scaling: bool | None = None, garg_crop: bool | None = None,
                   min_depth: float = 1e-3, max_depth: float = 80.0, max_frames: int | None = None,
                   plots: str | Path | None = None, progress: bool | None = None,
                   matlab_offset: bool = True) -> dict:
    """Depth metrics of depth.onnx on every left frame of ``data`` (see the module doc)."""
    from vode_ros.runtime.inference import DepthEstimator
    from vode_ros.core.kitti import read_image

    seq = _load_sequence(data, max_frames)
    source = choose_gt(seq, gt)
    model = _load_model(model_dir, "depth")
    estimator = DepthEstimator(model)     # recurrent models: frames in order, state carried by model.run
    if median_scaling is None:
        median_scaling = not model.meta.metric_scale
    if garg_crop is None:
        garg_crop = source == "velodyne"
    truth = GroundTruth(seq, source, matlab_offset)
    k_net = model.intrinsics_for_net(seq.k, seq.image_size)
    per_image, samples = [], {}
    keep = {0, len(seq) // 2, len(seq) - 1}
    t0 = time.perf_counter()
    for i in _progress(range(len(seq)), "depth", len(seq), progress):
        img = read_image(seq.left[i])
        pred = estimator(model.preprocess(img, _encoding(img)), fx=float(k_net[0, 0]))
        gt_depth = truth(i, img)
        m = dm.compute_depth_metrics(gt_depth, pred, min_depth=min_depth, max_depth=max_depth,
                                     garg_crop=garg_crop, median_scaling=median_scaling)
        m["frame"] = i
        per_image.append(m)
        if plots is not None and i in keep:
            samples[i] = (img, pred * (m["scale"] if np.isfinite(m["scale"]) else 1.0), gt_depth)
    seconds = time.perf_counter() - t0
    mean = dm.mean_metrics(per_image)
    result = {
        "task": "depth",
        "data": str(seq.root),
        "gt_source": source,
        "n_images": int(mean["n_images"]),
        "n_frames": len(seq),
        "metrics": {k: mean[k] for k in dm.METRIC_NAMES},
        "scale": {k: mean[k] for k in ("scale_mean", "scale_std", "scale_median", "scale_std_rel")},
        "n_skipped": int(mean["n_skipped"]),
        "settings": {
            "protocol": "Eigen (SfMLearner compute_errors)", "min_depth": min_depth,
            "max_depth": max_depth, "garg_crop": bool(garg_crop), "median_scaling": bool(median_scaling),
            "gt": truth.settings, "image_size": list(seq.image_size),
        },
        "model": _model_info(model),
        "seconds": seconds,
        "per_image": [{"frame": r["frame"], "abs_rel": r["abs_rel"], "scale": r["scale"],
                       "n_valid": r["n_valid"]} for r in per_image],
    }
    if plots is not None:
        result["plots"] = _depth_plots(Path(plots), samples, per_image, source)
    return result


def _depth_plots(out: Path, samples: dict, per_image: list, source: str) -> list[str]:
    from .plots import save_depth_panel

    files = []
    label = {"npy": "GT depth", "velodyne": "Velodyne GT", "sgbm": "SGBM pseudo-GT"}[source]
    for i, (img, pred, gt_depth) in sorted(samples.items()):
        files.append(str(save_depth_panel(img, pred, gt_depth, out / f"depth_{i:06d}.png",
                                          titles=(f"frame {i}", "prediction (median-scaled)"
                                                  if per_image[i]["scale"] != 1.0 else "prediction", label))))
    frames = [r["frame"] for r in per_image]
    files.append(str(_curve_png(out / "depth_abs_rel.png", frames, [r["abs_rel"] for r in per_image],
                                "frame", "Abs Rel", f"depth error per frame (vs. {label})")))
    return files


# --------------------------------------------------------------------------- pose

def predict_trajectory(seq, model, progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """pose.onnx on (current, previous) pairs -> (relative T_{i-1,i} (N-1, 4, 4), absolute (N, 4, 4))."""
    from vode_ros.runtime.inference import PoseEstimator
    from vode_ros.core.kitti import read_image

    estimator = PoseEstimator(model)
    rel = []
    prev = None
    for i in _progress(range(len(seq)), "pose", len(seq), progress):
        img = read_image(seq.left[i])
        cur = model.preprocess(img, _encoding(img))
        if prev is not None:
            rel.append(estimator(cur, prev))
        elif getattr(model, "recurrent", False):
            estimator.start(cur)          # recurrent pose model: the state starts on frame 0
        prev = cur
    rel = np.stack(rel) if rel else np.zeros((0, 4, 4))
    return rel, tj.integrate_relative(rel)


def evaluate_pose(data: str | Path, model_dir: str | Path | None = None,
                  lengths: tuple[float, ...] | None = None, max_frames: int | None = None,
                  plots: str | Path | None = None, progress: bool | None = None) -> dict:
    """Trajectory metrics of pose.onnx on ``data`` against its poses.txt (see the module doc)."""
    seq = _load_sequence(data, max_frames)
    if seq.poses is None:
        raise EvalInputError(f"{seq.root}: pose evaluation needs ground-truth poses: poses.txt "
                             "(KITTI format, one 3x4 row-major cam0 pose per frame)")
    if len(seq) < 5:
        raise EvalInputError(f"{seq.root}: pose evaluation needs at least 5 frames, got {len(seq)}")
    model = _load_model(model_dir, "pose")
    t0 = time.perf_counter()
    rel, est = predict_trajectory(seq, model, progress)
    seconds = time.perf_counter() - t0
    gt = np.linalg.inv(seq.poses[0]) @ seq.poses        # frame 0 at the origin, like est
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
        "n_frames": len(seq),
        "path_length_gt": tj.path_length(gt),
        "path_length_est": tj.path_length(est),
        "ate5": {"mean": ate5_mean, "std": ate5_std, "n_snippets": len(seq) - 4,
                 "protocol": "SfMLearner: 5-frame snippets of the integrated trajectory, "
                             "per-snippet least-squares scale, sqrt(sum sq) / 5"},
        "ate": ate,
        "kitti": kitti,
        "lengths": [float(x) for x in lengths],
        "rpe": rpe,
        "ape": ape,
        "evo": evo if evo is not None else "evo not installed (pip install evo)",
        "per_frame_error_sim3": per_frame,
        "settings": {"pairs": "consecutive (current, previous) -> T_prev_cur",
                     "integration": "W_i = W_{i-1} @ T_{i-1,i}", "step_size": km.STEP_SIZE,
                     "metric_scale_model": model.meta.metric_scale},
        "model": _model_info(model),
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
        files.append(str(_curve_png(out / "trajectory_error.png", np.arange(len(per_frame)), per_frame,
                                    "frame", "position error [m]", "position error after Sim(3) alignment")))
        result["plots"] = files
    return result


# --------------------------------------------------------------------------- output

def _curve_png(path: Path, x, y, xlabel: str, ylabel: str, title: str) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(8, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(np.asarray(x), np.asarray(y, dtype=np.float64), color="tab:red", linewidth=1.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name("." + path.name + ".tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path


def format_depth(result: dict) -> str:
    s = result["settings"]
    gt = {"npy": "exact GT depth (depth/*.npy)", "velodyne": "Velodyne GT",
          "sgbm": "SGBM stereo pseudo-GT (not LiDAR)"}[result["gt_source"]]
    lines = [f"depth: {result['n_images']} images of {result['data']} vs. {gt}; "
             f"{s['min_depth']:g} < gt < {s['max_depth']:g} m, Garg crop {'on' if s['garg_crop'] else 'off'}, "
             f"median scaling {'on' if s['median_scaling'] else 'off'}; model {result['model']['path']} "
             f"({result['model']['method']}, {result['model']['provider']})",
             dm.format_metrics(result["metrics"])]
    sc = result["scale"]
    if s["median_scaling"] and sc["scale_median"] is not None and np.isfinite(sc["scale_median"]):
        lines.append(f"median-scaling ratio: median {sc['scale_median']:.3f}, std/median {sc['scale_std_rel']:.3f}")
    if result["n_skipped"]:
        lines.append(f"({result['n_skipped']} images without valid ground truth skipped)")
    return "\n".join(lines)


def format_pose(result: dict) -> str:
    a5 = result["ate5"]
    lines = [f"pose: {result['n_frames']} frames of {result['data']}, GT path {result['path_length_gt']:.1f} m, "
             f"estimated path {result['path_length_est']:.1f} m; model {result['model']['path']}",
             f"ATE-5 (SfMLearner)        {a5['mean']:.4f} ± {a5['std']:.4f} m",
             f"ATE full, Sim(3) aligned  {result['ate']['sim3']['rmse']:.4f} m (scale {result['ate']['sim3']['scale']:.3f})",
             f"ATE full, SE(3) aligned   {result['ate']['se3']['rmse']:.4f} m"]
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
