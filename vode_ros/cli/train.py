"""`vode train`: train a method from a YAML config (offline; imports torch only when run).

    vode train --config config/train/sfmlearner.yaml [--set train.steps=50 ...] [--out runs/NAME]
    vode train --config FILE --resume runs/NAME/checkpoint.pt        continue bit-exactly
    vode train --bag BAG --image-topic /cam/image_raw [--right-topic /cam_r/image_raw] [--init models/]
    vode train --config FILE --nproc 2                                 2 local processes (DDP)
    torchrun --standalone --nproc_per_node 2 -m vode_ros.cli.main train --config FILE   (also multi-node)

``--bag`` trains straight from a rosbag2 (mcap or sqlite3): frames of ``--image-topic``, intrinsics
from its CameraInfo (``--info-topic``, default <image namespace>/camera_info), the right camera of
``--right-topic`` as stereo source (metric scale; its CameraInfo P gives the baseline), static
frames dropped (``data.static_filter: flow``). ``--init`` starts the nets from a checkpoint, or
from the one in a folder (``--init models/`` finds models/sfmlearner_driving.pt); without
``--config`` the config stored in that checkpoint is used, so the nets match. ``vode export``
afterwards records the bag and topics in the models' ``vode.trained_on``.

On a machine whose cores are shared with other jobs, OpenMP's spinning threads can make a
2-thread step many times slower: use ``--set train.num_threads=1`` or ``OMP_WAIT_POLICY=PASSIVE``.

Writes runs/NAME/{config.yaml, checkpoint.pt, TensorBoard events}; ``vode export`` turns the
checkpoint into ONNX models. Also runs as a module:
``python -m vode_ros.cli.train --config FILE``.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vode_ros.cli.missing_extras import training_extras_missing
from vode_ros.cli.output_paths import declare_outputs, output_problem

DEFAULT_CONFIG = ("config", "train", "sfmlearner.yaml")


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train depth + pose networks from a config or a rosbag (needs torch)",
        description="Train a self-supervised depth/ego-motion method (config/train/*.yaml), from its "
                    "data folder or straight from a rosbag2.")
    p.add_argument("--config", default=None,
                   help="training YAML, e.g. config/train/sfmlearner.yaml (optional with --bag: then the "
                        "--init checkpoint's config, else config/train/sfmlearner.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, dotted key, YAML value (repeatable): --set train.steps=50")
    p.add_argument("--out", default=None, help="run folder (default runs/<config or bag name>)")
    declare_outputs(p, ("out", "--out", True))
    p.add_argument("--resume", default=None, metavar="CHECKPOINT",
                   help="continue from this checkpoint (weights, optimiser, RNG states, data order)")
    p.add_argument("--bag", default=None, metavar="BAG", help="train from this rosbag2 (folder, or .mcap/.db3)")
    p.add_argument("--image-topic", default=None, help="with --bag: the camera image topic")
    p.add_argument("--info-topic", default=None, help="with --bag: its CameraInfo topic (default: sibling camera_info)")
    p.add_argument("--right-topic", default=None, help="with --bag: right camera image topic (stereo, metric scale)")
    p.add_argument("--init", default=None, metavar="CHECKPOINT_OR_DIR",
                   help="start the nets from this checkpoint, or the one in this folder (e.g. models/)")
    p.add_argument("--nproc", type=int, default=1, help="local processes (torch.distributed, DDP); default 1")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def default_config() -> Path:
    """config/train/sfmlearner.yaml of the source tree, else of the installed share folder."""
    from vode_ros.core.resources import resource_path

    return resource_path(*DEFAULT_CONFIG)


def bag_overrides(bag: str, image_topic: str, right_topic: str | None, info_topic: str | None) -> list[str]:
    """Config overrides for training from a rosbag (before the user's --set, which win)."""
    out = ["data.kind=rosbag", f"data.path={bag}", f"data.image_topic={image_topic}", "data.max_frames=0",
           "data.static_filter=flow"]
    out.append(f"data.info_topic={info_topic or ''}")
    out.append(f"data.right_topic={right_topic or ''}")
    out.append(f"data.stereo={'true' if right_topic else 'false'}")
    return out


def build_config(args):
    """-> validated config from --config / --init / --bag / --set (raises ConfigError, FileNotFoundError)."""
    from vode_training.config import ConfigError, load_config

    base = args.config
    overrides: list[str] = []
    if args.init:
        from vode_training.checkpoint import load_checkpoint, resolve_checkpoint

        init = resolve_checkpoint(args.init)
        if base is None:
            base = load_checkpoint(init)["config"]
        overrides.append(f"train.init={init}")
    if args.bag:
        if not args.image_topic:
            raise ConfigError("--bag needs --image-topic")
        overrides = bag_overrides(args.bag, args.image_topic, args.right_topic, args.info_topic) + overrides
    elif base is None:
        raise ConfigError("--config is required (or --bag with --image-topic)")
    if base is None:
        base = default_config()
    return load_config(base, overrides + list(args.overrides))


def _remove_unfinished(out: Path, created: bool) -> None:
    """Remove a run folder this call created when no checkpoint was written into it (nothing half-done stays)."""
    import shutil

    if created and out.is_dir() and not any(out.rglob("*.pt")) and os.environ.get("RANK", "0") == "0":
        shutil.rmtree(out, ignore_errors=True)


def run(args) -> int:
    try:
        from vode_training.config import ConfigError
        from vode_training.trainer import NonFiniteLossError, Trainer, train_distributed
    except ImportError as exc:  # torch missing: the run time does not need it
        return training_extras_missing("vode train", exc)
    try:
        cfg = build_config(args)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"vode train: {exc}", file=sys.stderr)
        return 2
    name = Path(args.config).stem if args.config else (Path(args.bag).stem if args.bag else cfg["method"])
    out = Path(args.out) if args.out else Path("runs") / name
    problem = output_problem(out, "--out", folder=True)     # the default run folder too, before any work
    if problem:
        print(f"vode train: {problem}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":
        from vode_training.data import describe_data

        print(f"vode train: method {cfg['method']}, {cfg['train']['steps']} steps, data {cfg['data']['kind']} "
              f"{describe_data(cfg)} -> {out}", file=sys.stderr)
    created = not out.exists()      # a run folder this call makes is removed again if it fails before any checkpoint
    try:
        if args.nproc > 1:
            import tempfile

            import torch

            with tempfile.TemporaryDirectory() as tmp:
                train_distributed(cfg, out, args.nproc, resume=args.resume, progress=not args.no_progress,
                                  result_dir=tmp)
                summary = torch.load(Path(tmp) / "rank0.pt", weights_only=False)
        else:
            summary = Trainer(cfg, out, resume=args.resume, progress=not args.no_progress).train()
    except (NonFiniteLossError, FileNotFoundError, ValueError) as exc:
        print(f"vode train: {exc}", file=sys.stderr)
        _remove_unfinished(out, created)
        return 1
    if summary.get("rank", 0) != 0:       # torchrun: only rank 0 reports
        return 0
    procs = f" on {summary['world_size']} processes" if summary.get("world_size", 1) > 1 else ""
    print(f"vode train: done, {summary['trained_steps']} steps in {summary['seconds']:.0f} s{procs}, "
          f"final loss {summary['final_loss']:.4f} (mean of last 20: {summary['final_loss_mean20']:.4f}); "
          f"checkpoint {summary['checkpoint']}")
    return 0


if __name__ == "__main__":
    from vode_ros.cli.main import run_subcommand

    sys.exit(run_subcommand("train"))
