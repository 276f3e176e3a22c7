"""`vode bench`: speed of DispNet / DepthNet / LiteDepthNet / PoseNet / LitePoseNet in torch, ONNX
Runtime fp32 and int8, the real nodes' end-to-end rate and latency, and int8 accuracy.

    vode bench                                   416x128, 2 threads, table on stdout
    vode bench --models-dir models --json bench.json
    vode bench --quick                           tiny sizes, a smoke test of the whole path
    vode bench soak --minutes 10 --rate 20       long run through the nodes (vode_ros.tools.soak)
    vode bench train                             a training step, SSIM by AvgPool2d vs shifted slices

Also runs as a module: ``python -m vode_ros.cli.bench [options]``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vode_ros.cli.arg_types import number
from vode_ros.cli.output_paths import declare_outputs


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "bench", help="benchmark the nets (torch / ORT fp32 / ORT int8) and the nodes (needs torch)",
        description="Times randomly initialised DispNet (baseline), DepthNet, LiteDepthNet, PoseNet, LitePoseNet "
                    "(and the models in --models-dir) round-robin in one run; ratios are to DispNet in ORT fp32 "
                    "from the same run. Then the depth + odometry nodes end to end, and the int8 accuracy of a "
                    "trained depth model against fp32 and SGBM pseudo-GT.")
    p.add_argument("--width", type=int, default=None, help="net input width (default 416)")
    p.add_argument("--height", type=int, default=None, help="net input height (default 128)")
    p.add_argument("--threads", type=int, default=2, help="ORT intra-op threads and torch threads (default 2)")
    p.add_argument("--seconds", type=float, default=None, help="timing per candidate, split over --rounds (default 3)")
    p.add_argument("--rounds", type=int, default=None, help="round-robin rounds (default 5)")
    p.add_argument("--channels", type=int, default=1, choices=(1, 3),
                   help="input channels of the random nets (default 1: grey, like the KITTI clip)")
    p.add_argument("--models-dir", type=Path, default=None,
                   help="also measure depth.onnx / pose.onnx from here (and use depth.onnx for int8 accuracy)")
    p.add_argument("--depth-model", type=Path, default=None, help="trained depth.onnx for the int8 accuracy check")
    p.add_argument("--data", type=Path, default=None, help="KITTI-layout clip (default: the embedded one)")
    p.add_argument("--calib-frames", type=int, default=None, help="calibration frames for int8 (default 16)")
    p.add_argument("--accuracy-frames", type=int, default=None, help="frames for int8 accuracy (default 0 = all)")
    p.add_argument("--node-seconds", type=float, default=None, help="measurement window of the nodes (default 5)")
    p.add_argument("--pub-hz", type=float, nargs="+", default=None,
                   help="image feed rates of the node runs, 0 = as fast as possible (default: 0 30; --quick: 0)")
    p.add_argument("--no-torch", action="store_true", help="skip the torch rows")
    p.add_argument("--no-int8", action="store_true", help="skip int8 quantisation (rows and accuracy)")
    p.add_argument("--no-int8-baseline", action="store_true",
                   help="do not quantise the DispNet baseline (126 MB; implied by --quick)")
    p.add_argument("--no-nodes", action="store_true", help="skip the node measurement")
    p.add_argument("--keep", type=Path, default=None, help="keep the exported / quantised models in this folder")
    p.add_argument("--json", type=Path, default=None, help="write the full report as JSON")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 128x64, 0.3 s per candidate, 1 round, 1 warm-up call, no int8 DispNet, 2 "
                        "calibration / 4 accuracy frames, 1 s node window, max-rate feed only (explicit "
                        "options still win)")
    p.set_defaults(func=run)
    declare_outputs(p, ("keep", "--keep", True), ("json", "--json", False))
    sub = p.add_subparsers(dest="bench_command", metavar="{soak,train}")
    soak = sub.add_parser("soak", help="the clip in a loop through the nodes (`vode run`) for minutes: drops, "
                                       "latency, memory (vode_ros.tools.soak)",
                          description="Camera, nodes and probe in three processes; frames in/out, drops, latency "
                                      "stamp -> receipt and the nodes' resident memory over time.")
    soak.add_argument("--minutes", type=number(float, above=0.0), default=10.0, help="duration (default 10)")
    soak.add_argument("--rate", type=number(float, above=0.0), default=20.0, help="camera rate in Hz (default 20)")
    soak.add_argument("--data", type=Path, default=None, help="KITTI-layout clip (default: the embedded one)")
    soak.add_argument("--model-dir", type=Path, default=None, help="models for the nodes (default: shipped)")
    soak.add_argument("--size", default=None, metavar="WxH",
                      help="camera resolution to publish, e.g. 416x128 (default: the clip's own, K scaled alike)")
    soak.add_argument("--json", type=Path, default=None, help="write the result as JSON")
    soak.set_defaults(func=run_soak)
    declare_outputs(soak, ("json", "--json", False))
    train = sub.add_parser("train", help="a training recipe's step with each SSIM formulation, round-robin in one "
                                         "run (vode_ros.tools.bench.train_step)",
                           description="Times the training step of --config on the same batches with SSIM's window "
                                       "means by AvgPool2d (baseline) and by shifted slices (used); prints s/step and "
                                       "the ratio to the baseline from the same run.")
    train.add_argument("--config", type=Path, default=None, help="training recipe (default config/train/driving.yaml)")
    train.add_argument("--data", type=Path, default=None,
                       help="one KITTI-layout folder to train on (default: the embedded clip)")
    train.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    train.add_argument("--steps", type=int, default=5, help="timed steps per candidate and round (default 5)")
    train.add_argument("--rounds", type=int, default=3, help="round-robin rounds (default 3)")
    train.add_argument("--batch", type=int, default=None, help="batch size (default: the recipe's)")
    train.add_argument("--size", default=None, metavar="WxH", help="training size (default: the recipe's)")
    train.add_argument("--json", type=Path, default=None, help="write the result as JSON")
    train.set_defaults(func=run_train)
    declare_outputs(train, ("json", "--json", False))
    return p


def run_train(args) -> int:
    import json

    from vode_ros.tools.bench import DEFAULT_DATA
    from vode_ros.tools.bench.train_step import DEFAULT_CONFIG, bench_train_step, format_train_step
    from vode_ros.tools.soak import parse_size

    config, data = args.config or DEFAULT_CONFIG, args.data or DEFAULT_DATA
    if args.steps < 1 or args.rounds < 1 or args.threads < 1:
        print("vode bench train: --steps, --rounds and --threads must be at least 1", file=sys.stderr)
        return 2
    for path, what in ((config, "--config"), (data, "--data")):
        if not path.exists():
            print(f"vode bench train: {what} {path} does not exist", file=sys.stderr)
            return 2
    try:
        size = parse_size(args.size)
        report = bench_train_step(config, data, args.threads, args.steps, args.rounds, args.batch, size,
                                  log=lambda m: print(f"vode bench train: {m}", file=sys.stderr, flush=True))
    except (ValueError, RuntimeError) as exc:
        print(f"vode bench train: {exc}", file=sys.stderr)
        return 2
    print(format_train_step(report))
    if args.json:
        from vode_ros.core.atomic_file import atomic_write

        with atomic_write(args.json) as fh:
            fh.write(json.dumps(report, indent=2))
    return 0


def run_soak(args) -> int:
    import json

    from vode_ros.tools.bench import DEFAULT_DATA
    from vode_ros.core.kitti import KittiFormatError
    from vode_ros.tools.soak import parse_size, run_soak as soak

    try:
        size = parse_size(args.size)
    except ValueError as exc:
        print(f"vode bench soak: {exc}", file=sys.stderr)
        return 2
    try:
        result = soak(args.minutes, args.rate, args.data or DEFAULT_DATA, args.model_dir, args.json,
                      log=lambda m: print(f"vode bench {m}", file=sys.stderr, flush=True), size=size)
    except (RuntimeError, KittiFormatError) as exc:
        print(f"vode bench soak: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in result.items() if k != "rss_samples"}, indent=2))
    return 0


# option: (normal default, --quick default); an option given explicitly wins over both.
DEFAULTS = {"width": (416, 128), "height": (128, 64), "seconds": (3.0, 0.3), "rounds": (5, 1),
            "calib_frames": (16, 2), "accuracy_frames": (0, 4), "node_seconds": (5.0, 1.0),
            "pub_hz": ([0.0, 30.0], [0.0])}


def _config(args):
    from vode_ros.tools.bench import DEFAULT_DATA, BenchConfig

    def pick(name: str):
        value = getattr(args, name)
        return value if value is not None else DEFAULTS[name][1 if args.quick else 0]

    return BenchConfig(
        width=pick("width"), height=pick("height"), threads=args.threads, seconds=pick("seconds"),
        rounds=pick("rounds"), channels=args.channels, models_dir=args.models_dir, depth_model=args.depth_model,
        data_dir=args.data or DEFAULT_DATA, calib_frames=pick("calib_frames"),
        accuracy_frames=pick("accuracy_frames"), node_seconds=pick("node_seconds"), pub_hz=tuple(pick("pub_hz")),
        torch=not args.no_torch, int8=not args.no_int8, nodes=not args.no_nodes, work_dir=args.keep,
        warmup=1 if args.quick else 2, min_iters=1 if args.quick else 2,
        int8_baseline=not (args.no_int8_baseline or args.quick))


def run(args) -> int:
    try:
        from vode_ros.tools.bench import format_report, run_bench, to_json
    except ImportError as exc:
        print(f"vode bench: {exc}", file=sys.stderr)
        return 2
    cfg = _config(args)
    if cfg.width % 32 or cfg.height % 32:
        print("vode bench: --width and --height must be multiples of 32 (DepthNet / LiteDepthNet)", file=sys.stderr)
        return 2
    for path, what in ((cfg.models_dir, "--models-dir"), (cfg.depth_model, "--depth-model")):
        if path is not None and not path.exists():
            print(f"vode bench: {what} {path} does not exist", file=sys.stderr)
            return 2
    if not cfg.data_dir.is_dir():
        print(f"vode bench: clip {cfg.data_dir} not found (calibration and node frames come from it)", file=sys.stderr)
        return 2
    from vode_ros.core.kitti import KittiFormatError, load_sequence

    try:
        load_sequence(cfg.data_dir, max_frames=1)        # before any net is built: a bad clip is said at once
    except KittiFormatError as exc:
        print(f"vode bench: --data {exc}", file=sys.stderr)
        return 2
    cfg.log = lambda msg: print(f"vode bench: {msg}", file=sys.stderr, flush=True)
    try:
        report = run_bench(cfg)
    except (RuntimeError, KittiFormatError) as exc:
        print(f"vode bench: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json:
        to_json(report, args.json)
        print(f"vode bench: report written to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from vode_ros.cli.main import run_subcommand

    sys.exit(run_subcommand("bench"))
