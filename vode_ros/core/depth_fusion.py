"""Fusion of a stereo (SGBM) depth map with a network's depth of the same left image.

SGBM is sharp and metric where it matches (thin poles, trees, a parked car's outline) but has
holes (occlusions, texture-less walls, the left border) and its error grows with depth (one
pixel of disparity is 15 % at 7 px, 50 % at 2 px). A monocular net is dense and smooth, right in
shape, wrong in scale, blurry at object edges. Fused:

1. the holes are filled from two estimates: the net scaled by the stereo ratio (median SGBM / net
   over the valid pixels of at least ``min_ratio_disparity`` px, where one pixel of error is
   under 20 %) and then by a local ratio (log(SGBM / net) averaged edge-aware over the valid
   neighbours: normalised guided filtering, the grey image as guide, He et al. 2013, so a hole
   takes the scale of the surface it belongs to, not of the object across an image edge); and
   SGBM's own depth interpolated the same way where valid pixels are near. Each one's error is
   measured in this very frame on SGBM pixels hidden from it (blocks, one in five), and they are
   blended by inverse variance: a net that knows this kind of scene fills the holes with its
   shape, a net that does not gives way to the interpolation;
2. where SGBM has a value it is blended with the scaled net in log depth by inverse variance:
   SGBM's relative error is ``disparity_noise_px / disparity`` (large far away and at small
   disparities), the net's is the one measured on the hidden pixels;
3. the confidence (0..1) of each pixel is the probability, under that error model (Gaussian in
   log depth), that the fused depth lies within ``tolerance`` (10 %) of the truth.

Left-right consistency of SGBM is checked by the matcher itself (``disp12MaxDiff``,
vode_ros.core.stereo_depth); pixels it refuses arrive here as 0. numpy + OpenCV only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_VALID = 50             # SGBM pixels needed to scale the net at all
NET_SIGMA_FLOOR = 0.03     # the net's log-depth error is never taken as better than 3 %
STEREO_SIGMA_FLOOR = 0.01


@dataclass
class FusedDepth:
    depth: np.ndarray          # (H, W) float32 metres, > 0 everywhere the net is
    confidence: np.ndarray     # (H, W) float32 in [0, 1]
    scale: float               # the stereo ratio applied to the net (nan: too few SGBM pixels)
    net_sigma: float           # the scaled net's log-depth error on SGBM pixels hidden from it, this frame
    stereo_share: float        # share of pixels where SGBM contributed


def _box(x: np.ndarray, r: int) -> np.ndarray:
    import cv2

    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)


class GuidedFilter:
    """He et al.'s guided filter with the grey ``guide`` (H, W) in [0, 1]; the guide's local
    statistics are computed once for all the maps filtered with it."""

    def __init__(self, guide: np.ndarray, radius: int, eps: float):
        self.guide, self.radius = np.asarray(guide, np.float32), int(radius)
        self.mean_i = _box(self.guide, self.radius)
        self.var_eps = _box(self.guide * self.guide, self.radius) - self.mean_i * self.mean_i + np.float32(eps)

    def __call__(self, src: np.ndarray) -> np.ndarray:
        src = np.asarray(src, np.float32)
        mean_p = _box(src, self.radius)
        a = (_box(self.guide * src, self.radius) - self.mean_i * mean_p) / self.var_eps
        b = mean_p - a * self.mean_i
        return _box(a, self.radius) * self.guide + _box(b, self.radius)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter of ``src`` (H, W) with the grey ``guide`` (H, W) in [0, 1]."""
    return GuidedFilter(guide, radius, eps)(src)


def _median(x: np.ndarray, most: int = 8192) -> float:
    """Median of a 1-D sample, of an even subsample where it is long (robust statistics of a frame
    need no more; keeps the fusion cheap at the node's rate)."""
    step = max(1, x.size // most)
    return float(np.median(x[::step]))


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), x >= 0."""
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return 1.0 - poly * np.exp(-x * x)


def fuse_depth(net_depth: np.ndarray, stereo_depth: np.ndarray, image: np.ndarray, fx: float, baseline: float,
               disparity_noise_px: float = 0.5, tolerance: float = 0.10, radius: int | None = None,
               eps: float = 1e-3, min_ratio_disparity: float = 5.0) -> FusedDepth:
    """Fuse ``net_depth`` (H, W, any scale) with ``stereo_depth`` (H, W metres, 0 = invalid) of the
    same left ``image`` (H, W) grey uint8 or float in [0, 1]; ``fx`` (pixels, at this resolution)
    and ``baseline`` (m) turn the stereo depth back into disparities for its error model.
    Without enough valid SGBM pixels the net is returned unscaled with confidence 0."""
    net = np.asarray(net_depth, np.float32)
    ref = np.asarray(stereo_depth, np.float32)
    if net.shape != ref.shape or np.asarray(image).shape[:2] != net.shape:
        raise ValueError(f"net {net.shape}, stereo {ref.shape} and image {np.asarray(image).shape} must share (H, W)")
    guide = np.asarray(image, np.float32)
    if guide.ndim == 3:
        guide = guide.mean(axis=2)
    if guide.max() > 1.5:
        guide = guide / 255.0
    h, w = net.shape
    ok_net = np.isfinite(net) & (net > 0)
    valid = (ref > 0) & np.isfinite(ref) & ok_net
    if int(valid.sum()) < MIN_VALID:
        return FusedDepth(np.where(ok_net, net, 0).astype(np.float32), np.zeros_like(net), float("nan"),
                          float("nan"), 0.0)
    log_ratio = np.zeros_like(net)
    log_ratio[valid] = np.log(ref[valid]) - np.log(net[valid])
    disparity = np.where(valid, fx * baseline / np.maximum(ref, 1e-6), 0.0)
    # Only matches precise enough set the net's scale: far (small-disparity) SGBM would drag it.
    scaling = valid & (disparity >= min_ratio_disparity)
    if int(scaling.sum()) < MIN_VALID:
        scaling = valid
    global_log = _median(log_ratio[scaling])
    r = radius or max(4, w // 24)
    log_ref = np.log(np.where(valid, ref, np.float32(1.0)))
    log_net = np.log(np.where(ok_net, net, np.float32(1.0)))
    gf = GuidedFilter(guide, r, eps)

    def fill(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """From the SGBM pixels in ``mask``: the net's log depth locally scaled, SGBM's log depth
        interpolated, and how much valid support each pixel has around it, 0..1 (normalised
        guided filtering: the same local linear model of the guide weighs numerator and
        denominator, so an average stays on the image side of an edge)."""
        m = mask.astype(np.float32)
        den = gf(m)
        have = np.clip(den / 0.05, 0.0, 1.0)
        safe = np.maximum(den, 0.05)
        local = global_log + gf((log_ratio - global_log) * m) / safe * have
        base = _median(log_ref[mask]) if mask.any() else global_log
        interp = base + gf((log_ref - base) * m) / safe
        return log_net + local, interp, have

    def spread(x: np.ndarray) -> float:
        return 1.4826 * _median(np.abs(x - _median(x))) if x.size else float("inf")

    # Each hole filler's error, measured in this frame on SGBM pixels hidden from it (blocks of
    # the filter's size, one in five): the locally scaled net and SGBM's own interpolation near
    # valid pixels; far from any (SGBM's left border, large texture-less areas) the net scaled by
    # the global ratio alone, and a constant (SGBM's median depth) as the last resort.
    by, bx = np.mgrid[0:h, 0:w]
    hidden = scaling & ((by // r + 2 * (bx // r)) % 5 == 0)
    net_h, int_h, have_h = fill(scaling & ~hidden)
    probe = hidden & (have_h >= 1.0)
    enough = int(probe.sum()) >= MIN_VALID
    sigma_local = max(NET_SIGMA_FLOOR, spread((net_h - log_ref)[probe])) if enough else np.inf
    sigma_int = max(NET_SIGMA_FLOOR, spread((int_h - log_ref)[probe])) if enough else np.inf
    sigma_global = max(NET_SIGMA_FLOOR, spread((log_net + global_log - log_ref)[scaling]))
    median_log = _median(log_ref[scaling])
    sigma_const = max(NET_SIGMA_FLOOR, spread(log_ref[scaling] - median_log))
    log_netl, log_int, have = fill(scaling)
    sigma_net = np.minimum(sigma_global, np.where(have >= 1.0, sigma_local, sigma_global))   # (H, W)
    w_n = 1.0 / sigma_net ** 2
    w_i = have / sigma_int ** 2
    w_c = 1.0 / sigma_const ** 2
    log_hole = (w_n * log_netl + w_i * log_int + w_c * median_log) / (w_n + w_i + w_c)
    net_sigma = float(min(sigma_local, sigma_global))
    sigma_st = np.where(valid, np.maximum(STEREO_SIGMA_FLOOR, disparity_noise_px / np.maximum(disparity, 1e-6)), np.inf)
    w_st = np.where(valid, 1.0 / sigma_st ** 2, 0.0)
    # Where SGBM has a value it meets the net only: its interpolation and median are SGBM again.
    log_fused = np.where(valid, (w_st * log_ref + w_n * log_netl) / (w_st + w_n), log_hole)
    # The confidence counts the hole fillers as one (their errors are not independent): the best of them.
    sigma = 1.0 / np.sqrt(w_st + np.maximum(np.maximum(w_n, w_i), w_c))
    depth = np.where(ok_net | valid, np.exp(log_fused), 0.0).astype(np.float32)
    confidence = np.where(depth > 0, _erf(np.log1p(tolerance) / (sigma * np.sqrt(2.0))), 0.0).astype(np.float32)
    share = float((w_st > w_n).mean())
    return FusedDepth(depth, confidence, float(np.exp(global_log)), net_sigma, share)


def render_right_view(left: np.ndarray, depth: np.ndarray, fx: float, baseline: float) -> np.ndarray:
    """The right image of a rectified pair, rendered by forward-warping ``left`` (H, W) uint8 with
    its ``depth`` (H, W metres, 0 = unknown) by the disparity fx * baseline / depth: nearer
    pixels win where several land on one (a z-buffer); what no left pixel reaches (occlusions,
    unknown depth) is inpainted. Simulates a stereo camera where only a depth sensor was."""
    import cv2

    left = np.asarray(left)
    h, w = depth.shape
    v, u = np.nonzero(depth > 0)
    disp = fx * baseline / depth[v, u]
    ur = np.rint(u - disp).astype(np.int64)
    keep = (ur >= 0) & (ur < w)
    v, u, ur, disp = v[keep], u[keep], ur[keep], disp[keep]
    order = np.argsort(disp, kind="stable")          # far first: the nearer pixel is written last and wins
    right = np.zeros_like(left)
    hit = np.zeros((h, w), np.uint8)
    right[v[order], ur[order]] = left[v[order], u[order]]
    hit[v[order], ur[order]] = 1
    return cv2.inpaint(right, (1 - hit).astype(np.uint8), 3, cv2.INPAINT_TELEA)
