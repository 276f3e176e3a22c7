"""`vode demo`: the main job on the embedded KITTI clip (or any KITTI-layout folder)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vode_ros.cli.arg_types import number
from vode_ros.cli.missing_extras import training_extras_missing
from vode_ros.cli.output_paths import declare_outputs

def register(subparsers) -> argparse.ArgumentParser:
    from vode_ros.tools.demo import DEFAULT_DATA, DEFAULT_MODE, DEFAULT_OUT, DEFAULT_POSE_SOURCE

    p = subparsers.add_parser(
        "demo", help="KITTI clip -> bag -> real ROS 2 nodes -> report (ATE, depth metrics, plots)",
        description="Converts a KITTI-odometry-layout folder to a rosbag2, plays it through the "
                    "depth and odometry nodes over DDS, records their outputs and writes "
                    "report.json, trajectory.png and depth_*.png.")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"KITTI layout folder (default: {DEFAULT_DATA})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder")
    p.add_argument("--model-dir", type=Path, default=None, help="depth.onnx + pose.onnx (default: shipped)")
    p.add_argument("--rate", type=number(float, low=0.0), default=1.0, help="playback rate of the clip (1 = real time)")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.add_argument("--mode", choices=("mono", "stereo"), default=DEFAULT_MODE,
                   help="stereo: the right images go to the nodes (SGBM depth for the pose geometry); mono: the "
                        f"left images only, the geometry uses the depth node's depth (default: {DEFAULT_MODE})")
    p.add_argument("--pose-source", choices=("net", "geometric", "hybrid"), default=DEFAULT_POSE_SOURCE,
                   help=f"the odometry node's pose source (default: {DEFAULT_POSE_SOURCE})")
    p.add_argument("--adapt", type=number(float, low=0.0), nargs="?", const=3.0, default=None, metavar="MINUTES",
                   help="instead: adapt the shipped model to the clip (`vode adapt` on its bag, default 3 minutes) and "
                        "show before/after on its held-out end in <out>/adapted/ (needs torch)")
    p.set_defaults(func=run)
    declare_outputs(p, ("out", "--out", True))
    return p


def run(args) -> int:
    from vode_ros.tools.demo import run_demo, summary
    from vode_ros.runtime.inference import ModelLoadError
    from vode_ros.core.kitti import KittiFormatError

    if args.adapt is not None:
        return _run_adapt(args)
    try:
        report = run_demo(args.data, args.out, args.model_dir, args.rate, args.storage, mode=args.mode,
                          pose_source=args.pose_source)
    except (KittiFormatError, ModelLoadError) as exc:
        print(f"vode demo: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:   # DemoIncomplete (frames lost), nodes that exited or never appeared
        print(f"vode demo: error: {exc}", file=sys.stderr)
        return 1
    print(summary(report))
    print(f"report: {Path(args.out) / 'report.json'}  plots: {args.out}/trajectory.png, depth_*.png")
    return 0


def _run_adapt(args) -> int:
    """`vode demo --adapt`: vode adapt on the clip's bag, before/after (vode_ros.tools.adaptation.demo_adapt)."""
    from vode_ros.core.kitti import KittiFormatError

    try:
        from vode_ros.tools.adaptation.demo_adapt import run_adapt_demo
        from vode_ros.tools.adaptation.offline import AdaptError
    except ImportError as exc:
        return training_extras_missing("vode demo --adapt", exc)
    try:
        report = run_adapt_demo(args.data, args.out, args.adapt,
                                log=lambda m: print(f"vode demo --adapt: {m}", file=sys.stderr))
    except (KittiFormatError, AdaptError) as exc:
        print(f"vode demo --adapt: {exc}", file=sys.stderr)
        return 2
    print(report["headline"])
    print(report["verdict"])
    print(f"scale: {report['scale']}")
    print(f"report: {report['report']}  figure (before/after): {report['figure']}")
    return 0
