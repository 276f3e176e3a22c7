"""The nodes as a ROS user meets them: started with `ros2 launch vode_ros vode.launch.py`, looked at
with the real ros2 CLI (`ros2 node info`, `ros2 param describe|get|set`, `ros2 topic hz`).

Runs where the ros2 CLI with its launch verb is installed (a ROS 2 install, or the ros2-launch tool
that scripts/test.sh installs into the venv where it sits beside the checkout); skips elsewhere.
Every ros2 call uses --no-daemon where it has it: no daemon process outlives the test.
"""
from __future__ import annotations

import re
import select
import subprocess
import sys
import time
import pytest

from launch_helpers import launch_stop_problem
from vode_ros.tools import launch_runner

pytestmark = [
    pytest.mark.slow, pytest.mark.ros,
    pytest.mark.skipif(not launch_runner.ros2_launch_available(),
                       reason="the ros2 CLI with `ros2 launch` is not installed (not among the ROS 2 wheels on "
                              "PyPI); `vode run` covers the nodes"),
]

# The ROS interface table of the README: what each node subscribes to and publishes (no namespace).
SUBSCRIBES = {"depth_node": {"/camera/left/image_raw", "/camera/left/camera_info"},
              "odometry_node": {"/camera/left/image_raw", "/camera/left/camera_info"}}
PUBLISHES = {"depth_node": {"/depth/image", "/depth/camera_info", "/vode/status", "/diagnostics"},
             "odometry_node": {"/odom", "/tf", "/tf_static", "/vode/status", "/diagnostics"}}
# --no-daemon: each call discovers the graph itself for --spin-time s (retried where it missed a node).
SPIN = ["--no-daemon", "--spin-time", "1.5"]


def _ros2(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([launch_runner.ros2_executable(), *args], capture_output=True, text=True, timeout=timeout)


def _until(check, what: str, seconds: float = 60):
    """Call `check` until it returns something truthy (DDS discovery takes its time on a busy machine)."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, f"{what}: not within {seconds:.0f} s"
            return result
        time.sleep(1.0)


def _ros2_until(*args: str, ok) -> subprocess.CompletedProcess:
    """`ros2 *args`, again until ok(result) (a call that missed the node in discovery says so and fails)."""
    last: list[subprocess.CompletedProcess] = []

    def attempt():
        last[:] = [_ros2(*args)]
        return ok(last[0]) and last[0]

    try:
        return _until(attempt, "ros2 " + " ".join(args))
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last output:\n{last[0].stdout}{last[0].stderr}") from None


@pytest.fixture(scope="module")
def launched(kitti_dir, models_dir, tmp_path_factory):
    """depth_node + odometry_node through `ros2 launch vode_ros vode.launch.py`, fed 5 frames of the
    clip in a loop at 10 Hz by `vode bag play --loop`; yields the launch log."""
    from vode_ros.bag.kitti_to_bag import convert

    work = tmp_path_factory.mktemp("ros2_cli")
    bag = convert(kitti_dir, work / "clip", progress=False, max_frames=5)["out_path"]
    log = work / "launch.log"
    launch = launch_runner.start({"model_dir": models_dir}, log_path=log)
    assert launch.args[1:4] == ["launch", "vode_ros", "vode.launch.py"], launch.args
    player = subprocess.Popen([sys.executable, "-m", "vode_ros.cli.main", "bag", "play", str(bag), "--loop",
                               "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        def both_up():
            assert launch.poll() is None, f"ros2 launch exited ({launch.returncode}):\n{log.read_text()[-3000:]}"
            names = set(_ros2("node", "list", *SPIN).stdout.split())
            return {"/depth_node", "/odometry_node"} <= names
        _until(both_up, "the launched nodes in `ros2 node list`", 90)
        yield log
    finally:
        launch_runner.stop(player, timeout=10)
        code = launch_runner.stop(launch, timeout=20)
    problem = launch_stop_problem(code, log.read_text())
    assert problem is None, problem


def _sections(info: str) -> dict[str, set[str]]:
    """`ros2 node info` output -> {"Subscribers": {topic, ...}, "Publishers": ..., "Service Servers": ...}."""
    out: dict[str, set[str]] = {}
    current = None
    for line in info.splitlines():
        if re.match(r"^  \S.*:$", line):
            current = line.strip().rstrip(":")
            out[current] = set()
        elif current and line.startswith("    ") and ":" in line:
            out[current].add(line.strip().split(":")[0])
    return out


@pytest.mark.parametrize("node", ["depth_node", "odometry_node"])
def test_ros2_node_info_shows_the_readme_topics_and_lifecycle_services(launched, node):
    res = _ros2_until("node", "info", f"/{node}", *SPIN, ok=lambda r: r.returncode == 0 and "Publishers:" in r.stdout)
    sections = _sections(res.stdout)
    assert SUBSCRIBES[node] <= sections["Subscribers"], sections["Subscribers"]
    assert PUBLISHES[node] <= sections["Publishers"], sections["Publishers"]
    # A managed (lifecycle) node with parameters: the services `ros2 lifecycle` and `ros2 param` use.
    assert {f"/{node}/change_state", f"/{node}/get_state", f"/{node}/describe_parameters",
            f"/{node}/set_parameters"} <= sections["Service Servers"], sections["Service Servers"]


def test_ros2_param_describes_every_number_with_its_range_and_refuses_one_outside(launched):
    listed = _ros2_until("param", "list", "/depth_node", "--param-type", *SPIN, ok=lambda r: "(type: " in r.stdout)
    types = dict(re.findall(r"^\s+(\w+) \(type: ([\w ]+)\)$", listed.stdout, re.M))
    numbers = sorted(name for name, kind in types.items() if kind in ("integer", "double"))
    assert {"threads", "stereo_slop"} <= set(numbers), types
    described = _ros2_until("param", "describe", "/depth_node", *numbers, *SPIN, ok=lambda r: r.returncode == 0)
    blocks = {b.split("\n", 1)[0].strip(): b for b in described.stdout.split("Parameter name: ")[1:]}
    assert set(blocks) == set(numbers), described.stdout
    for name, block in blocks.items():
        assert re.search(r"Description: \S", block), f"{name} has no description:\n{block}"
        assert "Min value:" in block and "Max value:" in block, f"{name} has no range:\n{block}"
        if types[name] == "integer":
            assert "Step: 1" in block, block

    got = _ros2_until("param", "get", "/depth_node", "mode", *SPIN, ok=lambda r: "value is" in r.stdout)
    assert got.stdout.strip() == "String value is: mono", got.stdout
    # Out of the declared range: rclpy refuses it with the range, before the node's own check.
    refused = _ros2_until("param", "set", "/depth_node", "threads", "1000", *SPIN,
                          ok=lambda r: "Setting parameter" in r.stdout + r.stderr)
    assert "Setting parameter failed" in refused.stdout + refused.stderr, refused.stdout + refused.stderr


def test_ros2_topic_hz_measures_the_depth_output(launched):
    # The bag loops 5 frames at 10 Hz; the depth node publishes one depth image per frame it keeps.
    hz = subprocess.Popen([launch_runner.ros2_executable(), "topic", "hz", "/depth/image", "--window", "20"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    rates: list[float] = []
    printed = []
    deadline = time.monotonic() + 60
    try:
        while len(rates) < 3 and time.monotonic() < deadline:
            ready, _, _ = select.select([hz.stdout], [], [], 1.0)
            if not ready:
                continue
            line = hz.stdout.readline()
            if not line:          # hz exited
                break
            printed.append(line)
            m = re.match(r"average rate: ([\d.]+)", line)
            if m:
                rates.append(float(m.group(1)))
    finally:
        launch_runner.stop(hz, timeout=5)
    assert rates, f"`ros2 topic hz /depth/image` printed no rate: {''.join(printed)[-2000:]}"
    assert 0.5 < rates[-1] < 15.0, rates
