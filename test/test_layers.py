"""The layers point one way (docs/architecture.md):

    vode_ros.core  <-  vode_ros.runtime  <-  vode_ros.nodes  <-  vode_ros.tools, vode_ros.cli
    vode_ros.core  <-  vode_training     <-  vode_ros.tools, vode_ros.cli

Checked on the source (every import statement, also the ones inside functions) and by importing
the run time with torch made unimportable.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each layer may import from this project (prefixes of module names).
ALLOWED = {
    "vode_ros/core": ("vode_ros.core",),
    "vode_ros/runtime": ("vode_ros.core", "vode_ros.runtime"),
    "vode_ros/bag": ("vode_ros.core", "vode_ros.bag"),
    "vode_ros/nodes": ("vode_ros.core", "vode_ros.runtime", "vode_ros.nodes", "vode_ros.bag", "vode_ros_msgs"),
    "training": ("vode_ros.core", "vode_training"),
}
# Third-party packages a layer must not pull in.
FORBIDDEN_THIRD_PARTY = {
    "vode_ros/core": ("torch", "rclpy", "onnxruntime"),
    "vode_ros/runtime": ("torch", "rclpy"),
    "vode_ros/nodes": ("torch",),
    "training": ("rclpy",),
}
# Known upward edges, each lazy (inside a function) and named here with its reason.
EXCEPTIONS = {
    # Online adaptation is a tool (it needs torch); the depth node loads it only with adapt:=true.
    ("vode_ros/nodes/adaptation_hook.py", "vode_ros.tools.adaptation"),
    # Training on a rosbag reads it with the bag reader (rosbags, no ROS); it moves into the core
    # with the bag package's next restructuring.
    ("training/data/rosbag_frames.py", "vode_ros.bag.reader"),
}


def _imports(path: Path) -> list[str]:
    """Absolute module names imported anywhere in the file (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1])
    if package and package[0] == "training":
        package[0] = "vode_training"
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names.append(".".join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module or "")
    return names


def _layer_files(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_point_down(layer):
    bad = []
    for path in _layer_files(layer):
        rel = str(path.relative_to(ROOT))
        for name in _imports(path):
            own = name.split(".")[0] in ("vode_ros", "vode_training", "vode_ros_msgs")
            if own and not name.startswith(ALLOWED[layer]) and (rel, name) not in EXCEPTIONS:
                bad.append(f"{rel}: {name}")
            if name.split(".")[0] in FORBIDDEN_THIRD_PARTY.get(layer, ()):
                bad.append(f"{rel}: {name}")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_exceptions_are_still_needed():
    """An exception that no file uses any more must be dropped from the list."""
    for rel, name in EXCEPTIONS:
        assert name in _imports(ROOT / rel), f"{rel} no longer imports {name}: drop the exception"


_BLOCK_TORCH = """
import importlib, pkgutil, sys
sys.modules["torch"] = None          # `import torch` now raises ImportError
import vode_ros.core, vode_ros.runtime, vode_ros.nodes
for pkg in (vode_ros.core, vode_ros.runtime, vode_ros.nodes):
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(info.name)
assert "vode_training" not in sys.modules
print("imported without torch")
"""


@pytest.mark.ros
def test_run_time_imports_without_torch():
    pytest.importorskip("rclpy")
    res = subprocess.run([sys.executable, "-c", _BLOCK_TORCH], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "imported without torch" in res.stdout
