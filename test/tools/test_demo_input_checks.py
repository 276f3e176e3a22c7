"""`vode demo` keeps the previous report when its new input is bad (checked before anything is deleted)."""
from __future__ import annotations

import subprocess
import sys


def test_bad_input_keeps_the_previous_report(tmp_path):
    """`vode demo` on a bad folder with a previous report in --out | exit 2 naming the problem; the previous
    report.json and plots stay
    """
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.json").write_text("{}")
    (out / "trajectory.png").write_bytes(b"png")
    proc = subprocess.run([sys.executable, "-m", "vode_ros.cli.main", "demo", "--data", str(tmp_path / "nothing"),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no such folder" in proc.stderr, proc.stderr
    assert (out / "report.json").read_text() == "{}" and (out / "trajectory.png").is_file()
