"""Metric scale for the run time: from the model, from stereo, or from the camera height.

A monocular net's depth and translation share one unknown scale. Sources of the factor
that maps them to metres:
- model:         the model was trained with stereo (metadata vode.metric_scale) -> 1.
- none:          relative scale, 1, labelled as such.
- stereo:        median ratio of stereo depth (the pair's SGBM map, core.stereo_depth.pair_depth,
                 baseline from the right CameraInfo) to network depth, smoothed over frames.
- stereo_start:  the same for the first `warmup` frames, then frozen (a stereo start, then mono).
- camera_height: fit the ground plane to the lower image part of the network depth; the
                 known mounting height over the ground divided by the fitted one.
- auto (the nodes' default): stereo in stereo mode; else the model where its metres hold on this
                 camera, domain and scene, else none, said so on vode/status (runtime.metric_trust).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vode_ros.core.geometry import backproject_points

MODES = ("model", "none", "stereo", "stereo_start", "camera_height")
# What the nodes accept: ``auto`` resolves to one of MODES per camera (vode_ros.runtime.metric_trust).
NODE_MODES = ("auto",) + MODES


def median_ratio(reference: np.ndarray, depth: np.ndarray, max_depth: float = 40.0,
                 min_valid: int = 200) -> float | None:
    """median(reference / depth) over pixels valid in both; None when too few."""
    ok = (reference > 0) & (reference < max_depth) & (depth > 0) & np.isfinite(depth)
    if int(ok.sum()) < min_valid:
        return None
    return float(np.median(reference[ok] / depth[ok]))


def ground_height(depth: np.ndarray, k: np.ndarray, rows: tuple[float, float] = (0.7, 1.0),
                  cols: tuple[float, float] = (0.3, 0.7), iters: int = 100, tol: float = 0.05,
                  seed: int = 0) -> float | None:
    """Camera height over a RANSAC-fitted ground plane, in the depth map's units.

    depth: (H, W) z-depth; k: intrinsics at that resolution. Only near-horizontal planes
    (normal within 30 degrees of the optical y axis, which points down) count as ground.
    """
    h, w = depth.shape
    r0, r1 = int(rows[0] * h), int(rows[1] * h)
    c0, c1 = int(cols[0] * w), int(cols[1] * w)
    v, u = np.mgrid[r0:r1, c0:c1]
    z = depth[r0:r1, c0:c1]
    ok = np.isfinite(z) & (z > 0)
    if ok.sum() < 50:
        return None
    u, v, z = u[ok], v[ok], z[ok]
    pts = backproject_points(np.stack([u, v]), z, k).T                  # (N, 3)
    rng = np.random.default_rng(seed)
    tol_m = tol * max(float(np.median(z)), 1e-6)
    best, best_n = None, 0
    for _ in range(iters):
        a, b, c = pts[rng.choice(len(pts), 3, replace=False)]
        n = np.cross(b - a, c - a)
        norm = np.linalg.norm(n)
        if norm < 1e-9:
            continue
        n /= norm
        if abs(n[1]) < np.cos(np.radians(30)):
            continue
        d = -n @ a
        dist = np.abs(pts @ n + d)
        inliers = dist < tol_m
        if inliers.sum() > best_n:
            best_n, best = int(inliers.sum()), inliers
    if best is None or best_n < 30:
        return None
    # Refit on the inliers (least squares through the centroid): the normal is the direction of
    # least spread, from the 3x3 scatter matrix (an SVD of the (N, 3) points would build N x N).
    p = pts[best]
    centroid = p.mean(axis=0)
    q = p - centroid
    n = np.linalg.eigh(q.T @ q)[1][:, 0]
    return float(abs(n @ centroid))


# What vode/status says in scale_source for the two fixed sources.
METRIC_MODEL = "model (stereo-trained, metric)"
RELATIVE = "none (relative)"


def relative_because(reason: str) -> str:
    """A relative scale source with the reason, e.g. "none (relative; the model is not metric)"."""
    return f"{RELATIVE[:-1]}; {reason})"


def is_relative(scale_source: str) -> bool:
    """Whether a vode/status ``scale_source`` says the published depth / motion is relative: every
    relative source the nodes report starts as RELATIVE does, also behind the "auto: " or
    "depth node: " the depth and odometry nodes put in front."""
    return RELATIVE[:-1] in scale_source


@dataclass
class ScaleEstimator:
    mode: str = "model"
    camera_height: float = 1.65     # metres, for mode camera_height
    smoothing: float = 0.9          # EMA weight of the previous estimate
    warmup: int = 10                # frames, for mode stereo_start
    scale: float = 1.0
    updates: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"scale_mode '{self.mode}' unknown; choose one of {', '.join(MODES)}")

    @property
    def needs_stereo(self) -> bool:
        return self.mode in ("stereo", "stereo_start")

    @property
    def frozen(self) -> bool:
        return self.mode in ("model", "none") or (self.mode == "stereo_start" and self.updates >= self.warmup)

    def source(self) -> str:
        return {"model": METRIC_MODEL, "none": RELATIVE,
                "stereo": "stereo baseline", "camera_height": "camera height over ground plane",
                "stereo_start": "stereo start" + (" (frozen)" if self.frozen else "")}[self.mode]

    def observe(self, ratio: float | None) -> float:
        """Feed one raw measurement of the factor (None = no measurement this frame)."""
        if ratio is None or not np.isfinite(ratio) or ratio <= 0 or self.frozen:
            return self.scale
        self.scale = ratio if self.updates == 0 else self.smoothing * self.scale + (1 - self.smoothing) * ratio
        self.updates += 1
        return self.scale

    def observe_depth(self, depth_unscaled: np.ndarray, k_net: np.ndarray) -> float:
        """camera_height mode: measure from the unscaled network depth."""
        h = ground_height(depth_unscaled, k_net)
        return self.observe(self.camera_height / h if h else None)
