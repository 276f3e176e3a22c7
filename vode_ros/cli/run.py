"""`vode run`: start the nodes from the parameter YAML (the pip-only twin of the launch file)."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("run", help="run the depth and odometry nodes (one process)",
                              description="Starts the nodes of launch/vode.launch.py from the same "
                                          "parameter file, in one process. Optionally plays a bag into them.")
    p.add_argument("--params", type=Path, default=None, help="parameter YAML (default: config/vode.yaml)")
    p.add_argument("--model-dir", default=None, help="folder with depth.onnx and pose.onnx")
    p.add_argument("--nodes", default="depth,odometry", help="comma list of depth, odometry")
    p.add_argument("--image-topic", default=None)
    p.add_argument("--camera-info-topic", default=None)
    p.add_argument("--use-sim-time", action="store_true", help="follow /clock (e.g. from a bag)")
    p.add_argument("--bag", type=Path, default=None, help="play this rosbag2 into the nodes, then exit")
    p.add_argument("--rate", type=float, default=1.0, help="bag playback rate (0 = as fast as possible)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from vode_ros.nodes.runner import run_nodes

    overrides = {}
    if args.model_dir:
        overrides["model_dir"] = str(Path(args.model_dir).resolve())
    if args.image_topic:
        overrides["image_topic"] = args.image_topic
    if args.camera_info_topic:
        overrides["camera_info_topic"] = args.camera_info_topic
    if args.use_sim_time:
        overrides["use_sim_time"] = "true"
    nodes = tuple(n.strip() for n in args.nodes.split(",") if n.strip())
    bad = [n for n in nodes if n not in ("depth", "odometry")]
    if bad:
        print(f"vode run: unknown node(s) {bad}; choose from depth, odometry")
        return 2
    return run_nodes(args.params, overrides, nodes, bag=args.bag, rate=args.rate)
