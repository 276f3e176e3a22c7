"""Start launch/vode.launch.py as a child process and stop it cleanly (SIGINT, like Ctrl-C).

    from vode_ros.tools import launch_runner
    proc = launch_runner.start({"model_dir": "/models", "use_sim_time": "true"}, log_path=Path("nodes.log"))
    ...
    launch_runner.stop(proc)

How the file is run, first that works:

1. ``ros2 launch vode_ros vode.launch.py k:=v ...`` where the ros2 CLI has the launch verb
   (a sourced ROS 2, or the venv's own ros2 beside this Python);
2. ``python -m vode_ros.tools.launch_runner <file> k:=v ...`` where the ``launch`` and
   ``launch_ros`` packages are importable: the same LaunchService that ``ros2 launch`` uses.

Either way the launch file's nodes are found through the ament index, so vode_ros must be in it
(scripts/setup.sh registers it; a colcon build does too): where it is not, :func:`start`
raises PackageNotRegistered. Neither way exists with the ROS 2 wheels from PyPI alone (launch,
launch_ros, ros2cli and ros2launch are not published there); then :func:`start` raises
LaunchUnavailable. Both messages point at ``vode run``, which starts the same nodes from the
same parameter file.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

PACKAGE = "vode_ros"
LAUNCH_FILE = "vode.launch.py"


class LaunchUnavailable(RuntimeError):
    """Neither `ros2 launch` nor the launch Python packages are installed."""


class PackageNotRegistered(LaunchUnavailable):
    """Launch is installed, but vode_ros is not in the ament index, so its nodes cannot be found."""


def _importable(module: str, attribute: str | None = None) -> bool:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return False
    # A folder named `launch` on sys.path (e.g. a test folder) imports as an empty namespace
    # package: only the real package has LaunchService.
    return attribute is None or hasattr(mod, attribute)


def launch_importable() -> bool:
    """True where `launch` (with LaunchService) and `launch_ros` can be imported."""
    return _importable("launch", "LaunchService") and _importable("launch_ros.actions", "Node")


def ros2_executable() -> str | None:
    """The `ros2` CLI: the one beside this Python (a venv's, found without activating it), else PATH's."""
    beside = Path(sys.executable).parent / "ros2"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("ros2")


def ros2_launch_available() -> bool:
    """True where the `ros2` CLI exists and has the launch verb (ros2launch)."""
    return ros2_executable() is not None and importlib.util.find_spec("ros2launch") is not None


def package_prefix() -> Path | None:
    """The install prefix of vode_ros in the ament index (AMENT_PREFIX_PATH), or None."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    except ImportError:
        return None
    try:
        return Path(get_package_prefix(PACKAGE))
    except (PackageNotFoundError, ValueError, OSError):   # OSError: AMENT_PREFIX_PATH unset
        return None


def launch_file() -> Path:
    """The installed (or source tree) launch/vode.launch.py."""
    from vode_ros.core.resources import resource_path

    return resource_path("launch", LAUNCH_FILE)


def format_arguments(arguments: Mapping[str, object]) -> list[str]:
    """{'use_sim_time': True, 'bag': '/b'} -> ['use_sim_time:=true', 'bag:=/b']."""
    out = []
    for key, value in arguments.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        out.append(f"{key}:={value}")
    return out


def launch_command(arguments: Mapping[str, object] | None = None, via: str = "auto") -> list[str]:
    """The command line that runs the launch file with `arguments` (via: auto | ros2 | python)."""
    args = format_arguments(arguments or {})
    use_ros2 = via == "ros2" or (via == "auto" and ros2_launch_available())
    use_python = not use_ros2 and (via == "python" or (via == "auto" and launch_importable()))
    if not (use_ros2 or use_python):
        raise LaunchUnavailable(
            "cannot run launch/vode.launch.py here: no `ros2 launch` (source a ROS 2 install) and the "
            "`launch` / `launch_ros` Python packages are not importable (they are not published with the "
            "ROS 2 wheels on PyPI). Use `vode run` instead: it starts the same nodes from the same "
            "config/vode.yaml")
    if package_prefix() is None:
        # launch_ros finds the node executables through the ament index: without the package in
        # it, the launch would start and fail at once ("package 'vode_ros' not found").
        raise PackageNotRegistered(
            f"ROS 2 launch is installed, but the package {PACKAGE} is not in the ament index "
            f"(AMENT_PREFIX_PATH={os.environ.get('AMENT_PREFIX_PATH', '')!r}). Run scripts/setup.sh "
            "(it registers the package in the venv), or on a ROS 2 install `colcon build --base-paths . msg` "
            "and source install/setup.bash; `vode run` starts the same nodes meanwhile")
    if use_ros2:
        # The package's launch file by name, as a user types it.
        return [ros2_executable() or "ros2", "launch", PACKAGE, LAUNCH_FILE, *args]
    return [sys.executable, "-m", "vode_ros.tools.launch_runner", str(launch_file()), *args]


def _default_sigint() -> None:
    """In the child, before exec: SIGINT back to its default action.

    A program started in the background by a non-interactive shell (a CI step, `cmd &` in a
    script) inherits SIGINT ignored, and an ignored signal stays ignored across exec: :func:`stop`'s
    SIGINT would then not reach launch, which would be killed instead of stopping its nodes.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(arguments: Mapping[str, object] | None = None, log_path: Path | None = None,
          env: Mapping[str, str] | None = None, via: str = "auto") -> subprocess.Popen:
    """Start the launch file in its own process group (stop it with :func:`stop`).

    Output goes to `log_path` (or is inherited when None).
    """
    cmd = launch_command(arguments, via)
    out = open(log_path, "w") if log_path is not None else None  # noqa: SIM115 (the child owns it)
    try:
        return subprocess.Popen(cmd, env=dict(env) if env is not None else None, stdout=out,
                                stderr=subprocess.STDOUT if out is not None else None, start_new_session=True,
                                preexec_fn=_default_sigint)
    finally:
        if out is not None:
            out.close()   # the child has its own copy of the descriptor


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGINT to the launch process group (launch then stops its nodes), escalate if it hangs.

    Returns the exit status. SIGINT goes to the whole group, as a terminal's Ctrl-C does, so
    the nodes see it even if the launch process itself has gone.
    """
    if proc.poll() is not None:
        return proc.returncode
    for sig, wait_s in ((signal.SIGINT, timeout), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            return proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


def run_launch_file(path: str | Path, launch_arguments: list[str], debug: bool = False) -> int:
    """What `ros2 launch <file> k:=v ...` does: one LaunchService, in this process."""
    import launch
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import AnyLaunchDescriptionSource

    pairs = []
    for arg in launch_arguments:
        key, sep, value = arg.partition(":=")
        if not sep or not key:
            raise ValueError(f"launch argument '{arg}' is not of the form name:=value")
        pairs.append((key, value))
    service = launch.LaunchService(argv=launch_arguments, noninteractive=True, debug=debug)
    service.include_launch_description(launch.LaunchDescription([
        IncludeLaunchDescription(AnyLaunchDescriptionSource(str(path)), launch_arguments=pairs)]))
    return service.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vode_ros.tools.launch_runner",
        description="Run a ROS 2 launch file with LaunchService (for machines without `ros2 launch`).")
    parser.add_argument("launch_file", nargs="?", default=None, help=f"launch file (default: {LAUNCH_FILE})")
    parser.add_argument("arguments", nargs="*", metavar="name:=value", help="launch arguments")
    parser.add_argument("--debug", action="store_true", help="launch's debug output")
    args = parser.parse_args(argv)
    if args.launch_file and ":=" in args.launch_file:   # arguments only: the default file
        args.arguments.insert(0, args.launch_file)
        args.launch_file = None
    path = Path(args.launch_file) if args.launch_file else launch_file()
    if not path.is_file():
        print(f"launch_runner: error: {path}: no such launch file", file=sys.stderr)
        return 2
    if not launch_importable():
        print("launch_runner: error: the `launch` and `launch_ros` Python packages are not importable "
              "(they are not published with the ROS 2 wheels on PyPI). Source a ROS 2 install, or use "
              "`vode run`, which starts the same nodes", file=sys.stderr)
        return 2
    try:
        return int(run_launch_file(path, args.arguments, args.debug) or 0)
    except ValueError as exc:
        print(f"launch_runner: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
