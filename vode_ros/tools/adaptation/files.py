"""Checkpoint and file moves of the online adapter: nets-only checkpoints, atomic copies."""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def nets_only_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """Copy a training checkpoint without its optimizer state (what the adapter starts from)."""
    from vode_training.checkpoint import export_nets

    return export_nets(src, dst)


def atomic_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
