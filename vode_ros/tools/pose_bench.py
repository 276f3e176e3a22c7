"""Benchmark of the pose sources (net, geometric, hybrid) over the real sequences with ground truth.

    python -m vode_ros.tools.pose_bench [--data ROOT] [--sources net,geometric,hybrid,hybrid+refine]
        [--modes mono,stereo,rgbd] [--strides 1,2,3,4] [--models-dir models] [--json OUT] [--max-frames N]

For every folder of the data root with poses.txt (KITTI odometry layout), every depth mode the
folder supports and every pose source, the trajectory of the odometry node's own per-frame work
(``vode_ros.runtime.odometry_pipeline.OdometryPipeline``, with this folder's depth per frame) is
scored against the ground truth:

- ATE-5: SfMLearner's 5-frame snippets, scale fitted per snippet (metres);
- ATE after Sim(3) and after SE(3) alignment of the whole trajectory (metres);
- end drift: end-position error without any alignment, % of the ground-truth path length;
- t_err (%) / r_err (deg/100 m): KITTI devkit segments over the lengths that fit the clip;
- path error: estimated path length against the ground truth's, % (meaningful in metric modes);
- FPS of depth + odometry on this machine (depth net or SGBM, the pose net where the source uses
  it, the estimator), frames processed one after the other.

Beside every sequence, stride and depth mode, a plain classical odometry on the same images and the
same depth (``vode_ros.tools.classical_vo``: ORB + PnP-RANSAC; mono: essential matrix with the
depth's length) is scored the same way (source ``classical``; ``--no-baseline`` to skip it).
``--strides 1,2,3,4`` runs every k-th frame (stamps kept: a lower frame rate, or dropped frames).

Depth modes: ``mono`` the depth net's metric depth (416x128), ``stereo`` SGBM on the rectified
pair at about 416 px wide, as the odometry node (folders with image_1/), ``rgbd`` the folder's depth_0/.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from vode_ros.core.kitti import KittiFormatError, load_sequence, read_depth, read_image
from vode_ros.core.kitti_odometry_metrics import fitting_lengths, kitti_errors
from vode_ros.core.trajectory import ate5, ate_rmse, path_length
from vode_ros.core.stereo_depth import pair_depth
from vode_ros.runtime.odometry_pipeline import OdometryPipeline, OdometrySettings, integrate_sequence
from vode_ros.runtime.pose.config import PoseEstimatorConfig
from vode_ros.runtime.pose.config import ESSENTIAL_LENGTHS, MATCHERS
from vode_ros.runtime.pose.depth_input import ESSENTIAL_CHOICES, resolve_length_smoothing, use_essential
from vode_ros.tools.classical_vo import run_classical

SOURCES = ("net", "geometric", "hybrid", "hybrid+refine")
MODES = ("mono", "stereo", "rgbd")


def find_sequences(root: Path) -> list[Path]:
    """Folders under ``root`` in the KITTI odometry layout that have ground-truth poses, sorted."""
    return sorted(p for p in root.iterdir() if (p / "poses.txt").is_file() and (p / "image_0").is_dir())


def _encoding(img: np.ndarray) -> str:
    return "rgb8" if img.ndim == 3 else "mono8"


class NetRunner:
    """The depth and / or pose net (ONNX Runtime) for ``prepare``; either may be None (not needed)."""

    def __init__(self, depth_model=None, pose_model=None):
        from vode_ros.runtime.inference import DepthNet

        self.depth_model, self.pose_model = depth_model, pose_model
        self.depth = DepthNet(depth_model) if depth_model is not None else None

    @classmethod
    def load(cls, models_dir: Path, threads: int = 0) -> "NetRunner":
        from vode_ros.runtime.inference import load_models

        return cls(*load_models(models_dir, ["CPUExecutionProvider"], threads))

    def depth_of(self, img: np.ndarray, k: np.ndarray, scale=None) -> np.ndarray:
        """(H, W[, 3]) uint8 -> (h, w) metres at the net's resolution (focal length rescaled).

        ``scale``: a runtime.scale.ScaleEstimator in camera_height mode rescales the depth as the
        depth node does with ``scale_mode: camera_height``; None keeps the model's metres."""
        x = self.depth_model.preprocess(img, _encoding(img))
        k_net = self.depth_model.intrinsics_for_net(k, (img.shape[1], img.shape[0]))
        depth = self.depth(x, fx=k_net[0, 0])
        return depth if scale is None else depth * scale.observe_depth(depth, k_net)


def _sgbm(left: np.ndarray, right: np.ndarray, k: np.ndarray, baseline: float, div: int | None = None) -> np.ndarray:
    """The odometry node's stereo geometry depth (core.stereo_depth.pair_depth, preset run_time):
    SGBM at 1/div (None: the preset's, about 416 px wide)."""
    return pair_depth(left, right, float(k[0, 0]), baseline, "run_time", div=div)


def prepare(seq, mode: str, nets: NetRunner | None, max_frames: int | None, progress: bool = True,
            sgbm_div: int | None = None, camera_height: float | None = None) -> dict:
    """Images and the mode's depth per frame, with its time (s); the pose net for run_source.

    mode: mono (depth net), stereo (SGBM), rgbd (the folder's depth_0/), none (no depth: the net
    source). The pose net is ``nets.pose_model`` (run in the pipeline). ``camera_height`` (metres): in mono,
    scale the depth net's depth by the camera height over the fitted ground (the nodes'
    ``scale_mode: camera_height``) instead of trusting the model's metres."""
    from vode_ros.runtime.scale import ScaleEstimator

    from tqdm import tqdm

    n = len(seq) if max_frames is None else min(len(seq), max_frames)
    images, depths, t_depth = [], [], []
    scale = ScaleEstimator("camera_height", camera_height=camera_height) if camera_height else None
    for i in tqdm(range(n), desc=f"{seq.root.name} {mode}: depth", unit="frame", disable=None if progress else True,
                  leave=False):
        img = read_image(seq.left[i])
        t0 = time.perf_counter()
        if mode == "mono":
            d = nets.depth_of(img, seq.k, scale)
        elif mode == "stereo":
            d = _sgbm(img, read_image(seq.right[i]), seq.k, seq.baseline, sgbm_div)
        elif mode == "rgbd":
            d = read_depth(seq.depth[i]) if seq.depth[i] is not None else None
        else:
            d = None
        t_depth.append(time.perf_counter() - t0)
        images.append(img)
        depths.append(d)
    return {"images": images, "depths": depths, "pose_model": nets.pose_model if nets is not None else None,
            "t_depth": float(np.mean(t_depth)) if mode in ("mono", "stereo") else 0.0}


def config_for(source: str, base: PoseEstimatorConfig) -> PoseEstimatorConfig:
    if source == "hybrid+refine":
        return replace(base, pose_source="hybrid", refine=True)
    return replace(base, pose_source=source, refine=False)


def run_source(seq, frames: dict, source: str, base: PoseEstimatorConfig, progress: bool = True) -> dict:
    """The odometry node's pipeline over the frames -> (N, 4, 4) camera trajectory, per-frame
    statistics, times (the pose net's and the estimator's, ms)."""
    from tqdm import tqdm

    config = config_for(source, base)
    model = frames["pose_model"] if config.pose_source != "geometric" else None
    pipeline = OdometryPipeline(model, OdometrySettings(config, geometry_depth="given"))
    stamps = [int(round(float(t) * 1e9)) for t in seq.times[:len(frames["images"])]]
    inputs = [{"image": img, "encoding": _encoding(img), "stamp_ns": ns, "k": seq.k, "depth": depth}
              for img, depth, ns in zip(frames["images"], frames["depths"], stamps)]
    stats = {"fallback": 0, "refined": 0, "inliers": [], "inlier_ratio": [], "rmse_px": [], "ms": [], "net_ms": []}

    def each(items):
        for f in tqdm(items, desc=f"  {source}", unit="frame", disable=None if progress else True, leave=False):
            yield f
            stats["net_ms"].append(float(getattr(model, "last_ms", 0.0) or 0.0))

    poses, steps = integrate_sequence(pipeline, inputs, progress=each)
    for i, s in enumerate(steps):
        e = s.estimate
        stats["ms"].append(e.time_ms)
        if i == 0:
            continue
        stats["fallback"] += e.source == "fallback"
        stats["refined"] += e.refined
        if e.source in ("geometric", "hybrid"):
            stats["inliers"].append(e.inliers)
            stats["inlier_ratio"].append(e.inlier_ratio)
            stats["rmse_px"].append(e.rmse_px)
    return {"poses": poses, "stats": stats}


def _aligned_ate(est: np.ndarray, gt: np.ndarray, align: str) -> float:
    try:
        return ate_rmse(est, gt, align)["rmse"]
    except ValueError:            # an estimate that never moved has no scale to fit
        return float("nan")


def score(est: np.ndarray, gt: np.ndarray) -> dict:
    """The benchmark's metrics of (N, 4, 4) estimated vs ground-truth poses (first frames coincide)."""
    length = path_length(gt)
    m, s = ate5(est, gt)
    lengths = fitting_lengths(gt)
    ke = kitti_errors(est, gt, lengths=lengths) if lengths else {"t_err": float("nan"), "r_err": float("nan")}
    return {
        "ate5": m, "ate5_std": s,
        "ate_sim3": _aligned_ate(est, gt, "sim3"),
        "ate_se3": _aligned_ate(est, gt, "se3"),
        "end_drift_pct": float(100.0 * np.linalg.norm(est[-1, :3, 3] - gt[-1, :3, 3]) / max(length, 1e-9)),
        "path_m": length,
        "path_err_pct": float(100.0 * (path_length(est) - length) / max(length, 1e-9)),
        "t_err": ke["t_err"], "r_err": ke["r_err"], "lengths": [float(x) for x in lengths],
    }


CLASSICAL_MODE = {"mono": "mono", "stereo": "stereo", "rgbd": "rgbd"}     # depth mode -> classical_vo mode


def run_baseline(frames: dict, k: np.ndarray, mode: str) -> dict:
    """The classical odometry on the same images and depth -> poses, statistics, ms a frame."""
    t0 = time.perf_counter()
    poses, st = run_classical(frames["images"], frames["depths"], k, CLASSICAL_MODE[mode])
    ms = 1e3 * (time.perf_counter() - t0) / max(len(frames["images"]), 1)
    return {"poses": poses, "stats": {"fallback": st.failures, "refined": 0,
                                      "inliers_median": float(np.median(st.inliers)) if st.inliers else None,
                                      "inlier_ratio_median": None, "rmse_px_median": None}, "ms": ms}


def every_kth(seq, frames: dict, stride: int):
    """The sequence and its prepared frames at every ``stride``-th frame, stamps kept (a lower frame
    rate, or dropped frames) -> (sequence, frames)."""
    if stride == 1:
        return seq, frames
    sub = replace(seq, left=seq.left[::stride], right=seq.right[::stride] if seq.right is not None else None,
                  times=seq.times[::stride], poses=seq.poses[::stride] if seq.poses is not None else None,
                  frame_ids=seq.frame_ids[::stride] if seq.frame_ids is not None else None,
                  depth=seq.depth[::stride] if seq.depth is not None else None)
    return sub, {**frames, "images": frames["images"][::stride], "depths": frames["depths"][::stride]}


def _fmt(x: float, nd: int) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def markdown(rows: list[dict]) -> str:
    head = ("| sequence | stride | depth | source | frames | ATE-5 (m) | ATE Sim(3) (m) | ATE SE(3) (m) "
            "| end drift (% path) | path error (%) | t_err (%) | r_err (°/100 m) | fallbacks | inliers (median) "
            "| FPS depth+odom |")
    lines = [head, "|" + "---|" * 15]
    for r in rows:
        inl = r["stats"]["inliers_median"]
        name = r["sequence"] + (f" from frame {r['first_frame']}" if r.get("first_frame") else "")
        lines.append(
            f"| {name} | {r.get('stride', 1)} | {r['mode']} | {r['source']} | {r['frames']} | {_fmt(r['ate5'], 4)} ± "
            f"{_fmt(r['ate5_std'], 4)} | {_fmt(r['ate_sim3'], 3)} | {_fmt(r['ate_se3'], 3)} | "
            f"{_fmt(r['end_drift_pct'], 2)} | {_fmt(r.get('path_err_pct', float('nan')), 1)} | {_fmt(r['t_err'], 2)} | "
            f"{_fmt(r['r_err'], 2)} | {r['stats']['fallback']} | {'—' if inl is None else int(inl)} | "
            f"{_fmt(r['fps'], 1)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vode_ros.tools.pose_bench", description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / ".." / "shared" / "data",
                    help="folder of sequences in the KITTI odometry layout")
    ap.add_argument("--sources", default=",".join(SOURCES), help=f"comma list of {', '.join(SOURCES)}")
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma list of {', '.join(MODES)}")
    ap.add_argument("--models-dir", type=Path, default=Path(__file__).resolve().parents[2] / "models")
    ap.add_argument("--json", type=Path, default=None, help="write all figures here")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--sequences", default="", help="comma list of folder names (default: all with poses)")
    ap.add_argument("--work-width", type=int, default=PoseEstimatorConfig.work_width)
    ap.add_argument("--max-features", type=int, default=PoseEstimatorConfig.max_features)
    ap.add_argument("--ransac-threshold", type=float, default=PoseEstimatorConfig.ransac_threshold,
                    help="PnP-RANSAC inlier threshold, px at the working resolution")
    ap.add_argument("--fb-threshold", type=float, default=PoseEstimatorConfig.fb_threshold,
                    help="LK forward-backward check, px at the working resolution (0: off)")
    ap.add_argument("--keyframes", action="store_true", help="track from kept reference frames (see PoseEstimatorConfig)")
    ap.add_argument("--sgbm-div", type=int, default=None,
                    help="stereo mode: SGBM at 1/N resolution (default: the odometry node's, about 416 px wide)")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    ap.add_argument("--camera-height", type=float, default=None, metavar="M",
                    help="mono: scale the depth net's depth by this camera height over the fitted ground "
                         "(the nodes' scale_mode camera_height; KITTI 1.65) instead of the model's metres")
    ap.add_argument("--essential", default="auto", choices=ESSENTIAL_CHOICES,
                    help="rotation and direction from the essential matrix, the length from PnP (the odometry "
                         "node's parameter; auto: in mono, with the depth net's depth)")
    ap.add_argument("--length-smoothing", type=float, default=-1.0, metavar="A",
                    help="the speed filtered over frames (alpha-beta, gain 1 - A), A in [0, 1) (the odometry node's parameter; "
                         "negative = auto: 0.7 in mono, 0 otherwise)")
    ap.add_argument("--length-smoothing-dt", type=float, default=PoseEstimatorConfig.length_smoothing_dt,
                    metavar="S", help="the frame interval the speed filter's A is for: A^(dt / S) at dt (0: A per frame)")
    ap.add_argument("--essential-length", default=PoseEstimatorConfig.essential_length, choices=ESSENTIAL_LENGTHS,
                    help="the length along the essential matrix's direction: PnP's, or each point's by its parallax")
    ap.add_argument("--descriptor-full-res", action=argparse.BooleanOptionalAction,
                    default=PoseEstimatorConfig.descriptor_full_res,
                    help="descriptors found on the full image rather than at the working resolution")
    ap.add_argument("--strides", default="1", help="comma list of k: every k-th frame, stamps kept (e.g. 1,2,3,4)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the classical odometry beside each run")
    ap.add_argument("--matcher", default=PoseEstimatorConfig.matcher, choices=MATCHERS,
                    help="correspondences: LK, descriptors, or LK with descriptors where LK fails (auto)")
    ap.add_argument("--no-plausibility", action="store_true", help="take motions of any length (no check)")
    ap.add_argument("--no-net-length-check", action="store_true",
                    help="take the pose net's length as it is (no check against the recent speed)")
    ap.add_argument("--descriptor-flow-px", type=float, default=PoseEstimatorConfig.descriptor_flow_px,
                    help="matcher auto: also match descriptors, and prefer them, past this median LK track (px)")
    ap.add_argument("--first-frame", type=int, default=0,
                    help="start every sequence at this frame, ground truth rebased to it (e.g. 14 on KITTI 00, "
                         "whose first ground-truth poses are a constant-velocity fill)")
    args = ap.parse_args(argv)
    try:
        resolve_length_smoothing(args.length_smoothing, "mono")      # its own check, before any work
    except ValueError as exc:
        ap.error(str(exc))
    sources = [s for s in args.sources.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    try:
        strides = [int(x) for x in args.strides.split(",") if x]
    except ValueError:
        strides = [0]
    if not strides or min(strides) < 1:
        ap.error(f"--strides must be a comma list of whole numbers >= 1, got {args.strides!r}")
    for s in sources:
        if s not in SOURCES:
            ap.error(f"unknown source {s!r}; use {', '.join(SOURCES)}")
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}; use {', '.join(MODES)}")
    if not args.data.is_dir():
        ap.error(f"data root {args.data} does not exist")
    seqs = find_sequences(args.data)
    if args.sequences:
        wanted = set(args.sequences.split(","))
        seqs = [s for s in seqs if s.name in wanted]
    needs_net = any(s != "geometric" for s in sources) or "mono" in modes
    nets = NetRunner.load(args.models_dir, args.threads) if needs_net else None
    base = PoseEstimatorConfig(work_width=args.work_width, max_features=args.max_features, keyframes=args.keyframes,
                               ransac_threshold=args.ransac_threshold, fb_threshold=args.fb_threshold,
                               matcher=args.matcher, plausibility=not args.no_plausibility,
                               descriptor_flow_px=args.descriptor_flow_px, plausible_net=not args.no_net_length_check,
                               length_smoothing_dt=args.length_smoothing_dt, essential_length=args.essential_length,
                               descriptor_full_res=args.descriptor_full_res)
    rows = []
    for folder in seqs:
        try:
            seq = load_sequence(folder, max_frames=args.max_frames, first_frame=args.first_frame)
        except KittiFormatError as exc:
            ap.error(str(exc))
        gt = seq.poses
        for mode in modes:
            if mode == "stereo" and seq.right is None:
                continue
            if mode == "rgbd" and (seq.depth is None or all(d is None for d in seq.depth)):
                continue
            all_frames = prepare(seq, mode, nets, args.max_frames, sgbm_div=args.sgbm_div,
                                 camera_height=args.camera_height)
            mode_cfg = replace(base, essential=use_essential(args.essential, mode),
                               length_smoothing=resolve_length_smoothing(args.length_smoothing, mode))
            mode_name = (mode + ("+camera_height" if mode == "mono" and args.camera_height else "")
                         + ("+essential" if mode_cfg.essential else "")
                         + (f"+speed{mode_cfg.length_smoothing:g}" if mode_cfg.length_smoothing else ""))
            for stride in strides:
                sub, frames = every_kth(seq, all_frames, stride)
                n = len(frames["images"])
                if n < 5:
                    print(f"{folder.name} stride {stride}: {n} frames, fewer than ATE-5 needs; skipped", file=sys.stderr)
                    continue
                common = {"sequence": folder.name, "first_frame": args.first_frame, "stride": stride, "mode": mode_name,
                          "frames": n}
                for source in sources:
                    rows.append(_source_row(sub, frames, source, mode_cfg, gt[:n * stride:stride], common))
                if not args.no_baseline:
                    rows.append(_baseline_row(sub, frames, mode, gt[:n * stride:stride], common))
            _write_json(args.json, base, rows, args.sgbm_div)      # after every depth mode: a long run leaves what it measured
    print(markdown(rows))
    return 0


def _source_row(seq, frames: dict, source: str, cfg: PoseEstimatorConfig, gt: np.ndarray, common: dict) -> dict:
    out = run_source(seq, frames, source, cfg)
    st = out["stats"]
    n = len(frames["images"])
    ms = float(np.mean(st["ms"][1:])) / 1e3 if n > 1 else 0.0
    t_net = float(np.mean(st["net_ms"])) / 1e3 if st["net_ms"] and source != "geometric" else 0.0
    fps = 1.0 / max(frames["t_depth"] + t_net + ms, 1e-9)
    row = {**common, "source": source, **score(out["poses"], gt), "fps": fps,
           "time_ms": {"depth": 1e3 * frames["t_depth"], "pose_net": 1e3 * t_net, "estimator": 1e3 * ms},
           "stats": {"fallback": int(st["fallback"]), "refined": int(st["refined"]),
                     "inliers_median": float(np.median(st["inliers"])) if st["inliers"] else None,
                     "inlier_ratio_median": float(np.median(st["inlier_ratio"])) if st["inlier_ratio"] else None,
                     "rmse_px_median": float(np.median(st["rmse_px"])) if st["rmse_px"] else None}}
    _say(row)
    return row


def _baseline_row(seq, frames: dict, mode: str, gt: np.ndarray, common: dict) -> dict:
    out = run_baseline(frames, seq.k, mode)
    fps = 1.0 / max(frames["t_depth"] + out["ms"] / 1e3, 1e-9)
    row = {**common, "source": "classical", **score(out["poses"], gt), "fps": fps,
           "time_ms": {"depth": 1e3 * frames["t_depth"], "pose_net": 0.0, "estimator": out["ms"]},
           "stats": out["stats"]}
    _say(row)
    return row


def _say(row: dict) -> None:
    print(f"{row['sequence']} stride {row['stride']} {row['mode']} {row['source']}: ATE-5 {row['ate5']:.4f} m, "
          f"end drift {row['end_drift_pct']:.2f} %, path {row['path_err_pct']:+.1f} %, {row['fps']:.1f} FPS",
          file=sys.stderr, flush=True)


def _write_json(path: Path | None, base: PoseEstimatorConfig, rows: list[dict], sgbm_div: int | None) -> None:
    if path is None:
        return
    from vode_ros.core.atomic_file import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    div = sgbm_div or "auto (about 416 px wide)"
    with atomic_write(path) as fh:
        fh.write(json.dumps({"config": asdict(base), "sgbm_div": div, "rows": rows}, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
