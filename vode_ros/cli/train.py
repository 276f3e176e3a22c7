"""`vode train`: train a method from a YAML config (offline; imports torch only when run).

    vode train --config config/train/sfmlearner.yaml [--set train.steps=50 ...] [--out runs/NAME]

Writes runs/NAME/{config.yaml, checkpoint.pt, TensorBoard events}; ``vode export`` turns the
checkpoint into ONNX models. Without the lead's main wiring:
``python -m vode_ros.cli.train --config FILE``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train depth + pose networks from a config (needs torch)",
        description="Train a self-supervised depth/ego-motion method (config/train/*.yaml).")
    p.add_argument("--config", required=True, help="training YAML, e.g. config/train/sfmlearner.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, dotted key, YAML value (repeatable): --set train.steps=50")
    p.add_argument("--out", default=None, help="run folder (default runs/<config name>)")
    p.add_argument("--resume", default=None, metavar="CHECKPOINT", help="continue from this checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    try:
        from vode_training.config import ConfigError, load_config
        from vode_training.trainer import NonFiniteLossError, Trainer
    except ImportError as exc:  # torch missing: the run time does not need it
        print(f"vode train: the training extras are not installed ({exc}); "
              "pip install -r scripts/requirements.txt", file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"vode train: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("runs") / Path(args.config).stem
    print(f"vode train: method {cfg['method']}, {cfg['train']['steps']} steps -> {out}", file=sys.stderr)
    try:
        summary = Trainer(cfg, out, resume=args.resume, progress=not args.no_progress).train()
    except (NonFiniteLossError, FileNotFoundError, ValueError) as exc:
        print(f"vode train: {exc}", file=sys.stderr)
        return 1
    print(f"vode train: done, {summary['trained_steps']} steps in {summary['seconds']:.0f} s, "
          f"final loss {summary['final_loss']:.4f} (mean of last 20: {summary['final_loss_mean20']:.4f}); "
          f"checkpoint {summary['checkpoint']}")
    return 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="vode")
    _sub = _parser.add_subparsers(dest="command", required=True)
    register(_sub)
    _args = _parser.parse_args(["train"] + sys.argv[1:])
    sys.exit(_args.func(_args))
