"""Run `vode demo` N times in a row and count the runs in which every frame came back.

    .venv/bin/python scripts/demo_repeat.py --runs 20 [--out DIR] [--data DIR] [--json FILE]

A run counts as complete when `vode demo` exits 0 and report.json shows as many depth images
and odometry messages as frames in (the demo itself exits non-zero when frames are missing).
Each run uses its own ROS_DOMAIN_ID, so that a late process of one run cannot feed the next.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(i: int, out: Path, data: str | None) -> dict:
    env = dict(os.environ, ROS_DOMAIN_ID=str(150 + i % 50), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    cmd = [sys.executable, "-m", "vode_ros.cli.main", "demo", "--out", str(out)] + (["--data", data] if data else [])
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    row = {"run": i + 1, "exit": proc.returncode, "seconds": round(time.monotonic() - t0, 1)}
    report = out / "report.json"
    if proc.returncode == 0 and report.is_file():
        r = json.loads(report.read_text())
        row.update(frames_in=r["frames_in"], depth=r["frames_out"]["depth"], odometry=r["frames_out"]["odometry"],
                   runner=r.get("runner"))
        row["complete"] = row["depth"] == row["odometry"] == row["frames_in"]
    else:
        row.update(complete=False, error=(proc.stderr.strip().splitlines() or ["?"])[-1])
    if not row["complete"] and (out / "bags" / "nodes.log").is_file():
        # The next run reuses the folder: keep this run's node log for the diagnosis.
        kept = out / f"nodes-run{i + 1}.log"
        kept.write_text((out / "bags" / "nodes.log").read_text())
        row["node_log"] = str(kept)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None, help="report folder reused by every run (default: a temp dir)")
    ap.add_argument("--data", default=None, help="KITTI-layout folder (default: the shipped clip)")
    ap.add_argument("--json", type=Path, default=None, help="write the rows and the count here")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="vode-demo-repeat-"))
    rows = []
    for i in range(args.runs):
        rows.append(one_run(i, out, args.data))
        print(json.dumps(rows[-1]), flush=True)
    complete = sum(r["complete"] for r in rows)
    summary = {"runs": len(rows), "complete": complete, "rows": rows}
    print(f"{complete} of {len(rows)} demo runs received every frame")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if complete == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
