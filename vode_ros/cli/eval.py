"""`vode eval`: depth and trajectory metrics of the exported models on a KITTI-layout folder.

    vode eval depth --data DIR [--model-dir DIR] [--gt auto|png|npy|velodyne|sgbm] [--stride N]
                    [--median-scaling/--no-median-scaling] [--garg-crop/--no-garg-crop]
                    [--json FILE] [--plots DIR]
    vode eval pose  --data DIR [--model-dir DIR] --json FILE [--plots DIR] [--lengths 10,20,30]
                    [--pose-source net|geometric|hybrid] [--depth auto|net|stereo|gt]

Numpy + ONNX Runtime only (vode_ros.tools.evaluate); exit code 2 on bad input
(missing folder, model file, ground truth). Also runs as a module:
``python -m vode_ros.cli.eval depth --data DIR``.
"""
from __future__ import annotations

import argparse
import sys

from vode_ros.cli.arg_types import number
from vode_ros.cli.output_paths import declare_outputs

def _lengths(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"lengths must be comma-separated metres, e.g. 10,20,30: {exc}")
    if not vals or any(v <= 0 for v in vals):
        raise argparse.ArgumentTypeError("lengths must be positive metres, e.g. 10,20,30")
    return vals


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="KITTI odometry layout folder (image_0/, calib.txt, times.txt, ...)")
    p.add_argument("--model-dir", default=None,
                   help="folder with depth.onnx / pose.onnx (default: the shipped models/)")
    p.add_argument("--plots", default=None, metavar="DIR", help="write figures (PNG) into this folder")
    p.add_argument("--max-frames", type=number(int, low=1), default=None, help="only the first N frames")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval", help="evaluate depth.onnx / pose.onnx on a KITTI-layout folder",
        description="Depth: Eigen-protocol metrics against depth_0/*.png, depth/*.npy, Velodyne or SGBM "
                    "pseudo-GT, beside a constant-depth baseline. "
                    "Pose: the odometry node's pose source (net, geometric, hybrid) -> ATE-5, full-trajectory ATE, "
                    "KITTI t_err/r_err, RPE, evo APE/RPE.")
    sub = p.add_subparsers(dest="eval_task", metavar="TASK")
    d = sub.add_parser("depth", help="depth metrics (7 Eigen metrics)")
    _common(d)
    d.add_argument("--gt", default="auto", choices=("auto", "png", "npy", "velodyne", "sgbm"),
                   help="ground truth: depth_0/*.png (uint16, m*256), depth/*.npy, velodyne/*.bin + Tr in "
                        "calib.txt, or stereo SGBM pseudo-GT (auto: the first available in that order)")
    d.add_argument("--median-scaling", action=argparse.BooleanOptionalAction, default=None,
                   help="per-image median scaling (default: on unless the model is metric)")
    d.add_argument("--garg-crop", action=argparse.BooleanOptionalAction, default=None,
                   help="Garg/Eigen crop (default: on for Velodyne GT only)")
    d.add_argument("--min-depth", type=number(float, above=0.0), default=1e-3)
    d.add_argument("--max-depth", type=number(float, above=0.0), default=None,
                   help="depth cap in metres (default: the domain's, 80 outdoors, 10 indoors)")
    d.add_argument("--stride", type=number(int, low=1), default=1, help="every N-th frame (long sequences)")
    d.add_argument("--json", default=None, metavar="FILE", help="write the results as JSON")
    d.set_defaults(func=run, eval_task="depth")
    declare_outputs(d, ("json", "--json", False), ("plots", "--plots", True))
    q = sub.add_parser("pose", help="trajectory metrics (needs poses.txt)")
    _common(q)
    q.add_argument("--json", default=None, metavar="FILE", help="write the results as JSON")
    q.add_argument("--lengths", type=_lengths, default=None,
                   help="KITTI segment lengths in metres, e.g. 10,20,30,40,50 (default: the devkit's "
                        "100..800 that fit, else multiples of 10 m, or 1 m, that fit)")
    q.add_argument("--pose-source", default="hybrid", choices=("net", "geometric", "hybrid"),
                   help="the odometry node's pose_source: the pose net alone, tracked corners + depth + PnP, or "
                        "PnP guided by the net with the net as fallback (default: hybrid, the node's default)")
    q.add_argument("--depth", default="auto", choices=("auto", "net", "stereo", "gt"),
                   help="depth for the geometric / hybrid sources: the depth net, stereo SGBM at about 416 px wide, "
                        "or the folder's depth_0/ (auto: stereo where the folder has right images, else the net)")
    q.add_argument("--keyframes", action="store_true",
                   help="the odometry node's keyframes parameter: track from a kept reference frame (handheld, indoor)")
    q.add_argument("--essential", default="auto", choices=("auto", "on", "off"),
                   help="the odometry node's essential parameter: rotation and direction from the essential matrix, "
                        "the length from PnP (auto: with the depth net's depth)")
    q.add_argument("--length-smoothing", type=number(float, high=0.999), default=-1.0, metavar="A",
                   help="the odometry node's length_smoothing parameter: the speed filtered over frames "
                        "(alpha-beta, gain 1 - A), A in [0, 1) (negative = auto: 0.7 with the depth net's depth, "
                        "else 0)")
    q.add_argument("--first-frame", type=number(int, low=0), default=0,
                   help="start at this frame, the ground truth rebased to it (KITTI 00: 14, its first poses are "
                        "a constant-velocity fill)")
    q.set_defaults(func=run, eval_task="pose")
    declare_outputs(q, ("json", "--json", False), ("plots", "--plots", True))
    p.set_defaults(func=_usage(p))
    return p


def _usage(p: argparse.ArgumentParser):
    def show(args) -> int:
        p.print_help(sys.stderr)
        return 2
    return show


def run(args) -> int:
    from vode_ros.tools import evaluate as run_eval

    progress = False if args.no_progress else None
    try:
        if args.eval_task == "depth":
            result = run_eval.evaluate_depth(
                args.data, args.model_dir, gt=args.gt, median_scaling=args.median_scaling,
                garg_crop=args.garg_crop, min_depth=args.min_depth, max_depth=args.max_depth,
                max_frames=args.max_frames, plots=args.plots, progress=progress, stride=args.stride)
            text = run_eval.format_depth(result)
        else:
            result = run_eval.evaluate_pose(args.data, args.model_dir, lengths=args.lengths,
                                            max_frames=args.max_frames, plots=args.plots, progress=progress,
                                            pose_source=args.pose_source, depth=args.depth,
                                            keyframes=args.keyframes, first_frame=args.first_frame,
                                            essential=args.essential, length_smoothing=args.length_smoothing)
            text = run_eval.format_pose(result)
    except run_eval.EvalInputError as exc:
        print(f"vode eval {args.eval_task}: {exc}", file=sys.stderr)
        return 2
    print(text)
    if args.json:
        try:
            print(f"vode eval {args.eval_task}: wrote {run_eval.write_json(result, args.json)}", file=sys.stderr)
        except OSError as exc:     # checked before the evaluation; the disk can still fill up since
            print(f"vode eval {args.eval_task}: --json {args.json} not written ({exc.strerror or exc}); the "
                  "results are above", file=sys.stderr)
            return 1
    for f in result.get("plots", []):
        print(f"vode eval {args.eval_task}: wrote {f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from vode_ros.cli.main import run_subcommand

    sys.exit(run_subcommand("eval"))
