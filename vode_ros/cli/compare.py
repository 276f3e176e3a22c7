"""`vode compare`: every method trained on a split's training sequences for the same number of
steps per stage, scored on its held-out sequences -> Markdown + JSON (vode_ros/tools/compare.py)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vode_ros.cli.output_paths import declare_outputs

def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("compare", help="train every method on a split, score it on the held-out sequences")
    p.add_argument("--split", default="driving",
                   help="split NAME: config/splits/NAME_train.txt + NAME_heldout.txt (default: driving)")
    p.add_argument("--splits-dir", type=Path, default=None, help="folder of the split files (default: config/splits)")
    p.add_argument("--data-root", type=Path, default=None,
                   help="folder holding the split's sequences (default: data/, else ../shared/data of the repo)")
    p.add_argument("--methods", default=None, help="comma list (default: all methods)")
    p.add_argument("--steps", type=int, default=2000, help="steps per training stage (two-stage methods: each)")
    p.add_argument("--width", type=int, default=416)
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--max-frames", type=int, default=0,
                   help="use at most this many frames of every sequence (0: all; for quick trials)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads for training every method (0: the configs' own, 2)")
    p.add_argument("--out", type=Path, default=Path("reports/compare"))
    p.add_argument("--resume", action="store_true",
                   help="continue the compare in --out: skip finished methods, resume a stage from its checkpoint")
    p.add_argument("--no-progress", action="store_true", help="plain log lines instead of progress bars")
    p.set_defaults(func=run)
    declare_outputs(p, ("out", "--out", True))
    return p


def run(args) -> int:
    from vode_ros.tools.compare import METHODS, SPLITS, CompareError, CompareStopped, Settings, compare, table

    for name in ("steps", "width", "height", "batch"):
        if getattr(args, name) < 1:
            print(f"vode compare: --{name} must be at least 1", file=sys.stderr)
            return 2
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip()) if args.methods else METHODS
    try:
        settings = Settings.from_split(args.split, args.data_root, args.splits_dir or SPLITS, steps=args.steps,
                                       width=args.width, height=args.height, batch=args.batch,
                                       max_frames=max(0, args.max_frames), threads=max(0, args.threads))
        report = compare(settings, args.out, methods, resume=args.resume,
                         progress=False if args.no_progress else None)
    except CompareError as exc:
        print(f"vode compare: {exc}", file=sys.stderr)
        return 2
    except CompareStopped as exc:
        print(f"vode compare: {exc}; the same command with --resume continues", file=sys.stderr)
        return 130
    print(table(report["methods"]))
    print(f"\n{args.out / 'compare.md'}, {args.out / 'compare.json'}")
    return 0 if all("error" not in r for r in report["methods"]) else 1
