"""Where a depth map is wrong: Abs Rel and predicted / true depth by image band and by depth range.

One Abs Rel over a sequence hides where the error sits. A depth net trained on little data
usually learns the road's ramp first and objects last: near cars predicted too far, the upper
image (trees, facades) off by more than the road. This splits the evaluated pixels of the Eigen
protocol (``depth_metrics.evaluated_pixels``) two ways and pools them over all images (each pixel
counts once):

- ``bands``: horizontal bands of the image, top to bottom (``n_bands`` of equal height);
- ``ranges``: the ground-truth depth in ``depth_edges`` (metres).

For each group: the number of pixels, the Abs Rel, and ``pred_over_true`` = exp(mean log(pred /
gt)), the geometric mean ratio (1.35 = 35 % too far). The prediction is clamped to the protocol's
[min_depth, max_depth] as in the metrics, after the scale the caller applied (median or none).

numpy only, as depth_metrics.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .depth_metrics import evaluated_pixels

DEPTH_EDGES = (0.0, 5.0, 10.0, 20.0, 40.0, 80.0)        # metres, driving
INDOOR_DEPTH_EDGES = (0.0, 0.5, 1.0, 2.0, 4.0, 10.0)    # metres, rooms


def default_depth_edges(cap: float) -> tuple[float, ...]:
    """The driving or indoor ranges, whichever the depth cap (80 m or 10 m) belongs to."""
    return DEPTH_EDGES if cap > 20.0 else INDOOR_DEPTH_EDGES


@dataclass
class _Sums:
    n: np.ndarray
    abs_rel: np.ndarray
    log_ratio: np.ndarray

    @classmethod
    def zeros(cls, k: int) -> _Sums:
        return cls(np.zeros(k, np.int64), np.zeros(k), np.zeros(k))

    def add(self, group: np.ndarray, gt: np.ndarray, pred: np.ndarray) -> None:
        """group (N,) int in [0, k) or -1 (not counted); gt, pred (N,) positive."""
        keep = group >= 0
        g, t, p = group[keep], gt[keep], pred[keep]
        k = len(self.n)
        self.n += np.bincount(g, minlength=k)
        self.abs_rel += np.bincount(g, np.abs(p - t) / t, minlength=k)
        self.log_ratio += np.bincount(g, np.log(p / t), minlength=k)

    def rows(self, labels: list[str]) -> list[dict]:
        out = []
        for i, label in enumerate(labels):
            n = int(self.n[i])
            out.append({"group": label, "n_pixels": n,
                        "abs_rel": float(self.abs_rel[i] / n) if n else float("nan"),
                        "pred_over_true": float(np.exp(self.log_ratio[i] / n)) if n else float("nan")})
        return out


@dataclass
class DepthErrorBreakdown:
    """Accumulates pixels image by image (:meth:`add`), then :meth:`result`."""

    min_depth: float = 1e-3
    max_depth: float = 80.0
    garg_crop: bool = False
    n_bands: int = 4
    depth_edges: tuple[float, ...] = DEPTH_EDGES
    _bands: _Sums = field(init=False)
    _ranges: _Sums = field(init=False)

    def __post_init__(self) -> None:
        if self.n_bands < 1:
            raise ValueError(f"n_bands must be >= 1, got {self.n_bands}")
        edges = np.asarray(self.depth_edges, np.float64)
        if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError(f"depth_edges must rise, at least two of them, got {self.depth_edges}")
        self._bands = _Sums.zeros(self.n_bands)
        self._ranges = _Sums.zeros(len(edges) - 1)

    def add(self, gt: np.ndarray, pred: np.ndarray, scale: float = 1.0) -> None:
        """gt (H, W) metres, 0 = none; pred (h, w) depth, multiplied by ``scale`` (a median
        scaling) before the clamp. Resized to gt's size as the metrics do."""
        gt, pred, valid = evaluated_pixels(gt, pred, self.min_depth, self.max_depth, self.garg_crop)
        rows = np.nonzero(valid)[0]
        t = gt[valid]
        p = np.clip(pred[valid] * scale, self.min_depth, self.max_depth)
        band = np.minimum(rows * self.n_bands // gt.shape[0], self.n_bands - 1)
        self._bands.add(band, t, p)
        edges = np.asarray(self.depth_edges, np.float64)
        rng = np.searchsorted(edges, t, side="right") - 1
        rng[(rng < 0) | (rng >= len(edges) - 1)] = -1
        self._ranges.add(rng, t, p)

    def result(self) -> dict:
        """{"bands": [...], "ranges": [...]}: per group n_pixels, abs_rel, pred_over_true."""
        n = self.n_bands
        where = {0: " (top)", n - 1: " (bottom)"} if n > 1 else {}
        band_labels = [f"rows {i + 1}/{n}{where.get(i, '')}" for i in range(n)]
        e = self.depth_edges
        range_labels = [f"{e[i]:g}-{e[i + 1]:g} m" for i in range(len(e) - 1)]
        return {"bands": self._bands.rows(band_labels), "ranges": self._ranges.rows(range_labels)}
