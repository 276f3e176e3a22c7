#!/usr/bin/env python3
"""Stereo + net depth fusion measured against sensor truth (not against SGBM, which the fusion uses).

    .venv/bin/python scripts/fusion_experiment.py --data DIR [DIR ...] [--model models/] [--every 20]
        [--baseline 0.1] [--json runs/fusion.json]

An RGB-D folder (KITTI layout with depth_0/: TUM RGB-D, 7-Scenes) becomes a stereo camera: the right
image is rendered by forward-warping the left one with the sensor depth (core.depth_fusion.
render_right_view, baseline ``--baseline`` m, occlusions inpainted). Each frame then goes through
the depth node's own pipeline (runtime.depth_pipeline, mode stereo, scale auto): its fused depth
(``fuse_stereo`` on) is scored against the sensor depth beside
- SGBM alone (the same run-time map the fusion reads; on its valid pixels, with its coverage, and
  with its holes filled by its median),
- the net alone scaled by the pair's stereo ratio (``fuse_stereo`` off),
- a constant: the median of the SGBM map over the whole image.
Metric Abs Rel (no median scaling: the stereo pair gives metres), at the sensor's resolution
(predictions resized nearest), sensor pixels up to 10 m.

The simulated pair is ideal (no noise, exact rectification, the sensor's own depth makes the
disparities), so SGBM is better here than on a real camera; the net's errors are its own.

    .venv/bin/python scripts/fusion_experiment.py --holdout-kitti data/kitti_odometry_06_0000-0050

A real stereo pair without depth truth (the KITTI clip): blocks of the run-time SGBM map (one in
five, 16 px at the net's size) are hidden from the fusion and the fused depth there is scored
against the full-resolution SGBM (pseudo ground truth) beside the stereo-scaled net and a
constant: how well the holes are filled, where SGBM itself cannot judge the fusion.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def abs_rel(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    ok = mask & (pred > 0)
    return float(np.mean(np.abs(pred[ok] - truth[ok]) / truth[ok])) if ok.any() else float("nan")


def run_folder(folder: Path, model_dir: Path, every: int, baseline: float, max_depth: float = 10.0) -> dict:
    import cv2

    from vode_ros.core.depth_fusion import render_right_view
    from vode_ros.core.image_codec import to_gray
    from vode_ros.core.kitti import load_sequence, read_depth, read_image
    from vode_ros.runtime.depth_pipeline import DepthPipeline, DepthSettings
    from vode_ros.runtime.inference import OnnxModel

    seq = load_sequence(folder)
    if not seq.depth:
        raise SystemExit(f"{folder}: no depth_0/ sensor depth")
    model = OnnxModel(model_dir / "depth.onnx", ["CPUExecutionProvider"], expected_kind="depth")
    fused_pipe = DepthPipeline(model, DepthSettings("auto", "", scale_smoothing=0.0, have_stereo=True))
    net_pipe = DepthPipeline(model, DepthSettings("auto", "", scale_smoothing=0.0, have_stereo=True, fuse_stereo=False))
    fx = float(seq.k[0, 0])
    rows = []
    for i in range(0, len(seq), every):
        if seq.depth[i] is None:
            continue
        img = read_image(seq.left[i])
        left = to_gray(img, "rgb8" if img.ndim == 3 else "mono8")
        truth = read_depth(seq.depth[i])
        right = render_right_view(left, truth, fx, baseline)
        enc = "mono8"
        stamp = i * 100_000_000
        fused = fused_pipe.step(left, enc, stamp, seq.k, right=right, baseline=baseline)
        net = net_pipe.step(left, enc, stamp, seq.k, right=right, baseline=baseline)
        sgbm = net_pipe.stereo_map(left, right, seq.k, baseline, stamp, fused.depth.shape)
        up = lambda d: cv2.resize(d, truth.shape[::-1], interpolation=cv2.INTER_NEAREST)  # noqa: E731
        mask = (truth > 0) & (truth <= max_depth)
        sg = up(sgbm)
        med = float(np.median(sgbm[sgbm > 0])) if (sgbm > 0).any() else float("nan")
        sg_filled = np.where(sg > 0, sg, med)
        conf = up(fused.confidence) if fused.confidence is not None else np.zeros_like(truth)
        fz = up(fused.depth)
        hi = mask & (conf >= 0.5)
        rows.append({"frame": i, "fused": abs_rel(fz, truth, mask), "net_stereo_scaled": abs_rel(up(net.depth), truth, mask),
                     "sgbm_valid_only": abs_rel(sg, truth, mask), "sgbm_coverage": float((mask & (sg > 0)).sum() / mask.sum()),
                     "fused_on_sgbm_pixels": abs_rel(fz, truth, mask & (sg > 0)),
                     "sgbm_holes_filled_with_median": abs_rel(sg_filled, truth, mask),
                     "fused_in_sgbm_holes": abs_rel(fz, truth, mask & (sg <= 0)),
                     "net_in_sgbm_holes": abs_rel(up(net.depth), truth, mask & (sg <= 0)),
                     "constant": abs_rel(np.full_like(truth, med), truth, mask),
                     "fused_confident_share": float(hi.sum() / mask.sum()), "fused_confident": abs_rel(fz, truth, hi)})
    keys = [k for k in rows[0] if k != "frame"]
    mean = {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
    return {"folder": folder.name, "frames": len(rows), "every": every, "baseline_m": baseline,
            "model": str(model_dir), "mean": mean, "per_frame": rows}


def run_kitti_holdout(folder: Path, model_dir: Path, every: int, block: int = 16, max_depth: float = 80.0) -> dict:
    import cv2

    from vode_ros.core.depth_fusion import fuse_depth
    from vode_ros.core.kitti import load_sequence, read_image
    from vode_ros.core.stereo_depth import sgbm_depth
    from vode_ros.runtime.depth_pipeline import DepthPipeline, DepthSettings
    from vode_ros.runtime.inference import OnnxModel
    from vode_ros.runtime.scale import median_ratio

    seq = load_sequence(folder)
    model = OnnxModel(model_dir / "depth.onnx", ["CPUExecutionProvider"], expected_kind="depth")
    pipe = DepthPipeline(model, DepthSettings("model", "", have_stereo=True, fuse_stereo=False))
    rows = []
    for i in range(0, len(seq), every):
        left, right = read_image(seq.left[i]), read_image(seq.right[i])
        out = pipe.step(left, "mono8", i * 100_000_000, seq.k)            # the net's own depth, no pair
        h, w = out.depth.shape
        ref = pipe.stereo_map(left, right, seq.k, seq.baseline, i * 100_000_000, (h, w))
        by, bx = np.mgrid[0:h, 0:w]
        hidden = (by // block + 2 * (bx // block)) % 5 == 0
        given = np.where(hidden, 0, ref).astype(np.float32)
        ratio = median_ratio(given, out.depth)
        net = out.depth * np.float32(ratio)
        guide = cv2.resize(left, (w, h), interpolation=cv2.INTER_AREA)
        fused = fuse_depth(net, given, guide, float(out.k_net[0, 0]), seq.baseline)
        truth = cv2.resize(sgbm_depth(left, right, float(seq.k[0, 0]), seq.baseline), (w, h),
                           interpolation=cv2.INTER_NEAREST)
        mask = hidden & (truth > 0) & (truth <= max_depth)
        med = float(np.median(given[given > 0]))
        rows.append({"frame": i, "fused": abs_rel(fused.depth, truth, mask), "net_stereo_scaled": abs_rel(net, truth, mask),
                     "constant": abs_rel(np.full_like(truth, med), truth, mask), "pixels": int(mask.sum())})
    keys = [k for k in rows[0] if k not in ("frame", "pixels")]
    return {"folder": folder.name, "frames": len(rows), "every": every, "hidden": f"{block} px blocks, one in five",
            "mean": {k: float(np.nanmean([r[k] for r in rows])) for k in keys}, "per_frame": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="*", default=[])
    ap.add_argument("--holdout-kitti", nargs="*", default=[], help="stereo KITTI-layout folders: hidden SGBM blocks")
    ap.add_argument("--model", default=str(REPO / "models"))
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--baseline", type=float, default=0.1)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    out = [run_folder(Path(d), Path(args.model), args.every, args.baseline) for d in args.data]
    for r in out:
        m = r["mean"]
        print(f"{r['folder']} ({r['frames']} frames, baseline {r['baseline_m']} m): fused {m['fused']:.3f} | "
              f"net x stereo ratio {m['net_stereo_scaled']:.3f} | SGBM alone {m['sgbm_valid_only']:.3f} on "
              f"{m['sgbm_coverage']:.0%} of pixels (fused there {m['fused_on_sgbm_pixels']:.3f}), holes filled with its "
              f"median {m['sgbm_holes_filled_with_median']:.3f} | in SGBM's holes: fused {m['fused_in_sgbm_holes']:.3f}, "
              f"net {m['net_in_sgbm_holes']:.3f} | constant {m['constant']:.3f} | confidence >= 0.5 on "
              f"{m['fused_confident_share']:.0%}: {m['fused_confident']:.3f}")
    for folder in args.holdout_kitti:
        r = run_kitti_holdout(Path(folder), Path(args.model), max(1, args.every // 4))
        out.append(r)
        m = r["mean"]
        print(f"{r['folder']} ({r['frames']} frames, hidden SGBM blocks vs full-resolution SGBM): fused "
              f"{m['fused']:.3f} | net x stereo ratio {m['net_stereo_scaled']:.3f} | constant {m['constant']:.3f}")
    if args.json:
        from vode_ros.core.atomic_file import atomic_write

        with atomic_write(args.json) as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
