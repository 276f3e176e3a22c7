"""`vode run`: start the nodes from the parameter YAML (the pip-only twin of the launch file).

Every argument of launch/vode.launch.py except rviz has an option here with the same effect.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vode_ros.cli.arg_types import number
from vode_ros.runtime.scale import NODE_MODES as SCALE_MODES


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("run", help="run the depth and odometry nodes (one process)",
                              description="Starts the nodes of launch/vode.launch.py from the same "
                                          "parameter file, in one process. Optionally plays a bag into them.")
    p.add_argument("--params", type=Path, default=None, help="parameter YAML (default: config/vode.yaml)")
    p.add_argument("--model-dir", default=None, help="folder with depth.onnx and pose.onnx")
    p.add_argument("--model", choices=("driving", "indoor"), default=None,
                   help="shipped model where --model-dir is not given (default: by --domain, else driving)")
    p.add_argument("--nodes", default="depth,odometry", help="comma list of depth, odometry")
    p.add_argument("--mode", choices=("mono", "stereo"), default=None,
                   help="mono, or stereo (right camera pairs for metric scale)")
    p.add_argument("--scale-mode", choices=SCALE_MODES, default=None,
                   help="where the depth node's metric scale comes from (the odometry node follows it)")
    p.add_argument("--domain", default=None,
                   help="what the camera sees (driving, indoor, ...): with scale-mode auto, a model trained on "
                        "another domain is not trusted for metres")
    p.add_argument("--pose-source", choices=("net", "geometric", "hybrid"), default=None,
                   help="the odometry node's pose source (default: the parameter file's, hybrid)")
    p.add_argument("--geometry-depth", choices=("auto", "depth_topic", "stereo"), default=None,
                   help="depth for the geometric / hybrid pose: stereo SGBM (mode stereo), the depth node's depth, "
                        "or auto (stereo in mode stereo, else the depth node's)")
    p.add_argument("--image-topic", default=None)
    p.add_argument("--camera-info-topic", default=None)
    p.add_argument("--right-image-topic", default=None)
    p.add_argument("--right-camera-info-topic", default=None)
    p.add_argument("--image-transport", choices=("raw", "compressed"), default=None)
    p.add_argument("--reliable-input", action="store_true",
                   help="RELIABLE + KEEP_ALL input, every frame processed (bag replay; default: newest frame wins)")
    p.add_argument("--namespace", default="", help="namespace of both nodes (one per camera when several run)")
    p.add_argument("--frame-prefix", default="", help="prefix of the default TF frame names, e.g. 'front/'")
    p.add_argument("--odom-frame", default=None, help="default: <frame-prefix>odom")
    p.add_argument("--base-frame", default=None, help="default: <frame-prefix>base_link")
    p.add_argument("--camera-frame", default=None, help="default: <frame-prefix>camera_left_optical_frame")
    p.add_argument("--use-sim-time", action="store_true", help="follow /clock (e.g. from a bag)")
    p.add_argument("--no-autostart", action="store_true",
                   help="leave the (lifecycle) nodes unconfigured for a lifecycle manager or `ros2 lifecycle set`")
    p.add_argument("--bag", type=Path, default=None, help="play this rosbag2 into the nodes, then exit")
    p.add_argument("--rate", type=number(float), default=1.0, help="bag playback rate (0 = as fast as possible)")
    p.set_defaults(func=run)
    return p


def node_parameters(args) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """(overrides for every node as -p strings, per-node overrides) from the options."""
    overrides: dict[str, str] = {}
    if args.model_dir:
        overrides["model_dir"] = str(Path(args.model_dir).resolve())
    if args.model:
        overrides["model"] = args.model
    for option, name in (("image_topic", "image_topic"), ("camera_info_topic", "camera_info_topic"),
                         ("right_image_topic", "right_image_topic"),
                         ("right_camera_info_topic", "right_camera_info_topic"),
                         ("image_transport", "image_transport"), ("mode", "mode")):
        value = getattr(args, option)
        if value:
            overrides[name] = value
    if args.use_sim_time:
        overrides["use_sim_time"] = "true"
    if args.reliable_input:
        overrides["reliable_input"] = "true"
    if args.no_autostart:
        overrides["autostart"] = "false"
    per_node: dict[str, dict[str, Any]] = {"depth": {}, "odometry": {}}
    if args.scale_mode:
        per_node["depth"]["scale_mode"] = args.scale_mode
        # As the launch file: the odometry node follows the depth node's scale unless the model is metric.
        per_node["odometry"]["scale_mode"] = "model" if args.scale_mode in ("model", "none") else "from_depth"
    if args.domain is not None:
        per_node["depth"]["domain"] = args.domain
        per_node["odometry"]["domain"] = args.domain       # off the pose net's domain: its rotation only
    for option in ("pose_source", "geometry_depth"):
        if getattr(args, option, None):
            per_node["odometry"][option] = getattr(args, option)
    prefix = args.frame_prefix
    for option, default in (("odom_frame", "odom"), ("base_frame", "base_link"),
                            ("camera_frame", "camera_left_optical_frame")):
        value = getattr(args, option) or (prefix + default if prefix else None)
        if value:
            per_node["odometry"][option] = value
    return overrides, per_node


def run(args) -> int:
    from vode_ros.nodes.base import topic_name_problem
    from vode_ros.nodes.runner import run_nodes

    nodes = tuple(n.strip() for n in args.nodes.split(",") if n.strip())
    bad = [n for n in nodes if n not in ("depth", "odometry")]
    if bad or not nodes:
        print(f"vode run: --nodes {args.nodes!r}: {f'unknown node(s) {bad}' if bad else 'no node'}; give a comma "
              "list of depth, odometry", file=sys.stderr)
        return 2
    if args.namespace.strip("/"):
        from rclpy.validate_namespace import validate_namespace

        try:
            validate_namespace("/" + args.namespace.strip("/"))
        except Exception as exc:  # noqa: BLE001 - InvalidNamespaceException; its first line says why
            why = str(exc).splitlines()[0].rstrip(":").replace("Invalid namespace: ", "")
            print(f"vode run: --namespace {args.namespace!r} is not a valid ROS 2 namespace ({why}); use letters, "
                  "digits and '_', e.g. front_camera", file=sys.stderr)
            return 2
    if args.rate < 0:
        print(f"vode run: --rate must be 0 (as fast as possible) or positive, not {args.rate:g}", file=sys.stderr)
        return 2
    for option in ("image_topic", "camera_info_topic", "right_image_topic", "right_camera_info_topic"):
        value = getattr(args, option)
        problem = topic_name_problem(value) if value is not None else None
        if problem:
            print(f"vode run: --{option.replace('_', '-')}: {problem}", file=sys.stderr)
            return 2
    if args.bag and args.no_autostart:
        print("vode run: --bag needs nodes that take images: drop --no-autostart (or play the bag yourself "
              "once a lifecycle manager has activated them)", file=sys.stderr)
        return 2
    if args.bag:
        # Checked before any node starts: a missing or unreadable bag is the user's to fix, not a traceback.
        from vode_ros.bag.reader import BagReadError, open_bag

        try:
            with open_bag(args.bag):
                pass
        except BagReadError as exc:
            print(f"vode run: {exc}", file=sys.stderr)
            return 2
    overrides, per_node = node_parameters(args)
    return run_nodes(args.params, overrides, nodes, bag=args.bag, rate=args.rate, namespace=args.namespace,
                     node_overrides=per_node)
