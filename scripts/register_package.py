"""Register the vode_ros package in the ament index, as `colcon build --symlink-install` would.

`ros2 launch vode_ros vode.launch.py` and `ros2 run vode_ros depth_node` find a package through
the ament index on AMENT_PREFIX_PATH. The package itself is pip-installed in editable mode, so
this writes only what an ament_python install adds around the Python code, in its own prefix
(by default VENV/ros_ws/install/vode_ros, beside the interface packages of build_interfaces.py):

    share/ament_index/resource_index/packages/vode_ros    the index marker
    share/vode_ros/package.xml, config/, models/, msg/, data/
                                                          links into the source tree, so edits
                                                          show at once (nothing to go stale)
    share/vode_ros/launch/*.launch.py                     one link per file: `ros2 launch` looks
                                                          for the file with os.walk, which does not
                                                          enter a linked folder (as colcon's
                                                          --symlink-install, a new launch file
                                                          needs a new run: scripts/setup.sh does it)
    lib/vode_ros/<console script>                         executables (depth_node, odometry_node,
                                                          vode) for launch_ros's Node actions
    share/colcon-core/packages/vode_ros, share/vode_ros/package.dsv, hook/
                                                          what colcon's install/setup.bash reads

Then the prefix goes on AMENT_PREFIX_PATH at interpreter start (build_interfaces.write_env_pth).
Idempotent: a second run rewrites the same links and files.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

PACKAGE = "vode_ros"
# share/vode_ros/<name> -> <repo>/<name>: what setup.py's data_files install, as whole folders;
# launch/ is a folder of links to LAUNCH_FILES (see the module's doc).
SHARED = ("package.xml", "config", "models", "msg", "data")
LAUNCH_FILES = "launch/*.launch.py"
# The interpreter start-up (build_interfaces.write_env_pth) puts the prefix on AMENT_PREFIX_PATH;
# this hook does the same for `source .venv/ros_ws/install/setup.bash` (colcon's format).
AMENT_HOOK = "prepend-non-duplicate;AMENT_PREFIX_PATH;\n"

_WRAPPER = """#!{python}
# Console script {name} of the vode_ros package (written by scripts/register_package.py).
import sys

from {module} import {function}

if __name__ == "__main__":
    sys.argv[0] = "{name}"
    sys.exit({function}())
"""


def console_scripts(dist_name: str = PACKAGE) -> dict[str, str]:
    """{script name: 'module:function'} of the installed distribution (setup.py's entry points)."""
    try:
        eps = metadata.distribution(dist_name).entry_points
    except metadata.PackageNotFoundError:
        raise SystemExit(f"register_package.py: the {dist_name} distribution is not installed in {sys.prefix}; "
                         "run scripts/setup.sh (it installs it with pip -e) first") from None
    return {ep.name: ep.value for ep in eps if ep.group == "console_scripts"}


def run_dependencies(package_xml: Path) -> list[str]:
    """exec_depend / depend names of package.xml (colcon orders sourcing by them)."""
    root = ET.parse(package_xml).getroot()
    names = {e.text.strip() for tag in ("exec_depend", "depend", "run_depend") for e in root.iter(tag) if e.text}
    return sorted(names)


def _replace(path: Path) -> None:
    """Remove whatever is at `path` (file, link or folder) so it can be written afresh."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _link(path: Path, target: Path) -> None:
    """A relative symlink `path` -> `target` (survives moving the checkout with its .venv)."""
    rel = os.path.relpath(target, path.parent)
    if path.is_symlink() and os.readlink(path) == rel:
        return
    _replace(path)
    path.symlink_to(rel, target_is_directory=target.is_dir())


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    if path.is_symlink() or path.is_dir():
        _replace(path)
    if not (path.is_file() and path.read_text() == text):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    path.chmod(mode)


def register(prefix: Path, repo: Path, python: Path, scripts: dict[str, str]) -> list[Path]:
    """Write the package's ament index entry, share/ and lib/ under `prefix`; returns what it wrote."""
    missing = [name for name in SHARED if not (repo / name).exists()]
    if missing:
        raise SystemExit(f"register_package.py: {repo} lacks {', '.join(missing)}: is --repo the vode_ros checkout?")
    share, lib = prefix / "share" / PACKAGE, prefix / "lib" / PACKAGE
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    for folder in (share / "hook", lib, index, prefix / "share" / "colcon-core" / "packages"):
        folder.mkdir(parents=True, exist_ok=True)
    written = []
    # The marker's content is resource/vode_ros's (empty), as setup.py installs it.
    _write(index / PACKAGE, (repo / "resource" / PACKAGE).read_text())
    written.append(index / PACKAGE)
    for name in SHARED:
        _link(share / name, repo / name)
        written.append(share / name)
    launch_dir = share / "launch"
    if launch_dir.is_symlink() or launch_dir.is_file():
        _replace(launch_dir)
    launch_dir.mkdir(exist_ok=True)
    launch_files = {f.name: f for f in repo.glob(LAUNCH_FILES)}
    for name, source in sorted(launch_files.items()):
        _link(launch_dir / name, source)
        written.append(launch_dir / name)
    for stale in launch_dir.iterdir():    # a launch file the source tree no longer has
        if stale.name not in launch_files:
            _replace(stale)
    wanted = set()
    for name, entry in sorted(scripts.items()):
        module, _, function = entry.partition(":")
        _write(lib / name, _WRAPPER.format(python=python, name=name, module=module, function=function), 0o755)
        wanted.add(name)
        written.append(lib / name)
    for stale in lib.iterdir():           # a console script setup.py no longer has
        if stale.name not in wanted:
            _replace(stale)
    _write(share / "hook" / "ament_prefix_path.dsv", AMENT_HOOK)
    _write(share / "package.dsv", f"source;share/{PACKAGE}/hook/ament_prefix_path.dsv\n")
    _write(prefix / "share" / "colcon-core" / "packages" / PACKAGE, ":".join(run_dependencies(repo / "package.xml")))
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--venv", type=Path, required=True, help="the venv that holds the editable vode_ros install")
    ap.add_argument("--repo", type=Path, required=True, help="the vode_ros checkout")
    ap.add_argument("--prefix", type=Path, default=None,
                    help=f"install prefix (default: VENV/ros_ws/install/{PACKAGE})")
    ap.add_argument("--no-env", action="store_true",
                    help="do not put the prefix on the venv's AMENT_PREFIX_PATH (for a prefix of your own)")
    args = ap.parse_args(argv)
    venv, repo = args.venv.resolve(), args.repo.resolve()
    install = venv / "ros_ws" / "install"
    prefix = (args.prefix or install / PACKAGE).resolve()
    register(prefix, repo, venv / "bin" / "python", console_scripts())
    if not args.no_env:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from build_interfaces import write_env_pth

        write_env_pth(venv, install)
    print(f"[setup] registered {PACKAGE} in the ament index: {prefix}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
