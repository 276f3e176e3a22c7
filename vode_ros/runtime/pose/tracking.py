"""Sparse correspondences between two frames and their depth (numpy + OpenCV, no torch, no ROS).

Shi-Tomasi corners on the previous frame, pyramidal Lucas-Kanade flow into the current frame
with a forward-backward check, and the previous frame's depth read at each corner. Coordinates
are pixels of the image they were measured in, pixel centres at integer coordinates (OpenCV).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vode_ros.core.geometry import backproject_points, transform_points
from vode_ros.core.geometry import project as geometry_project


@dataclass(frozen=True)
class TrackingConfig:
    max_features: int = 600          # corners detected on the previous frame
    quality: float = 0.005           # Shi-Tomasi quality level (relative to the strongest corner)
    min_distance: float = 8.0        # px at the working resolution: spreads corners over the image
    block_size: int = 5
    win_size: int = 21               # LK window (px)
    levels: int = 4                  # LK pyramid levels beyond the base: 2^4 * 10 px of motion
    fb_threshold: float = 1.0        # px: forward-backward round trip larger than this is a bad track; 0: no check
    border: int = 4                  # px kept clear of the image border (LK windows leave the image)


def detect_corners(gray: np.ndarray, cfg: TrackingConfig, mask: np.ndarray | None = None) -> np.ndarray:
    """gray (H, W) uint8 -> (N, 2) float32 corner positions (u, v), N <= cfg.max_features."""
    import cv2

    h, w = gray.shape
    m = np.zeros((h, w), np.uint8)
    b = cfg.border
    m[b:h - b, b:w - b] = 255
    if mask is not None:
        m &= np.where(mask, 255, 0).astype(np.uint8)
    pts = cv2.goodFeaturesToTrack(gray, maxCorners=cfg.max_features, qualityLevel=cfg.quality,
                                  minDistance=cfg.min_distance, mask=m, blockSize=cfg.block_size)
    if pts is None:
        return np.zeros((0, 2), np.float32)
    return pts.reshape(-1, 2).astype(np.float32)


def track(prev: np.ndarray, cur: np.ndarray, pts_prev: np.ndarray, cfg: TrackingConfig,
          guess: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """LK flow of (N, 2) float32 points from prev to cur -> ((N, 2) float32 positions in cur, (N,) bool ok).

    prev, cur: (H, W) uint8 (the Python binding takes no prebuilt pyramids). ``guess`` (N, 2):
    predicted positions in cur (e.g. from the pose net's motion and the depth): the search starts
    there, so motions beyond the pyramid's reach can still be followed.
    ok: found both ways, round trip within ``fb_threshold`` and inside the image."""
    import cv2

    n = len(pts_prev)
    if n == 0:
        return np.zeros((0, 2), np.float32), np.zeros(0, bool)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)
    lk = dict(winSize=(cfg.win_size, cfg.win_size), maxLevel=cfg.levels, criteria=crit)
    p0 = np.ascontiguousarray(pts_prev, np.float32).reshape(-1, 1, 2)
    if guess is not None:
        p1 = np.ascontiguousarray(guess, np.float32).reshape(-1, 1, 2).copy()
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev, cur, p0, p1, flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **lk)
    else:
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev, cur, p0, None, **lk)
    fwd = np.flatnonzero(st1.ravel() == 1)
    ok = np.zeros(n, bool)
    p1 = p1.reshape(-1, 2)
    if cfg.fb_threshold <= 0:                   # no round trip: RANSAC alone rejects the bad tracks
        ok[fwd] = True
    elif fwd.size:
        # Backward from the forward result only for tracks found forward, started at the forward
        # start point, so a track that drifted can't come back by luck.
        back, st0, _ = cv2.calcOpticalFlowPyrLK(cur, prev, p1[fwd].reshape(-1, 1, 2).copy(), p0[fwd].copy(),
                                                flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **lk)
        fb = np.linalg.norm(back.reshape(-1, 2) - p0[fwd].reshape(-1, 2), axis=1)
        ok[fwd] = (st0.ravel() == 1) & (fb < cfg.fb_threshold)
    h, w = cur.shape[:2]
    inside = (p1[:, 0] >= 0) & (p1[:, 0] <= w - 1) & (p1[:, 1] >= 0) & (p1[:, 1] <= h - 1)
    ok &= inside & np.isfinite(p1).all(1)
    return p1.astype(np.float32), ok


def sample_depth(depth: np.ndarray, pts: np.ndarray, image_wh: tuple[int, int], min_depth: float,
                 max_depth: float) -> tuple[np.ndarray, np.ndarray]:
    """Depth (Hd, Wd) metres at (N, 2) pixel positions of an image of size ``image_wh`` (W, H).

    The depth map may have another resolution than the image (the depth net's 416x128): positions
    are scaled like cv2.resize maps pixel centres. Nearest sample: interpolating across an object
    edge would invent a depth between foreground and background. -> ((N,) float64 depth, (N,) bool
    valid): invalid where the depth is 0, NaN, inf or outside [min_depth, max_depth]."""
    hd, wd = depth.shape
    sx, sy = wd / image_wh[0], hd / image_wh[1]
    u = np.clip(np.rint((pts[:, 0] + 0.5) * sx - 0.5), 0, wd - 1).astype(np.int64)
    v = np.clip(np.rint((pts[:, 1] + 0.5) * sy - 0.5), 0, hd - 1).astype(np.int64)
    z = np.asarray(depth[v, u], np.float64)
    ok = np.isfinite(z) & (z >= min_depth) & (z <= max_depth)
    return np.where(ok, z, 0.0), ok


def backproject(pts: np.ndarray, z: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(N, 2) pixels and (N,) depths -> (N, 3) float64 points in that camera's frame
    (core.geometry.backproject_points, one point per row as the trackers keep them)."""
    return backproject_points(np.asarray(pts, np.float64).T, z, k).T


def project(pts3d: np.ndarray, t_cur_prev: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) previous-camera points through T_cur_prev (4, 4) into the current image -> ((N, 2) px, (N,) z)
    (core.geometry.transform_points and project, one point per row; z <= 0 behind the camera)."""
    pix, z = geometry_project(transform_points(t_cur_prev, np.asarray(pts3d, np.float64).T), k)
    return pix.T, z[0]
