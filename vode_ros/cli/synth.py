"""`vode synth`: write a synthetic textured street sequence with exact ground truth.

    vode synth OUT [--frames N] [--width W --height H] [--seed S] [--color gray|rgb] [--baseline B]

OUT gets the KITTI odometry layout (image_0/ + image_1/ for grey, image_2/ + image_3/ for
RGB, calib.txt, times.txt, poses.txt) plus depth/NNNNNN.npy (left z-depth in metres, 0 = sky)
and synthetic.json. Numpy ray casting (vode_training.data.synthetic); no torch.
Also runs as a module: ``python -m vode_ros.cli.synth OUT``.
"""
from __future__ import annotations

import argparse
import sys
import time

from vode_ros.cli.arg_types import number
from vode_ros.cli.output_paths import declare_outputs


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "synth", help="write a synthetic KITTI-layout sequence with exact depth and poses",
        description="Ray-cast textured street scenes (ground, walls, boxes) along a forward "
                    "trajectory with small turns; deterministic given --seed.")
    p.add_argument("out", metavar="OUT", help="output folder (created)")
    p.add_argument("--frames", type=number(int, low=1), default=30)
    p.add_argument("--width", type=int, default=416)
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--color", choices=("gray", "rgb"), default="gray")
    p.add_argument("--baseline", type=number(float, above=0.0), default=0.54, help="stereo baseline in metres")
    p.add_argument("--speed", type=number(float, low=0.0), default=1.0, help="metres per frame")
    p.add_argument("--supersample", type=int, default=1, help="s x s rays per pixel (anti-aliased edges)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    declare_outputs(p, ("out", "OUT", True))
    return p


def run(args) -> int:
    from pathlib import Path

    from vode_training.data.synthetic import SynthConfig, write_kitti_layout

    if args.frames < 1 or args.width < 8 or args.height < 8 or args.supersample < 1:
        print("vode synth: need --frames >= 1, --width/--height >= 8 and --supersample >= 1", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"vode synth: {out} exists and is not a folder", file=sys.stderr)
        return 2
    cfg = SynthConfig(frames=args.frames, width=args.width, height=args.height, seed=args.seed,
                      color=args.color, baseline=args.baseline, speed=args.speed,
                      supersample=args.supersample)
    t0 = time.perf_counter()
    write_kitti_layout(out, cfg=cfg, progress=False if args.no_progress else None)
    print(f"vode synth: {args.frames} frames {args.width}x{args.height} {args.color} (seed {args.seed}) "
          f"-> {out} in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    from vode_ros.cli.main import run_subcommand

    sys.exit(run_subcommand("synth"))
