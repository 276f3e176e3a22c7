"""Checks at the entry of the pose estimator: each input made what the estimator expects, or a
ValueError naming the problem. numpy + OpenCV."""
from __future__ import annotations

import numpy as np


def check_image(image: np.ndarray) -> np.ndarray:
    import cv2

    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if img.ndim != 2 or min(img.shape) < 16:
        raise ValueError(f"image must be (H, W) grey or (H, W, 3) RGB of at least 16x16, got shape {img.shape}")
    return np.ascontiguousarray(img)


def check_k(k: np.ndarray) -> np.ndarray:
    k = np.asarray(k, np.float64)
    if k.shape != (3, 3) or not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ValueError(f"K must be a finite (3, 3) pinhole matrix with fx, fy > 0, got {k.tolist()}")
    return k


def check_depth(depth: np.ndarray | None) -> np.ndarray | None:
    if depth is None:
        return None
    d = np.asarray(depth)
    if d.ndim == 3 and d.shape[0] == 1:
        d = d[0]
    if d.ndim == 3 and d.shape[2] == 1:
        d = d[:, :, 0]
    if d.ndim != 2 or min(d.shape) < 2 or not np.issubdtype(d.dtype, np.number):
        raise ValueError(f"depth must be a numeric (H, W) map in metres, got shape {d.shape}, dtype {d.dtype}")
    return d.astype(np.float32, copy=False)


def check_motion(t: np.ndarray | None) -> np.ndarray | None:
    if t is None:
        return None
    t = np.asarray(t, np.float64)
    if t.shape != (4, 4) or not np.all(np.isfinite(t)):
        raise ValueError(f"net_t_prev_cur must be a finite (4, 4) transform, got shape {t.shape}")
    return t


def rotation_angle(t: np.ndarray) -> float:
    """Rotation angle (rad) of a (4, 4) or (3, 3)."""
    return float(np.arccos(np.clip((np.trace(t[:3, :3]) - 1) / 2, -1.0, 1.0)))
