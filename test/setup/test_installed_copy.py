"""The package works from an installed copy, not only from the source tree: `pip install --target`
(non-editable; what a wheel installs, in one folder) and run from another folder with only that
copy importable: `vode --help`, the shipped config / models / demo clip / message definitions
found through vode_ros.core.resources inside the copy, `vode run --help`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow          # pip builds and copies the models and the clip (~15 s)

_PROBE = """
import json, vode_ros, vode_training
from vode_ros.core import resources as r
print(json.dumps({"vode_ros": vode_ros.__file__, "vode_training": vode_training.__file__,
                  "config": str(r.resource_path("config", "vode.yaml")),
                  "train_config": str(r.resource_path("config", "train", "sfmlearner.yaml")),
                  "depth": str(r.resource_path("models", "depth.onnx")),
                  "pose": str(r.resource_path("models", "pose.onnx")),
                  "indoor_depth": str(r.resource_path("models", "indoor", "depth.onnx")),
                  "clip": str(r.demo_clip() / "calib.txt"),
                  "msg": str(r.resource_path("msg", "VodeStatus.msg"))}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory, repo_dir) -> Path:
    target = tmp_path_factory.mktemp("installed") / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-compile", "--target", str(target), str(repo_dir)], check=True, timeout=600,
                   capture_output=True)
    return target


def _run(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("AMENT_PREFIX_PATH", "VIRTUAL_ENV", "PYTHONPATH")}
    env["PYTHONPATH"] = str(installed)                 # the copy first, before the development install
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_installed_copy_finds_its_files_and_runs(installed, tmp_path):
    res = _run(installed, tmp_path, "-c", _PROBE)
    assert res.returncode == 0, res.stderr
    found = json.loads(res.stdout)
    for name, path in found.items():
        assert Path(path).is_relative_to(installed), f"{name} comes from outside the installed copy: {path}"
        assert Path(path).is_file(), f"{name}: {path} missing from the installed copy"

    vode = installed / "bin" / "vode"                  # the console script pip wrote
    assert vode.is_file()
    res = _run(installed, tmp_path, str(vode), "--help")
    assert res.returncode == 0, res.stderr
    assert "vode run" in res.stdout and "vode train" in res.stdout
    res = _run(installed, tmp_path, str(vode), "run", "--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: vode run")
