"""`vode`: one command for the whole pipeline.

    vode demo                      the embedded KITTI clip through the real nodes -> report
    vode run [--bag BAG]           the nodes of launch/vode.launch.py in one process
    vode bag from-kitti DIR OUT    KITTI odometry folder -> rosbag2 (mcap / sqlite3)
    vode train --config FILE       self-supervised training (PyTorch)
    vode adapt --bag BAG           fine-tune on a recording; install only if better on its held-out end
    vode export --checkpoint F     Depth + Pose nets -> ONNX with metadata, parity-checked
    vode eval depth|pose --data D  Eigen depth metrics / ATE-5, t_err, r_err -> JSON
    vode synth OUT                 synthetic scenes with exact ground truth (KITTI layout)
    vode bench [soak]              speed: nets in torch/ORT fp32/int8, nodes end to end; soak test
    vode compare                   every method, same short budget -> Markdown + JSON table
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Sub-command modules, each with register(subparsers); imported lazily so `vode run`
# never imports torch.
SUBCOMMANDS = ("demo", "run", "bag", "train", "adapt", "export", "eval", "synth", "bench", "compare")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vode", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"vode_ros.cli.{name}").register(subparsers)
    return parser


def run_subcommand(name: str, argv: list[str] | None = None) -> int:
    """`python -m vode_ros.cli.NAME ARGS` = `vode NAME ARGS`, with only that sub-command's imports."""
    parser = argparse.ArgumentParser(prog="vode")
    importlib.import_module(f"vode_ros.cli.{name}").register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([name] + (sys.argv[1:] if argv is None else argv))
    return _run_checked(args)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return _run_checked(args)


def _run_checked(args) -> int:
    """Run the parsed verb once its outputs are known to be writable (before any work starts)."""
    from vode_ros.cli.output_paths import EXIT_BAD_OUTPUT, declared_output_problem

    problem = declared_output_problem(args)
    if problem:
        verb = " ".join(v for v in (args.command, getattr(args, "bag_command", None),
                                    getattr(args, "eval_task", None), getattr(args, "bench_command", None)) if v)
        print(f"vode {verb}: {problem}", file=sys.stderr)
        return EXIT_BAD_OUTPUT
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
