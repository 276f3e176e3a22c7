"""Checkpoint and file moves of the online adapter: nets-only checkpoints, atomic copies."""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def nets_only_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Copy a training checkpoint without its optimizer state (what the adapter starts from)."""
    import torch
    from vode_training import trainer

    if hasattr(trainer, "export_nets"):
        return trainer.export_nets(src, dst)
    ckpt = trainer.load_checkpoint(src)
    ckpt["optimizer"] = {}
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, dst)
    return dst


def atomic_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
