"""`vode export`: training checkpoint -> depth.onnx + pose.onnx with metadata, parity-checked.

    vode export --checkpoint runs/sfmlearner/checkpoint.pt --out models

Also runs as a module: ``python -m vode_ros.cli.export --checkpoint FILE --out DIR``.
"""
from __future__ import annotations

import argparse
import sys

from vode_ros.cli.missing_extras import training_extras_missing
from vode_ros.cli.output_paths import declare_outputs


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export", help="export a training checkpoint to ONNX (needs torch)",
        description="Export depth.onnx and pose.onnx with vode.* metadata; checks ONNX Runtime "
                    "against torch (inverse depth <= 1e-4, pose <= 1e-5).")
    p.add_argument("--checkpoint", required=True, help="checkpoint.pt written by `vode train`")
    p.add_argument("--out", required=True, help="folder for depth.onnx / pose.onnx")
    p.add_argument("--size", default=None, metavar="WxH",
                   help="input size of the exported models (multiples of 32), e.g. 256x256 for a square camera: "
                        "keeps the camera's aspect ratio instead of squashing it to the training size")
    p.add_argument("--relative", action="store_true",
                   help="record the model as relative depth (vode.metric_scale false) even where its training had "
                        "a scale source: for a model whose metres measured wrong on held-out footage")
    p.set_defaults(func=run)
    declare_outputs(p, ("out", "--out", True))
    return p


def run(args) -> int:
    try:
        from vode_training.export import ExportParityError, export_checkpoint
    except ImportError as exc:
        return training_extras_missing("vode export", exc)
    size = None
    if getattr(args, "size", None):     # (a Namespace built by hand may lack it)
        parts = args.size.lower().split("x")
        if len(parts) != 2 or not all(v.isdigit() for v in parts):
            print(f"vode export: --size {args.size!r}: expected WIDTHxHEIGHT, e.g. 256x256", file=sys.stderr)
            return 2
        size = (int(parts[0]), int(parts[1]))
    try:
        report = export_checkpoint(args.checkpoint, args.out, size=size, relative=getattr(args, "relative", False))
    except (FileNotFoundError, ValueError) as exc:
        print(f"vode export: {exc}", file=sys.stderr)
        return 2
    except ExportParityError as exc:
        print(f"vode export: parity check failed, nothing written: {exc}", file=sys.stderr)
        return 1
    for kind, rep in report["files"].items():
        print(f"vode export: {rep['path']} ({rep['bytes'] / 1e6:.1f} MB), ONNX Runtime vs torch max |diff| "
              f"{rep['parity_max_abs']:.2g} (tolerance {rep['tolerance']:g}, {rep['parity_inputs']} inputs"
              f"{', real frames included' if report['real_input'] else ', random only'})")
    return 0


if __name__ == "__main__":
    from vode_ros.cli.main import run_subcommand

    sys.exit(run_subcommand("export"))
