"""`vode compare` end to end on a tiny split: two methods (stereo sfmlearner, two-stage mono lkvo),
2 steps per stage at 128x64, scored on the held-out sequence; a second invocation with --resume
skips both; one without --resume refuses to mix with the earlier compare."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compare_helpers import make_split

REPO = Path(__file__).resolve().parents[2]


def _vode(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vode_ros.cli.main", "compare", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_compare_tiny_split_then_resume(tmp_path):
    data, splits = make_split(tmp_path)
    out = tmp_path / "out"
    args = ["--split", "tiny", "--splits-dir", str(splits), "--data-root", str(data), "--methods", "sfmlearner,lkvo",
            "--steps", "2", "--width", "128", "--height", "64", "--batch", "2", "--max-frames", "8",
            "--threads", "1", "--out", str(out), "--no-progress"]
    r = _vode(*args)
    assert r.returncode == 0, r.stderr[-3000:]
    md = (out / "compare.md").read_text()
    assert "split tiny, 2 steps per stage" in md
    assert "trained on seq_a, seq_b" in md and "right images: seq_a" in md and "held-out seq_c" in md
    assert "Hardware: " in md and "Total wall time" in md
    report = json.loads((out / "compare.json").read_text())
    assert report["settings"]["train"] == ["seq_a", "seq_b"] and report["settings"]["heldout"] == ["seq_c"]
    assert report["hardware"]["cpu_count"] >= 1 and report["hardware"]["torch_device"]
    rows = {r["method"]: r for r in report["methods"]}
    assert rows["sfmlearner"]["steps"] == [2] and rows["lkvo"]["steps"] == [2, 2]
    assert rows["sfmlearner"]["train_folders"] == ["seq_a"] and rows["lkvo"]["train_folders"] == ["seq_a", "seq_b"]
    for row in rows.values():
        (h,) = row["heldout"]
        assert h["sequence"] == "seq_c" and h["abs_rel"] > 0 and h["constant_abs_rel"] > 0 and h["ate5_mean"] > 0
        assert (Path(out) / row["method"] / "onnx" / "depth.onnx").is_file()
    assert "metric_abs_rel" in rows["sfmlearner"]["heldout"][0] and "metric_abs_rel" not in rows["lkvo"]["heldout"][0]
    assert "| sfmlearner | 1 × 2 | seq_c |" in md and "| lkvo | 2 × 2 | seq_c |" in md
    assert (out / "compare.png").stat().st_size > 10_000        # the figure of the table

    again = _vode(*args, "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "sfmlearner: finished earlier, skipped" in again.stderr and "lkvo: finished earlier, skipped" in again.stderr
    assert "step 1/2" not in again.stdout
    assert "| lkvo | 2 × 2 | seq_c |" in (out / "compare.md").read_text()

    fresh = _vode(*args)
    assert fresh.returncode == 2 and "--resume" in fresh.stderr


def test_missing_split_file_is_one_line(tmp_path):
    r = _vode("--split", "nosuch", "--splits-dir", str(tmp_path), "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "nosuch_train.txt not found" in r.stderr
