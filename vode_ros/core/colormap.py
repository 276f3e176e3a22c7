"""Depth colouring for viewers and reports (numpy + matplotlib's colour tables, no pyplot).

:func:`depth_colormap`: depth (m) -> BGR uint8 image, inverse-depth 'magma' colouring via a
256-entry LUT built once (near = bright, far = dark, invalid = black). Cheap enough to run in
the depth node's callback.
"""
from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=8)
def colormap_lut(name: str = "magma") -> np.ndarray:
    """(256, 3) uint8 BGR lookup table of a matplotlib colour map (built once, cached)."""
    from matplotlib import colormaps

    rgba = colormaps[name](np.linspace(0.0, 1.0, 256))
    lut = np.round(rgba[:, 2::-1] * 255.0).astype(np.uint8)  # RGB -> BGR
    lut.setflags(write=False)
    return lut


def depth_colormap(depth: np.ndarray, vmin: float | None = None, vmax: float | None = None,
                   cmap: str = "magma") -> np.ndarray:
    """Colour a depth map (metres, (H, W)) by inverse depth -> (H, W, 3) uint8 **BGR**.

    Inverse depth is normalised linearly between ``1/vmax`` (colour-map start, dark) and
    ``1/vmin`` (end, bright) and clipped. Defaults when None: ``vmin`` = 5th and ``vmax`` =
    95th percentile of the valid depths of this image (pass fixed values for a stable colour
    scale over a stream). Invalid pixels (<= 0, NaN, inf) are black.
    """
    d = np.asarray(depth, dtype=np.float32)
    if d.ndim == 3 and d.shape[-1] == 1:
        d = d[..., 0]
    if d.ndim != 2:
        raise ValueError(f"depth must be (H, W), got {d.shape}")
    valid = np.isfinite(d) & (d > 0)
    out = np.zeros(d.shape + (3,), dtype=np.uint8)
    if not valid.any():
        return out
    if vmin is None or vmax is None:
        lo_p, hi_p = np.percentile(d[valid], [5.0, 95.0])
        vmin = float(lo_p) if vmin is None else vmin
        vmax = float(hi_p) if vmax is None else vmax
    if vmin <= 0 or vmax <= 0:
        raise ValueError(f"vmin and vmax must be positive depths, got {vmin}, {vmax}")
    inv_lo, inv_hi = 1.0 / max(vmin, vmax), 1.0 / min(vmin, vmax)
    span = inv_hi - inv_lo
    inv = 1.0 / d[valid]
    t = (inv - inv_lo) / span if span > 0 else np.full_like(inv, 0.5)
    idx = np.clip(t * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out[valid] = colormap_lut(cmap)[idx]
    return out
