"""The command line as a clumsy user meets it, black box (`vode` in a subprocess): a bad topic name,
unwritable outputs, a negative rate. Each is refused at once, in one line, before any work starts.

Each test's docstring is a row of docs/reliability.md (scripts/reliability_table.py).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _vode(*args: str, cwd: Path, timeout: float = 60.0) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "vode_ros.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                       timeout=timeout, env=env)
    return r, time.monotonic() - t0


def _one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.ros
def test_a_bad_topic_name_exits_at_once(tmp_path):
    """`vode run --image-topic "bad topic!"`, or the name in the parameter file | exit 2 (1 from the parameter
    file) within seconds, one line naming the bad name, why and a valid example (before: never exited, said the
    nodes "wait unconfigured (autostart false)"); a node whose camera subscription cannot be made fails to start
    """
    r, took = _vode("run", "--image-topic", "bad topic!", cwd=tmp_path)
    line = _one_line(r.stderr)
    assert r.returncode == 2 and took < 20.0, (r.returncode, took, r.stderr)
    assert "--image-topic" in line and "'bad topic!' is not a valid ROS 2 topic name" in line
    assert "e.g. /camera/left/image_raw" in line and "autostart" not in r.stdout + r.stderr
    params = tmp_path / "bad_topic.yaml"
    text = (REPO / "config" / "vode.yaml").read_text()
    params.write_text(text.replace("image_topic: /camera/left/image_raw", 'image_topic: "bad topic!"', 1))
    assert 'image_topic: "bad topic!"' in params.read_text()
    r, took = _vode("run", "--params", str(params), cwd=tmp_path)
    line = _one_line(r.stderr)
    assert r.returncode == 1 and took < 40.0, (r.returncode, took, r.stderr)
    assert "image_topic='bad topic!'" in line and "not a valid ROS 2 topic name" in line
    assert "wait unconfigured" not in r.stdout


@pytest.mark.needs_data
def test_unwritable_outputs_are_refused_before_any_work(tmp_path, kitti_dir):
    """`vode demo --out /sys/x`, `vode demo --out FILE/x`, `vode export --out /sys/x`, `vode train --out /sys/x`,
    `vode eval pose --json /sys/p.json`, `vode bag from-kitti DIR /sys/x` (and every verb's --out, --json, --plots,
    --keep, OUT: test/cli/test_cli_probes.py) | exit 2 at once with one line naming the path and why
    ("/sys is not writable", "FILE is a file"), no traceback; the evaluation is not run first and lost
    """
    blocker = tmp_path / "FILE"
    blocker.write_text("keep me")
    checkpoint = REPO / "models" / "sfmlearner_driving.pt"
    cases = [
        (["demo", "--out", "/sys/vode_x"], "/sys is not writable"),
        (["demo", "--out", str(blocker / "x")], f"{blocker} is a file"),
        (["export", "--checkpoint", str(checkpoint), "--out", "/sys/vode_x"], "/sys is not writable"),
        (["train", "--out", "/sys/vode_x"], "/sys is not writable"),
        (["eval", "pose", "--data", str(kitti_dir), "--json", "/sys/vode_x/p.json"], "/sys is not writable"),
        (["bag", "from-kitti", str(kitti_dir), "/sys/vode_x"], "/sys is not writable"),
    ]
    for argv, expected in cases:
        r, took = _vode(*argv, cwd=tmp_path)
        line = _one_line(r.stderr)
        assert r.returncode == 2 and expected in line and took < 20.0, (argv, r.returncode, took, r.stderr)
        assert "choose a path you can write to" in line
    assert blocker.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["FILE"]


def test_a_negative_playback_rate_is_refused_by_vode_run(tmp_path):
    """`vode run --bag B --rate -1` (or nan) | exit 2 with one line, as `vode bag play --rate -5` (before: played
    as fast as possible)
    """
    for rate in ("-1", "nan"):
        r, _ = _vode("run", "--bag", str(tmp_path), "--rate", rate, cwd=tmp_path)
        assert r.returncode == 2 and "--rate" in r.stderr.strip().splitlines()[-1], r.stderr
        assert "Traceback" not in r.stderr
    r, _ = _vode("bag", "play", str(tmp_path), "--rate", "-5", cwd=tmp_path)
    assert r.returncode == 2 and "--rate must be 0" in r.stderr
