"""launch/vode.launch.py: its arguments and parameters, the `vode run` twin, the runner.

Where the ROS 2 `launch` packages are missing (the PyPI wheels do not have them) the file is
executed against small stand-ins of the launch classes, which record what the file builds;
where they are installed, the launch file is also started for real and stopped with SIGINT.
"""
from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from launch_helpers import launch_stop_problem
from vode_ros.cli import run as run_cli
from vode_ros.tools import launch_runner

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / "launch" / "vode.launch.py"
NODE_SOURCES = {
    "depth_node": ["base.py", "depth_node.py"],
    "odometry_node": ["base.py", "odometry_node.py", "pose_params.py"],
}

# Every launch argument, and the `vode run` option that does the same.
RUN_OPTION = {
    "mode": "--mode", "scale_mode": "--scale-mode", "right_image_topic": "--right-image-topic",
    "right_camera_info_topic": "--right-camera-info-topic", "image_transport": "--image-transport",
    "model_dir": "--model-dir", "model": "--model", "params_file": "--params", "namespace": "--namespace",
    "frame_prefix": "--frame-prefix", "odom_frame": "--odom-frame", "base_frame": "--base-frame",
    "camera_frame": "--camera-frame", "image_topic": "--image-topic", "camera_info_topic": "--camera-info-topic",
    "use_sim_time": "--use-sim-time", "depth": "--nodes", "odometry": "--nodes", "bag": "--bag", "bag_rate": "--rate",
    "reliable_input": "--reliable-input", "domain": "--domain", "pose_source": "--pose-source",
    "geometry_depth": "--geometry-depth", "autostart": "--no-autostart",
}
# Launch arguments with no `vode run` twin, and why.
LAUNCH_ONLY = {"rviz": "RViz is a separate GUI program; vode run hosts only the nodes"}
# Options `vode run` does not have yet (cli/run.py + nodes/runner.py); strict, so wiring one fails here
# until it is taken off the list.
RUN_PENDING: set[str] = set()


# -- the launch file against stand-ins of the launch classes ----------------------------------
class _Made:
    """Records how a launch class was constructed."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __eq__(self, other):
        return type(self) is type(other) and (self.args, self.kwargs) == (other.args, other.kwargs)

    def __repr__(self):
        return f"{type(self).__name__}{self.args}{self.kwargs}"


def _stand_ins(new_api: bool) -> dict[str, types.ModuleType]:
    def module(name, *classes):
        mod = types.ModuleType(name)
        for cls in classes:
            setattr(mod, cls, type(cls, (_Made,), {}))
        return mod

    subs = ["LaunchConfiguration", "PythonExpression"] + (["NotEqualsSubstitution"] if new_api else [])
    return {
        "launch": module("launch", "LaunchDescription"),
        "launch.actions": module("launch.actions", "DeclareLaunchArgument", "ExecuteProcess"),
        "launch.conditions": module("launch.conditions", "IfCondition", "LaunchConfigurationNotEquals"),
        "launch.substitutions": module("launch.substitutions", *subs),
        "launch_ros": module("launch_ros"),
        "launch_ros.actions": module("launch_ros.actions", "Node"),
    }


def _describe(monkeypatch, new_api: bool = True, ros2_bag: bool = False) -> dict:
    mods = _stand_ins(new_api)
    for name, mod in mods.items():
        monkeypatch.setitem(sys.modules, name, mod)
    real_which, real_find_spec = shutil.which, importlib.util.find_spec
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **k: "/opt/ros/bin/ros2" if cmd == "ros2" and ros2_bag
                        else (None if cmd == "ros2" else real_which(cmd, *a, **k)))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "ros2bag" and ros2_bag
                        else (None if name == "ros2bag" else real_find_spec(name, *a)))
    spec = importlib.util.spec_from_file_location("vode_launch_under_test", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    entities = module.generate_launch_description().args[0]
    by_kind: dict = {"args": {}, "nodes": {}, "processes": [], "mods": mods}
    for e in entities:
        kind = type(e).__name__
        if kind == "DeclareLaunchArgument":
            by_kind["args"][e.args[0]] = e
        elif kind == "Node":
            by_kind["nodes"][e.kwargs.get("name") or e.kwargs["executable"]] = e
        elif kind == "ExecuteProcess":
            by_kind["processes"].append(e)
    return by_kind


def _lc(mods, name):
    return mods["launch.substitutions"].LaunchConfiguration(name)


def _params(node) -> dict:
    out = {}
    for p in node.kwargs["parameters"]:
        if isinstance(p, dict):
            out.update(p)
    return out


def _declared(node_name: str) -> set[str]:
    names = set()
    for f in NODE_SOURCES[node_name]:
        # _declare("name", ...) in the nodes; d("name", ...) in pose_params' table
        names |= set(re.findall(r'(?:_declare|\bd)\(\s*"(\w+)"', (REPO / "vode_ros" / "nodes" / f).read_text()))
    return names


def test_every_launch_argument_has_a_vode_run_twin_or_a_reason(monkeypatch):
    declared = set(_describe(monkeypatch)["args"])
    undecided = declared - set(RUN_OPTION) - set(LAUNCH_ONLY)
    assert not undecided, f"new launch arguments {sorted(undecided)}: add them to `vode run` and RUN_OPTION"
    assert not (set(RUN_OPTION) | set(LAUNCH_ONLY)) - declared, "RUN_OPTION names arguments the launch file lost"


def _run_options() -> set[str]:
    parser = argparse.ArgumentParser()
    run_cli.register(parser.add_subparsers())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
    return {s for a in sub._actions for s in a.option_strings}


@pytest.mark.parametrize("argument", [
    pytest.param(a, marks=pytest.mark.xfail(strict=True, reason=f"`vode run` has no {RUN_OPTION[a]} yet"))
    if a in RUN_PENDING else a for a in sorted(RUN_OPTION)])
def test_vode_run_has_the_launch_argument(argument):
    assert RUN_OPTION[argument] in _run_options()


def test_every_parameter_the_launch_file_sets_is_declared_by_its_node(monkeypatch):
    nodes = _describe(monkeypatch)["nodes"]
    for name in ("depth_node", "odometry_node"):
        params = set(_params(nodes[name])) - {"use_sim_time"}   # use_sim_time: every rclpy node has it
        missing = params - _declared(name)
        assert not missing, f"the launch file sets {sorted(missing)} on {name}, which does not declare them"


def test_namespace_and_frame_names_separate_two_instances(monkeypatch):
    d = _describe(monkeypatch)
    mods = d["mods"]
    for name in ("depth_node", "odometry_node"):
        assert d["nodes"][name].kwargs["namespace"] == _lc(mods, "namespace")
    odom = _params(d["nodes"]["odometry_node"])
    for frame, default in (("odom_frame", "odom"), ("base_frame", "base_link"),
                           ("camera_frame", "camera_left_optical_frame")):
        assert odom[frame] == _lc(mods, frame)
        assert d["args"][frame].kwargs["default_value"] == [_lc(mods, "frame_prefix"), default]
    assert d["args"]["namespace"].kwargs["default_value"] == ""
    assert d["args"]["frame_prefix"].kwargs["default_value"] == ""


@pytest.mark.parametrize("new_api", [True, False], ids=["kilted_substitution", "humble_condition"])
def test_bag_condition_uses_the_substitution_where_it_exists(monkeypatch, new_api):
    d = _describe(monkeypatch, new_api=new_api)
    (bag,) = d["processes"]
    cond = bag.kwargs["condition"]
    if new_api:
        assert type(cond).__name__ == "IfCondition"
        (inner,) = cond.args
        assert type(inner).__name__ == "NotEqualsSubstitution" and inner.args == (_lc(d["mods"], "bag"), "")
    else:
        assert type(cond).__name__ == "LaunchConfigurationNotEquals" and cond.args == ("bag", "")


@pytest.mark.parametrize("ros2_bag", [True, False], ids=["ros2_bag_play", "vode_bag_play"])
def test_bag_is_played_by_ros2_bag_where_it_exists_else_by_vode(monkeypatch, ros2_bag):
    d = _describe(monkeypatch, ros2_bag=ros2_bag)
    cmd = d["processes"][0].kwargs["cmd"]
    mods = d["mods"]
    if ros2_bag:
        assert cmd[:3] == ["ros2", "bag", "play"]
    else:
        assert cmd[:6] == [sys.executable, "-m", "vode_ros.cli.main", "bag", "play", _lc(mods, "bag")]
        assert cmd[cmd.index("--wait-for") + 1] == _lc(mods, "image_topic")
    assert "--clock" in cmd and cmd[cmd.index("--rate") + 1] == _lc(mods, "bag_rate")


@pytest.mark.parametrize(("depth", "odometry", "readers"),
                         [("true", "true", "2"), ("true", "false", "1"), ("false", "true", "1"), ("false", "false", "1")])
def test_vode_bag_player_waits_for_every_node_started(monkeypatch, depth, odometry, readers):
    # Both nodes read the images: the player must not start when only the faster one has subscribed.
    d = _describe(monkeypatch)
    cmd = d["processes"][0].kwargs["cmd"]
    expression = cmd[cmd.index("--wait-subscribers") + 1]
    assert type(expression).__name__ == "PythonExpression"
    values = {"depth": depth, "odometry": odometry}
    text = "".join(values[part.args[0]] if type(part).__name__ == "LaunchConfiguration" else part
                   for part in expression.args[0])
    assert eval(text) == readers   # noqa: S307 - what launch's PythonExpression does with it


@pytest.mark.ros
@pytest.mark.timeout(120)
def test_vode_bag_play_waits_for_the_number_of_subscribers_asked(kitti_dir, tmp_path):
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    from vode_ros.bag.kitti_to_bag import convert

    bag = convert(kitti_dir, tmp_path / "clip", progress=False, max_frames=2)["out_path"]
    ctx = Context()
    rclpy.init(context=ctx)
    readers = [Node(f"wait_reader_{i}", context=ctx) for i in range(2)]
    got = [0, 0]
    executor = SingleThreadedExecutor(context=ctx)

    def play(timeout: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "vode_ros.cli.main", "bag", "play", str(bag), "--wait-for",
                                 "/camera/left/image_raw", "--wait-subscribers", "2", "--wait-timeout", timeout],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def finish(proc: subprocess.Popen) -> tuple[int, str]:
        while proc.poll() is None:
            executor.spin_once(timeout_sec=0.1)
        return proc.returncode, proc.stdout.read()

    bad = subprocess.run([sys.executable, "-m", "vode_ros.cli.main", "bag", "play", str(bag), "--wait-for",
                          "--wait-subscribers", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "--wait-subscribers must be 1 or more" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr
    try:
        for node in readers:
            executor.add_node(node)
        readers[0].create_subscription(Image, "/camera/left/image_raw",
                                       lambda m: got.__setitem__(0, got[0] + 1), 10)
        code, out = finish(play("2"))
        assert code != 0 and "fewer than 2 subscribers on /camera/left/image_raw" in out, out
        assert got[0] == 0, "the player sent frames with one of two readers there"
        readers[1].create_subscription(Image, "/camera/left/image_raw",
                                       lambda m: got.__setitem__(1, got[1] + 1), 10)
        code, out = finish(play("60"))
        assert code == 0, out
        deadline = time.monotonic() + 5
        while min(got) < 2 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert got == [2, 2], got
    finally:
        executor.shutdown()
        for node in readers:
            node.destroy_node()
        ctx.try_shutdown()


# -- launch_runner ------------------------------------------------------------------------
def test_runner_builds_the_command_for_what_is_installed(monkeypatch, tmp_path):
    args = {"namespace": "front", "use_sim_time": True}
    monkeypatch.setattr(launch_runner, "package_prefix", lambda: tmp_path)
    monkeypatch.setattr(launch_runner, "ros2_executable", lambda: "/opt/ros/bin/ros2")
    monkeypatch.setattr(launch_runner, "ros2_launch_available", lambda: True)
    # The package's launch file by name, as a user types it.
    assert launch_runner.launch_command(args) == ["/opt/ros/bin/ros2", "launch", "vode_ros", "vode.launch.py",
                                                  "namespace:=front", "use_sim_time:=true"]
    monkeypatch.setattr(launch_runner, "ros2_launch_available", lambda: False)
    monkeypatch.setattr(launch_runner, "launch_importable", lambda: True)
    assert launch_runner.launch_command(args)[:4] == [sys.executable, "-m", "vode_ros.tools.launch_runner",
                                                      str(LAUNCH_FILE)]
    monkeypatch.setattr(launch_runner, "launch_importable", lambda: False)
    with pytest.raises(launch_runner.LaunchUnavailable, match="vode run") as missing:
        launch_runner.launch_command(args)
    assert not isinstance(missing.value, launch_runner.PackageNotRegistered)


@pytest.mark.parametrize("via", ["ros2", "python"])
def test_runner_refuses_a_launch_that_cannot_find_the_package(monkeypatch, via):
    # launch_ros finds depth_node through the ament index: without vode_ros in it the launch would
    # start and die at once ("package 'vode_ros' not found"); the runner says so before.
    monkeypatch.setattr(launch_runner, "package_prefix", lambda: None)
    monkeypatch.setattr(launch_runner, "ros2_launch_available", lambda: via == "ros2")
    monkeypatch.setattr(launch_runner, "launch_importable", lambda: True)
    with pytest.raises(launch_runner.PackageNotRegistered, match="scripts/setup.sh") as refused:
        launch_runner.launch_command({})
    assert "ament index" in str(refused.value) and "vode run" in str(refused.value)


def test_package_prefix_follows_the_ament_index(monkeypatch, tmp_path):
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    assert launch_runner.package_prefix() is None
    marker = tmp_path / "share" / "ament_index" / "resource_index" / "packages" / "vode_ros"
    marker.parent.mkdir(parents=True)
    marker.touch()
    assert launch_runner.package_prefix() == tmp_path
    monkeypatch.delenv("AMENT_PREFIX_PATH")
    assert launch_runner.package_prefix() is None


def test_started_launch_stops_on_sigint_even_where_sigint_was_ignored(monkeypatch, tmp_path):
    # A CI step or `cmd &` in a script starts programs with SIGINT ignored, which exec keeps:
    # the runner gives the launch process SIGINT's default back, so stop() is a Ctrl-C, not a kill.
    script = tmp_path / "child.py"
    script.write_text("import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    raise SystemExit(7)\n")
    monkeypatch.setattr(launch_runner, "launch_command", lambda arguments, via: [sys.executable, str(script)])
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        child = launch_runner.start({})
    finally:
        signal.signal(signal.SIGINT, previous)
    time.sleep(1.0)
    assert launch_runner.stop(child, timeout=10) == 7


def test_runner_entry_explains_a_missing_launch_package(monkeypatch, capsys):
    monkeypatch.setattr(launch_runner, "launch_importable", lambda: False)
    assert launch_runner.main(["namespace:=x"]) == 2
    assert "vode run" in capsys.readouterr().err
    assert launch_runner.main(["/no/such.launch.py"]) == 2
    assert "no such launch file" in capsys.readouterr().err


def test_a_launch_folder_on_sys_path_is_not_taken_for_the_launch_package(monkeypatch, tmp_path):
    def fresh() -> bool:
        for name in [m for m in sys.modules if m == "launch" or m.startswith("launch.")]:
            monkeypatch.delitem(sys.modules, name)
        return launch_runner.launch_importable()

    installed = fresh()
    (tmp_path / "launch").mkdir()   # imports as an empty namespace package where launch is missing
    monkeypatch.syspath_prepend(str(tmp_path))
    assert fresh() == installed


def test_stop_sends_sigint_to_the_group_and_returns_its_status():
    child = subprocess.Popen([sys.executable, "-c", "import time\ntry:\n    time.sleep(60)\n"
                              "except KeyboardInterrupt:\n    raise SystemExit(7)"], start_new_session=True)
    time.sleep(0.5)
    t0 = time.monotonic()
    assert launch_runner.stop(child, timeout=10) == 7
    assert time.monotonic() - t0 < 5


def test_a_launch_is_judged_stopped_by_its_nodes_clean_finish_and_its_status():
    clean = ("[WARNING] [launch]: user interrupted with ctrl-c (SIGINT)\n"
             "[INFO] [odometry_node-2]: process has finished cleanly [pid 11]\n"
             "[INFO] [depth_node-1]: process has finished cleanly [pid 10]\n")
    assert launch_stop_problem(0, clean) is None
    assert launch_stop_problem(-signal.SIGTERM, clean) is None          # launch hung after (ros2/launch_ros#199)
    assert "status 1" in launch_stop_problem(1, clean)
    assert "status -15" in launch_stop_problem(-signal.SIGTERM, clean + "[ERROR] [launch]: still waiting\n")
    died = clean.replace("depth_node-1]: process has finished cleanly", "depth_node-1]: process has died")
    assert "depth_node did not finish cleanly" in launch_stop_problem(0, died)


# -- the real thing, where launch is installed ------------------------------------------------
@pytest.mark.skipif(not (launch_runner.ros2_launch_available() or launch_runner.launch_importable()),
                    reason="ROS 2 launch is not installed (not among the ROS 2 wheels on PyPI; scripts/test.sh "
                           "installs it where the ros2-launch tool sits beside the checkout); `vode run` covers "
                           "the nodes")
@pytest.mark.timeout(60)
def test_launch_starts_namespaced_nodes_that_publish_and_sigint_stops_them(kitti_dir, models_dir, tmp_path):
    import rclpy
    from nav_msgs.msg import Odometry
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from vode_ros.bag.kitti_to_bag import convert

    bag = convert(kitti_dir, tmp_path / "clip", progress=False, max_frames=40)["out_path"]
    log = tmp_path / "launch.log"
    # The probe subscribes before the nodes start, and the clip lasts 4 s: the outputs are volatile,
    # and the player starts once the nodes listen, while this probe may still be discovering their
    # publishers (seconds on a loaded machine; a 5-frame clip was over by then in half the runs).
    ctx = Context()
    rclpy.init(context=ctx)
    probe = Node("launch_test_probe", context=ctx)
    got = {"depth": 0, "odom": 0}
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    probe.create_subscription(Image, "/cam1/depth/image", lambda m: got.__setitem__("depth", got["depth"] + 1), qos)
    probe.create_subscription(Odometry, "/cam1/odom", lambda m: got.__setitem__("odom", got["odom"] + 1), qos)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(probe)
    proc = launch_runner.start({"namespace": "cam1", "frame_prefix": "cam1/", "model_dir": models_dir,
                                "bag": bag, "bag_rate": "1.0"}, log_path=log)
    try:
        deadline = time.monotonic() + 45
        wanted = {("/cam1", "depth_node"), ("/cam1", "odometry_node")}

        def names() -> set[tuple[str, str]]:
            return {(ns, n) for n, ns in probe.get_node_names_and_namespaces()}

        while time.monotonic() < deadline and not (got["depth"] and got["odom"] and wanted <= names()):
            executor.spin_once(timeout_sec=0.2)
            assert proc.poll() is None, f"launch exited early ({proc.returncode}):\n{log.read_text()[-3000:]}"
        assert wanted <= names(), names()
        assert got["depth"] and got["odom"], f"no output on /cam1/depth/image or /cam1/odom:\n{log.read_text()[-3000:]}"
    finally:
        code = launch_runner.stop(proc, timeout=20)
        executor.shutdown()
        probe.destroy_node()
        ctx.try_shutdown()
    problem = launch_stop_problem(code, log.read_text())
    assert problem is None, problem

