"""Static-frame removal, as SfMLearner's data preparation drops frames where the camera stands still.

A frame is kept when the image moved enough since the last *kept* frame (so a slow crawl is
thinned out rather than kept whole, as SfmLearner-Pytorch's ``--static-frames`` / speed filter
and monodepth2's "zhou" split do):

- ``flow``: mean magnitude of the dense optical flow (OpenCV Farneback) in pixels, measured on
  grey frames at the given resolution (the training size);
- ``diff``: mean absolute grey-level difference (0..255).

The first frame is always kept. ``threshold`` <= 0 keeps everything.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

METHODS = ("none", "flow", "diff")


def _grey(img: np.ndarray) -> np.ndarray:
    import cv2

    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(img, dtype=np.uint8)


def motion(a: np.ndarray, b: np.ndarray, method: str = "flow") -> float:
    """Apparent motion between two uint8 frames (H, W[, C]): mean flow (px) or mean |difference|."""
    import cv2

    ga, gb = _grey(a), _grey(b)
    if method == "diff":
        return float(np.abs(ga.astype(np.float32) - gb.astype(np.float32)).mean())
    if method == "flow":
        flow = cv2.calcOpticalFlowFarneback(ga, gb, None, pyr_scale=0.5, levels=3, winsize=15, iterations=3,
                                            poly_n=5, poly_sigma=1.2, flags=0)
        return float(np.linalg.norm(flow, axis=2).mean())
    raise ValueError(f"static filter must be one of {', '.join(METHODS)}, got {method!r}")


def keep_moving(frames: Iterable[np.ndarray], method: str = "flow", threshold: float = 1.0) -> list[int]:
    """Indices of the frames to keep (the first, then each frame that moved >= threshold since the last kept)."""
    if method not in METHODS:
        raise ValueError(f"static filter must be one of {', '.join(METHODS)}, got {method!r}")
    keep: list[int] = []
    last = None
    for i, img in enumerate(frames):
        if last is None or method == "none" or threshold <= 0 or motion(last, img, method) >= threshold:
            keep.append(i)
            last = img
    return keep
