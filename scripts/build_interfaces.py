"""Build the ROS 2 interface packages that PyPI lacks, with rosidl + colcon from the wheels.

- tf2_msgs (TFMessage, the type of /tf and /tf_static): not published as a wheel.
- vode_ros_msgs (this repo's msg/): the package's own interfaces.

Each is skipped when already importable (e.g. a sourced ROS 2 install). The result lands in
VENV/ros_ws/install and is put on the venv's paths by a .pth file (see write_env_pth), so
`import tf2_msgs.msg` works in the venv's Python with no sourcing. The same file puts
VENV/ros_ws/install/vode_ros (scripts/register_package.py) on AMENT_PREFIX_PATH.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

PACKAGES = {"tf2_msgs": "scripts/ros_fallback/tf2_msgs", "vode_ros_msgs": "msg"}


def fix_wheel_cmake_paths(prefix: Path) -> None:
    """The wheels' CMake exports name the wheel build host's Python/numpy include dirs."""
    import numpy

    py_inc = sysconfig.get_paths()["include"]
    np_inc = numpy.get_include()
    for f in (prefix / "share").glob("*/cmake/*.cmake"):
        text = f.read_text()
        new = re.sub(r"/opt/python/cp\d+-cp\d+/include/python3\.\d+", py_inc, text)
        new = re.sub(r"/opt/python/cp\d+-cp\d+/lib/python3\.\d+/site-packages/numpy/(_core|core)/include", np_inc, new)
        if new != text:
            f.write_text(new)


def write_env_pth(venv: Path, install: Path) -> None:
    """Put the built packages on the venv's paths at interpreter start.

    The file sorts before ros_wheels_bootstrapper.pth, which re-executes Python with
    LD_LIBRARY_PATH extended: our lib dir is added to the environment first, so it survives.
    """
    site = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    pyver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    lines = []
    for pkg in PACKAGES:
        pkg_site = install / pkg / "lib" / pyver / "site-packages"
        if pkg_site.is_dir():
            lines.append(str(pkg_site))
    libs = [str(install / pkg / "lib") for pkg in PACKAGES if (install / pkg / "lib").is_dir()]
    # vode_ros itself: its ament index entry, made by scripts/register_package.py (`ros2 launch vode_ros ...`).
    prefixes = [str(install / pkg) for pkg in (*PACKAGES, "vode_ros") if (install / pkg).is_dir()] + [str(venv)]
    module = f"""\"\"\"Written by vode_ros scripts/build_interfaces.py: paths of the locally built ROS interfaces.\"\"\"
import os

LIBS = {libs!r}
PREFIXES = {prefixes!r}


def _prepend(var, items):
    cur = [x for x in os.environ.get(var, "").split(os.pathsep) if x]
    os.environ[var] = os.pathsep.join(items + [x for x in cur if x not in items])


if not os.environ.get("_ROS_WHEELS_BOOTSTRAP_COMPLETE"):
    _prepend("LD_LIBRARY_PATH", LIBS)
_prepend("AMENT_PREFIX_PATH", PREFIXES)
"""
    (site / "_vode_ros_env.py").write_text(module)
    code = "import _vode_ros_env"
    (site / "00_vode_ros_env.pth").write_text("\n".join(lines + [code]) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--venv", type=Path, required=True)
    ap.add_argument("--repo", type=Path, required=True)
    args = ap.parse_args()
    venv, repo = args.venv.resolve(), args.repo.resolve()
    ws = venv / "ros_ws"
    install = ws / "install"
    # Rebuild vode_ros_msgs whenever asked (its .msg may have changed); tf2_msgs only once.
    todo = [p for p in PACKAGES if p == "vode_ros_msgs" or importlib.util.find_spec(p) is None]
    if not todo:
        return 0
    src = ws / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for pkg in todo:
        dst = src / pkg
        if pkg == "vode_ros_msgs":
            # Mirror the repo layout msg/ inside a parent folder so the CMake base-path trick holds.
            (dst / "msg").parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(repo / PACKAGES[pkg], dst / "msg")
            shutil.move(str(dst / "msg" / "CMakeLists.txt"), dst / "CMakeLists.txt")
            shutil.move(str(dst / "msg" / "package.xml"), dst / "package.xml")
            # Here CMakeLists.txt sits beside msg/, so the base path is its own folder, not the parent.
            cm = (dst / "CMakeLists.txt").read_text()
            based = cm.replace('"${CMAKE_CURRENT_SOURCE_DIR}/.."', '"${CMAKE_CURRENT_SOURCE_DIR}"')
            based = based.replace('"${VODE_MSG_DIR}/.."', '"${VODE_MSG_DIR}"')
            if based == cm:
                raise SystemExit("build_interfaces.py: msg/CMakeLists.txt no longer sets its interface base path "
                                 "as '<dir>/..'; update the base-path rewrite here to match it")
            (dst / "CMakeLists.txt").write_text(based)
        else:
            shutil.copytree(repo / PACKAGES[pkg], dst)
    fix_wheel_cmake_paths(venv)
    env = dict(os.environ)
    env["AMENT_PREFIX_PATH"] = str(venv)
    env["CMAKE_PREFIX_PATH"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    env["PYTHON_EXECUTABLE"] = str(venv / "bin" / "python")
    cmd = [
        str(venv / "bin" / "colcon"), "build", "--base-paths", str(src), "--build-base", str(ws / "build"),
        "--install-base", str(install), "--event-handlers", "console_cohesion-",
        "--cmake-args", f"-DPython3_EXECUTABLE={venv / 'bin' / 'python'}", "-DBUILD_TESTING=OFF",
    ]
    print(f"[setup] building ROS interfaces {', '.join(todo)} with rosidl + colcon", flush=True)
    log = ws / "build.log"
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, cwd=ws, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        print(log.read_text()[-6000:], file=sys.stderr)
        print(f"[setup] interface build failed; full log: {log}", file=sys.stderr)
        return proc.returncode
    write_env_pth(venv, install)
    return 0


if __name__ == "__main__":
    sys.exit(main())
