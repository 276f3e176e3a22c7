"""Where the package's shipped files are: config/, models/, data/ (the demo clip), msg/.

One lookup for every module, so the same code works from the source tree, from a colcon
install without ``--symlink-install`` (files under ``<prefix>/share/vode_ros``), from a
wheel (setup.py's ``data_files`` land under ``<sys.prefix>/share/vode_ros``) and from
``pip install --target DIR`` (``DIR/vode_ros`` beside ``DIR/share/vode_ros``).

Order: the source tree (the folder above the ``vode_ros`` package, when it holds package.xml),
then ``share/vode_ros`` in that same folder (``--target``), then the ament index, then
``<sys.prefix>/share/vode_ros``. The first candidate that exists wins.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "vode_ros"
_SOURCE_ROOT = Path(__file__).resolve().parents[2]    # vode_ros/core/resources.py -> repository root


def share_roots() -> list[Path]:
    """Candidate roots, most specific first (duplicates removed)."""
    roots: list[Path] = []
    if (_SOURCE_ROOT / "package.xml").is_file() and (_SOURCE_ROOT / PACKAGE).is_dir():
        roots.append(_SOURCE_ROOT)
    if (_SOURCE_ROOT / "share" / PACKAGE / "package.xml").is_file():
        roots.append(_SOURCE_ROOT / "share" / PACKAGE)
    try:
        from ament_index_python.packages import get_package_share_directory

        roots.append(Path(get_package_share_directory(PACKAGE)))
    except Exception:  # no ament index (pip install), or the package is not in it
        pass
    for prefix in (sys.prefix, os.environ.get("VIRTUAL_ENV", "")):
        if prefix:
            roots.append(Path(prefix) / "share" / PACKAGE)
    unique: list[Path] = []
    for r in roots:
        if r not in unique:
            unique.append(r)
    return unique


def resource_path(*parts: str) -> Path:
    """The first existing ``<root>/<parts...>`` over :func:`share_roots`.

    When none exists the first candidate is returned anyway, so an error message names a
    concrete path (the caller reports the missing file).
    """
    roots = share_roots() or [_SOURCE_ROOT]
    for root in roots:
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
    return roots[0].joinpath(*parts)


def demo_clip() -> Path:
    """The shipped KITTI clip (51 stereo frames of sequence 06)."""
    return resource_path("data", "kitti_odometry_06_0000-0050")
