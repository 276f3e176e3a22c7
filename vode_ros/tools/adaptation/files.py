"""File moves of the online adapter: atomic copies (its nets-only checkpoints are
``vode_training.checkpoint.export_nets``)."""
from __future__ import annotations

import shutil
from pathlib import Path

from vode_ros.core.atomic_file import atomic_write


def atomic_copy(src: Path, dst: Path) -> None:
    with open(src, "rb") as fin, atomic_write(dst, binary=True) as fout:
        shutil.copyfileobj(fin, fout)
