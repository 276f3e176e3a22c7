"""`vode run`: the launch file's nodes in one process, for machines without `ros2 launch`.

Reads the same parameter YAML as launch/vode.launch.py and hosts the nodes in one
MultiThreadedExecutor (as a component container would). Optionally plays a bag into them.
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import rclpy
from rclpy.executors import MultiThreadedExecutor

from vode_ros.core.resources import resource_path

DEFAULT_PARAMS = resource_path("config", "vode.yaml")


def ros_args(params_file: Path, overrides: dict[str, str], namespace: str = "") -> list[str]:
    args = ["--ros-args", "--params-file", str(params_file)]
    if namespace.strip("/"):
        args += ["-r", f"__ns:=/{namespace.strip('/')}"]
    for key, value in overrides.items():
        args += ["-p", f"{key}:={value}"]
    return args


def params_file_problem(path: Path) -> str | None:
    """What is wrong with a ROS 2 parameter file, in words, or None: rcl's own parse error names
    only a line, and it comes as an exception out of rclpy.init."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return f"not readable YAML ({str(exc).splitlines()[0]})"
    if not isinstance(doc, dict) or not doc:
        return "expected a mapping of node names to {ros__parameters: {...}} (see config/vode.yaml)"

    def holds_parameters(body) -> bool:      # a node's entry, or a namespace of them ("ns: node: ros__parameters")
        if not isinstance(body, dict) or not body:
            return False
        if "ros__parameters" in body:
            return isinstance(body["ros__parameters"], dict)
        return all(holds_parameters(v) for v in body.values())

    for name, body in doc.items():
        if not holds_parameters(body):
            return f"'{name}' has no 'ros__parameters:' mapping (see config/vode.yaml)"
    return None


def run_nodes(params_file: Path | None = None, overrides: dict[str, str] | None = None,
              nodes: tuple[str, ...] = ("depth", "odometry"), bag: Path | None = None,
              rate: float = 1.0, log=print, namespace: str = "",
              node_overrides: dict[str, dict[str, Any]] | None = None,
              error=lambda message: print(message, file=sys.stderr)) -> int:
    """Host `nodes` in one process; `overrides` go to every node (-p), `node_overrides` to one
    node each ({"depth": {"scale_mode": "stereo"}}). Start-up errors: one line to ``error`` (stderr),
    exit 2 for a missing or unreadable parameter file, 1 for a node that cannot start.
    SIGINT / SIGTERM stop it quietly with exit 0."""
    from rclpy.parameter import Parameter

    from vode_ros.nodes.depth_node import DepthNode
    from vode_ros.nodes.odometry_node import OdometryNode
    from vode_ros.nodes.shutdown import quiet_signals, spin_until_shutdown, startup_errors, stopped_while_starting
    from vode_ros.runtime.pose.depth_input import DepthCache
    from vode_ros.runtime.frame_share import FrameShare

    params_file = Path(params_file or DEFAULT_PARAMS)
    if not params_file.is_file():
        error(f"parameter file not found: {params_file}")
        return 2
    problem = params_file_problem(params_file)
    if problem:
        error(f"parameter file {params_file}: {problem}")
        return 2
    quiet_signals()           # before rclpy.init: Ctrl-C shuts rclpy down, never raises KeyboardInterrupt
    try:
        rclpy.init(args=ros_args(params_file, overrides or {}, namespace))
    except Exception as exc:  # rcl's own parser refused an argument or the file (RCLError is not public API)
        error(f"error: ROS 2 could not start with {params_file}: {str(exc).splitlines()[0]}")
        return 2
    created = []
    # Both nodes in this process: the depth node hands its depth to the odometry node's geometry
    # directly (same stamps, no serialisation) instead of through depth/image.
    # And a stereo pair is matched once, for the depth node's scale and the odometry's geometry.
    shared_depth = DepthCache() if {"depth", "odometry"} <= set(nodes) else None
    shared_frames = FrameShare()
    try:
        for name in nodes:
            own = [Parameter(k, value=v) for k, v in (node_overrides or {}).get(name, {}).items()]
            created.append({"depth": DepthNode, "odometry": OdometryNode}[name](
                parameter_overrides=own, depth_cache=shared_depth, frame_share=shared_frames))
    except Exception as exc:   # bad model file or parameter: the node has torn itself down
        for n in created:
            n.destroy_node()
        if stopped_while_starting():      # Ctrl-C while the models were loading: a quiet stop
            return 0
        if not isinstance(exc, startup_errors()):
            raise
        error(f"error: {exc}")
        rclpy.try_shutdown()
        return 1
    executor = MultiThreadedExecutor(num_threads=4)
    for n in created:
        executor.add_node(n)
    if bag is not None:
        from vode_ros.bag.play_record import BagPlayer

        # With use_sim_time the nodes' clocks follow the bag through /clock; with reliable_input
        # the replay is RELIABLE too, so that no frame is lost.
        reliable = (overrides or {}).get("reliable_input") == "true"
        player = BagPlayer(bag, rate=rate, publish_clock=(overrides or {}).get("use_sim_time") == "true",
                           reliable=reliable)
        executor.add_node(player)

        def play_then_stop():
            wanted = {n.get_parameter(p).value for n in created for p in ("image_topic", "camera_info_topic")}
            player.wait_for_subscribers([t for t in player.publishers_by_topic if t in wanted], 20.0)
            time.sleep(0.5)   # discovery completes on both sides a moment after the match is seen
            player.play()
            # The last images may still be in DDS or in the worker: wait until every frame that
            # came in is accounted for (published, dropped by newest-frame-wins, or rejected).
            deadline, last, stable_since = time.monotonic() + 15.0, None, time.monotonic()
            while time.monotonic() < deadline:
                counts = [n.frames_in for n in created]
                if counts != last:
                    last, stable_since = counts, time.monotonic()
                settled = all(n.worker.wait_idle(1.0) and n.accounts.frames_pending == 0 for n in created)
                if settled and time.monotonic() - stable_since > 1.0:
                    break
                time.sleep(0.1)
            log(f"played {player.published} messages from {bag}")
            for n in created:
                clock = n.get_clock().now().nanoseconds * 1e-9
                snap = n.accounts.snapshot()
                log(f"{n.get_name()}: {snap.frames_in} frames in, {snap.frames_out} out, {snap.frames_dropped} "
                    f"dropped, {snap.frames_rejected} rejected {snap.rejected or ''}; node clock {clock:.1f} s")
            rclpy.try_shutdown()

        threading.Thread(target=play_then_stop, daemon=True).start()
    log(f"running {', '.join(n.get_name() for n in created)} with {params_file} (Ctrl-C to stop)")
    waiting = [n.get_fully_qualified_name() for n in created
               if n.lifecycle_state == "unconfigured" and not n.params.value("autostart")]
    if waiting:
        log(f"{', '.join(waiting)} wait unconfigured (autostart false): `ros2 lifecycle set <node> configure`, "
            "then `activate`, or a lifecycle manager")
    spin_until_shutdown(executor, created)
    return 0
