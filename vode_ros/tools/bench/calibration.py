"""Calibration inputs for int8: KITTI clip frames preprocessed by the run time's own
``OnnxModel.preprocess``, evenly spaced over the clip."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def clip_inputs(model_path: Path, data_dir: Path, indices: list[int] | None = None) -> list[np.ndarray]:
    """Net inputs (C, H, W) of clip frames, preprocessed by the run time's OnnxModel.preprocess."""
    from vode_ros.core.kitti import load_sequence, read_image
    from vode_ros.runtime.inference import OnnxModel

    model = OnnxModel(model_path, ["CPUExecutionProvider"], threads=1)
    seq = load_sequence(data_dir)
    idx = list(range(len(seq))) if indices is None else indices
    out = []
    for i in idx:
        img = read_image(seq.left[i])
        out.append(model.preprocess(img, "mono8" if img.ndim == 2 else "rgb8"))
    return out


def spaced(n_total: int, n: int) -> list[int]:
    """n frame indices spread evenly over 0..n_total-1."""
    n = max(1, min(n, n_total))
    return sorted({int(round(v)) for v in np.linspace(0, n_total - 1, n)})


def calibration_batches(kind: str, frames: list[np.ndarray]) -> list[np.ndarray]:
    """(1, C, H, W) images, or (1, 2C, H, W) [current, previous] pairs for pose."""
    if kind == "depth":
        return [f[None] for f in frames]
    return [np.concatenate([frames[i], frames[i - 1]], 0)[None] for i in range(1, len(frames))] or \
        [np.concatenate([frames[0], frames[0]], 0)[None]]
