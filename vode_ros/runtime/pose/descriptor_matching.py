"""Correspondences by descriptor matching, for motions LK cannot follow (numpy + OpenCV).

Pyramidal Lucas-Kanade assumes the image moves by less than its window times the pyramid's
reach (about 60 px at the working resolution with a 15 px window and 3 levels): a camera that
turns 25 degrees between frames, a dropped frame on a fast car, a low frame rate, lose the
track. Descriptors (ORB, AKAZE, SIFT: OpenCV's) are compared wherever the features are, so
the size of the motion does not matter, only how much of the scene both frames still see.

A motion prior (constant velocity, the pose net's rotation) narrows the search: each feature of
the previous frame is projected with the predicted motion (with its depth where it has one,
else at infinity: the rotation alone) and matched only against features within ``window_px``
of that position. Where the prior leaves too few matches (it was wrong), the whole image is
searched. Lowe's ratio test and one-to-one assignment keep the matches unambiguous.

Coordinates: pixels of the working-resolution image, pixel centres at integer coordinates.
Conventions as pnp.py: T_cur_prev maps previous-camera points into the current camera.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vode_ros.runtime.pose.tracking import backproject, project

DESCRIPTORS = ("orb", "sift")


@dataclass(frozen=True)
class DescriptorConfig:
    kind: str = "orb"              # orb | sift
    max_features: int = 2000       # per frame
    ratio: float = 0.8             # Lowe's ratio test: best / second best distance
    window_px: float = 40.0        # guided search radius around the predicted position
    min_guided: int = 30           # fewer guided matches: search the whole image


@dataclass
class Features:
    uv: np.ndarray                 # (N, 2) float32 pixel positions
    desc: np.ndarray | None        # (N, D) descriptors (uint8 binary or float32), None when N = 0


def _extractor(cfg: DescriptorConfig):
    import cv2

    if cfg.kind == "orb":
        return cv2.ORB_create(cfg.max_features, edgeThreshold=15, fastThreshold=5), cv2.NORM_HAMMING
    if cfg.kind == "sift":
        return cv2.SIFT_create(cfg.max_features), cv2.NORM_L2
    raise ValueError(f"descriptor must be one of {', '.join(DESCRIPTORS)}, got {cfg.kind!r}")


class DescriptorMatcher:
    def __init__(self, cfg: DescriptorConfig | None = None):
        import cv2

        self.cfg = cfg or DescriptorConfig()
        self._extract, norm = _extractor(self.cfg)
        self._bf = cv2.BFMatcher(norm)

    def describe(self, gray: np.ndarray) -> Features:
        """(H, W) uint8 -> its features."""
        kps, desc = self._extract.detectAndCompute(gray, None)
        uv = np.array([k.pt for k in kps], np.float32).reshape(-1, 2)
        return Features(uv, desc if len(uv) else None)

    def match(self, prev: Features, cur: Features, predicted: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray, bool]:
        """-> ((M,) indices into prev, (M,) into cur, whether the prior's window was used).

        predicted: (N_prev, 2) where each previous feature should be in the current image (NaN:
        no prediction, searched everywhere), or None (search the whole image)."""
        if prev.desc is None or cur.desc is None or len(prev.uv) < 2 or len(cur.uv) < 2:
            return np.zeros(0, int), np.zeros(0, int), False
        if predicted is not None:
            d2 = ((predicted[:, None, :] - cur.uv[None, :, :]) ** 2).sum(-1)       # (N, M) px²
            mask = (d2 <= self.cfg.window_px ** 2) | ~np.isfinite(predicted[:, :1])
            i, j = self._knn(prev, cur, mask.astype(np.uint8))
            if len(i) >= self.cfg.min_guided:
                return i, j, True
        i, j = self._knn(prev, cur, None)
        return i, j, False

    def _knn(self, prev: Features, cur: Features, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        knn = self._bf.knnMatch(prev.desc, cur.desc, k=2, mask=mask) if mask is not None else \
            self._bf.knnMatch(prev.desc, cur.desc, k=2)
        best: dict[int, tuple[float, int]] = {}          # cur index -> (distance, prev index): one to one
        for m in knn:
            if not m:
                continue
            if len(m) == 2 and m[0].distance > self.cfg.ratio * m[1].distance:
                continue
            a = m[0]
            if a.trainIdx not in best or a.distance < best[a.trainIdx][0]:
                best[a.trainIdx] = (a.distance, a.queryIdx)
        if not best:
            return np.zeros(0, int), np.zeros(0, int)
        j = np.fromiter(best.keys(), int)
        i = np.array([best[x][1] for x in j], int)
        return i, j


def predict_positions(uv_prev: np.ndarray, z_prev: np.ndarray, k: np.ndarray, t_cur_prev: np.ndarray
                      ) -> np.ndarray:
    """(N, 2) previous pixels, (N,) depths (NaN / 0: none) and the predicted T_cur_prev -> (N, 2)
    predicted pixels in the current image; points without depth at infinity (the rotation alone);
    NaN where the point falls behind the camera."""
    has = np.isfinite(z_prev) & (z_prev > 0)
    rotation_only = t_cur_prev.copy()
    rotation_only[:3, 3] = 0.0
    # Without depth: a point far along the ray (1 m, translation ignored) moves by the rotation alone.
    uv, z = project(backproject(uv_prev, np.ones(len(uv_prev)), k), rotation_only, k)
    if has.any():
        uv[has], z[has] = project(backproject(uv_prev[has], z_prev[has], k), t_cur_prev, k)
    return np.where((z > 1e-3)[:, None], uv, np.nan)
