"""Sensor depth (depth_0/NNNNNN.png of a KITTI-layout folder) at the training size.

Resized by nearest neighbour: a depth map must not be blended across an object's edge, nor its
0 ("no reading") mixed into real values. The supervised term that reads it is
``vode_training.losses.sensor_depth``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def prepare_depth(path: Path | None, width: int, height: int) -> torch.Tensor:
    """A depth PNG (uint16, metres * 256) -> (1, H, W) float32 metres at (width, height); zeros for None."""
    if path is None:
        return torch.zeros(1, height, width)
    import cv2

    from vode_ros.core.kitti import read_depth

    depth = cv2.resize(read_depth(Path(path)), (width, height), interpolation=cv2.INTER_NEAREST)
    return torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None]
