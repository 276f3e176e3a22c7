"""scripts/register_package.py: vode_ros in the ament index as an ament_python install lays it out,
with links into the source tree, so `ros2 launch vode_ros vode.launch.py` finds the package, its
launch file, its parameter file and its node executables after set-up with no colcon step."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vode_ros.tools import launch_runner

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "register_package.py"
NODES = ("depth_node", "odometry_node")


def _register(prefix: Path) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, str(SCRIPT), "--venv", sys.prefix, "--repo", str(REPO),
                          "--prefix", str(prefix), "--no-env"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def _tree(prefix: Path) -> dict[str, str]:
    """Every path under `prefix` -> what it is (link target, or file content)."""
    out = {}
    for root, dirs, files in os.walk(prefix):
        for name in dirs + files:
            p = Path(root) / name
            out[str(p.relative_to(prefix))] = os.readlink(p) if p.is_symlink() else \
                ("dir" if p.is_dir() else p.read_text())
    return out


@pytest.fixture(scope="module")
def prefix(tmp_path_factory) -> Path:
    prefix = tmp_path_factory.mktemp("install") / "vode_ros"
    _register(prefix)
    return prefix


def _find_launch_file_as_ros2_launch_does(share: Path, name: str) -> list[str]:
    # ros2launch.api.get_share_file_path_from_package walks share/<pkg> with os.walk, which does
    # not enter linked folders: the launch file must be reachable that way.
    return [os.path.join(root, f) for root, _, files in os.walk(share) for f in files if f == name]


def test_ament_index_finds_the_package_its_files_and_executables(prefix, monkeypatch):
    from ament_index_python.packages import get_package_prefix, get_package_share_directory

    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))
    assert Path(get_package_prefix("vode_ros")) == prefix
    share = Path(get_package_share_directory("vode_ros"))
    # The installed files are the source tree's (links): an edit shows at once, nothing goes stale.
    for rel in ("package.xml", "launch/vode.launch.py", "config/vode.yaml", "config/vode.rviz", "models/depth.onnx",
                "models/pose.onnx", "msg/VodeStatus.msg", "data/kitti_odometry_06_0000-0050/calib.txt"):
        assert (share / rel).resolve() == (REPO / rel).resolve(), rel
    assert _find_launch_file_as_ros2_launch_does(share, "vode.launch.py") == [str(share / "launch" / "vode.launch.py")]
    if importlib.util.find_spec("ros2launch") is not None:   # the real lookup, where ros2 launch is installed
        from ros2launch.api import get_share_file_path_from_package

        found = get_share_file_path_from_package(package_name="vode_ros", file_name="vode.launch.py")
        assert Path(found).resolve() == (REPO / "launch" / "vode.launch.py").resolve()
    for exe in (*NODES, "vode"):                                 # setup.py's console scripts, where colcon puts them
        path = prefix / "lib" / "vode_ros" / exe
        assert path.is_file() and os.access(path, os.X_OK), exe
        assert path.read_text().startswith(f"#!{Path(sys.prefix).resolve()}/bin/python\n"), exe


def test_colcon_setup_scripts_see_the_package(prefix):
    # `source <install>/setup.bash` (colcon's scripts) reads these: the package, its run
    # dependencies, and a hook putting the prefix on AMENT_PREFIX_PATH.
    deps = (prefix / "share" / "colcon-core" / "packages" / "vode_ros").read_text().split(":")
    assert {"rclpy", "vode_ros_msgs", "tf2_msgs"} <= set(deps)
    assert (prefix / "share" / "vode_ros" / "package.dsv").read_text() == \
        "source;share/vode_ros/hook/ament_prefix_path.dsv\n"
    assert (prefix / "share" / "vode_ros" / "hook" / "ament_prefix_path.dsv").read_text() == \
        "prepend-non-duplicate;AMENT_PREFIX_PATH;\n"


def test_the_node_executables_run(prefix):
    res = subprocess.run([str(prefix / "lib" / "vode_ros" / "vode"), "--help"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "vode run" in res.stdout


def test_registering_again_changes_nothing_and_repairs_what_is_stale(prefix):
    before = _tree(prefix)
    _register(prefix)
    assert _tree(prefix) == before
    share, lib = prefix / "share" / "vode_ros", prefix / "lib" / "vode_ros"
    (share / "config").unlink()
    (share / "config").mkdir()                                  # a copy where a link belongs
    (share / "launch" / "gone.launch.py").symlink_to("../nowhere.launch.py")   # a launch file since removed
    (lib / "old_node").write_text("#!/bin/sh\n")               # a console script since removed
    (lib / "depth_node").write_text("stale")
    _register(prefix)
    assert _tree(prefix) == before
    (share / "launch").rename(share / "launch_old")
    (share / "launch").symlink_to("launch_old")                 # a linked folder: ros2 launch cannot walk it
    _register(prefix)
    shutil.rmtree(share / "launch_old")
    assert _tree(prefix) == before


def test_a_checkout_without_the_shipped_files_is_refused_in_one_line(tmp_path):
    res = subprocess.run([sys.executable, str(SCRIPT), "--venv", sys.prefix, "--repo", str(tmp_path),
                          "--prefix", str(tmp_path / "p"), "--no-env"], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "is --repo the vode_ros checkout?" in res.stderr and "Traceback" not in res.stderr


def test_set_up_registered_the_package_for_this_environment():
    # scripts/setup.sh registers the package (or a colcon build of a ROS 2 install did): the
    # launch file's Node actions find their executables through this.
    prefix = launch_runner.package_prefix()
    assert prefix is not None, (f"vode_ros is not in the ament index (AMENT_PREFIX_PATH="
                                f"{os.environ.get('AMENT_PREFIX_PATH')}): run scripts/setup.sh")
    assert (prefix / "share" / "vode_ros" / "launch" / "vode.launch.py").is_file()
    for exe in NODES:
        assert os.access(prefix / "lib" / "vode_ros" / exe, os.X_OK), exe
