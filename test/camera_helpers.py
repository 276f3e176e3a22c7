"""Raw (distorted, unrectified) images made from pinhole ones, to test rectification against.

The inverse of what a rectifier does, computed independently of it: every raw pixel is sent
through OpenCV's undistortPoints (K, D, R -> P) to its place in the rectified image and takes the
colour found there.
"""
from __future__ import annotations

import cv2
import numpy as np

from vode_ros.core.rectify import Calibration


def raw_from_rectified(rect: np.ndarray, cal: Calibration, nearest: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """rect (H, W[, C]) as the rectified camera of `cal` sees it -> (raw image, (H, W) bool: the raw
    pixels whose rectified place lies inside `rect`); nearest: no blending (depth images)."""
    h, w = cal.height, cal.width
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    pts = np.stack([u.ravel(), v.ravel()], 1).reshape(-1, 1, 2)
    d = np.asarray(cal.d, np.float64)
    if cal.model == "equidistant":
        und = cv2.fisheye.undistortPoints(pts, cal.k_raw, d, R=cal.rotation, P=cal.k_rect)
    else:
        und = cv2.undistortPoints(pts, cal.k_raw, d, R=cal.rotation, P=cal.k_rect)
    map_x = und[:, 0, 0].reshape(h, w).astype(np.float32)
    map_y = und[:, 0, 1].reshape(h, w).astype(np.float32)
    inside = (map_x >= 0) & (map_x <= rect.shape[1] - 1) & (map_y >= 0) & (map_y <= rect.shape[0] - 1)
    raw = cv2.remap(rect, map_x, map_y, cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT)
    return raw, inside


def calibration(k: np.ndarray, size: tuple[int, int], d=(), model: str = "plumb_bob", r: np.ndarray | None = None,
                p: np.ndarray | None = None) -> Calibration:
    """A Calibration as a CameraInfo would give it (R and P left unset unless given)."""
    return Calibration(width=size[0], height=size[1], k=tuple(np.asarray(k, float).ravel()), d=tuple(map(float, d)),
                       r=() if r is None else tuple(np.asarray(r, float).ravel()),
                       p=() if p is None else tuple(np.asarray(p, float).ravel()), model=model)
