"""A tiny split for the `vode compare` tests: synthetic sequences in KITTI layout + split files."""
from __future__ import annotations

import shutil
from pathlib import Path


def make_split(root: Path) -> tuple[Path, Path]:
    """Three 10-frame 128x64 sequences under root/data: seq_a (stereo) and seq_b (mono, no image_1/)
    to train on, seq_c held out; split 'tiny' in root/splits. -> (data root, splits folder)."""
    from vode_training.data.synthetic import write_kitti_layout

    data, splits = root / "data", root / "splits"
    for name, seed, stereo in (("seq_a", 1, True), ("seq_b", 2, False), ("seq_c", 3, True)):
        write_kitti_layout(data / name, frames=10, width=128, height=64, seed=seed)
        if not stereo:
            shutil.rmtree(data / name / "image_1")
    splits.mkdir()
    (splits / "tiny_train.txt").write_text("# training sequences\nseq_a\nseq_b\n")
    (splits / "tiny_heldout.txt").write_text("seq_c\n")
    return data, splits
