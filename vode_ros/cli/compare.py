"""`vode compare`: all methods, same short budget, synthetic set + KITTI clip -> Markdown + JSON."""
from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("compare", help="train every method briefly and tabulate depth/pose accuracy")
    p.add_argument("--data", type=Path, nargs="*", default=None,
                   help="KITTI-layout folders (default: a new synthetic sequence and the shipped KITTI clip)")
    p.add_argument("--methods", default=None, help="comma list (default: all with a config)")
    p.add_argument("--steps", type=int, default=100, help="steps per stage")
    p.add_argument("--width", type=int, default=208)
    p.add_argument("--height", type=int, default=64)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--out", type=Path, default=Path("reports/compare"))
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from vode_ros.core.resources import demo_clip
    from vode_ros.tools.compare import METHODS, compare, to_markdown
    from vode_training.data.synthetic import write_kitti_layout

    data = args.data
    if not data:
        synth = args.out / "synthetic"
        if not (synth / "calib.txt").is_file():
            write_kitti_layout(synth)
        data = [synth, demo_clip()]
    methods = tuple(m.strip() for m in args.methods.split(",")) if args.methods else METHODS
    rows = compare(data, args.out, methods, args.steps, args.width, args.height, args.batch)
    print(to_markdown(rows))
    print(f"\n{args.out / 'compare.md'}, {args.out / 'compare.json'}")
    return 0 if all("error" not in r for r in rows) else 1
