"""Procedural textures of the synthetic scenes: band-limited value noise, materials, and the
shading that fades patterns finer than a pixel's footprint (so renders do not alias)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AMP0, DECAY = 0.6, 1.05   # noise octave amplitude: AMP0 * DECAY ** octave (fine detail strong)


class Noise:
    """2-D value noise (smoothstep interpolation) on a hashed lattice, deterministic by seed."""

    SIZE = 1024

    def __init__(self, rng: np.random.Generator):
        self.perm = rng.permutation(self.SIZE).astype(np.int64)
        self.vals = rng.uniform(-1.0, 1.0, self.SIZE).astype(np.float32)

    def __call__(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        fu = np.floor(u)
        fv = np.floor(v)
        iu = fu.astype(np.int64) & (self.SIZE - 1)
        iv = fv.astype(np.int64) & (self.SIZE - 1)
        tu = (u - fu).astype(np.float32)
        tv = (v - fv).astype(np.float32)
        su = tu * tu * (3.0 - 2.0 * tu)
        sv = tv * tv * (3.0 - 2.0 * tv)
        p, m = self.perm, self.SIZE - 1
        row0 = p[iu]
        row1 = p[(iu + 1) & m]
        h00 = self.vals[p[(row0 + iv) & m]]
        h01 = self.vals[p[(row0 + iv + 1) & m]]
        h10 = self.vals[p[(row1 + iv) & m]]
        h11 = self.vals[p[(row1 + iv + 1) & m]]
        a = h00 + su * (h10 - h00)
        b = h01 + su * (h11 - h01)
        return a + sv * (b - a)


def fade(wavelength: np.ndarray | float, footprint: np.ndarray, min_px: float) -> np.ndarray:
    """1 when the wavelength spans >= 2*min_px pixels, 0 below min_px, linear in between."""
    ratio = np.asarray(wavelength, dtype=np.float32) / np.maximum(footprint, 1e-6)
    return np.clip(ratio / min_px - 1.0, 0.0, 1.0)


@dataclass
class Material:
    color_a: np.ndarray      # (3,) RGB in [0, 1]
    color_b: np.ndarray
    noise_wavelength: float  # largest octave (metres)
    octaves: int
    checker: float           # checker cell size (metres), 0 = none
    stripes: float           # stripe period along v (metres), 0 = none
    offset: tuple[float, float]


def random_material(rng: np.random.Generator, kind: str) -> Material:
    if kind == "ground":
        base = rng.uniform(0.25, 0.45)
        ca = np.array([base, base, base * 1.05]) + rng.uniform(-0.03, 0.03, 3)
        cb = ca * rng.uniform(1.6, 2.0)
        return Material(ca, np.clip(cb, 0, 1), rng.uniform(1.5, 3.0), 8, 0.0, 0.0,
                         tuple(rng.uniform(0, 500, 2)))
    hue = rng.uniform(0.15, 0.85, 3)
    ca = np.clip(hue * rng.uniform(0.5, 0.9), 0.05, 1.0)
    cb = np.clip(1.0 - ca * rng.uniform(0.3, 0.8, 3), 0.05, 1.0)
    checker = float(rng.choice([0.0, rng.uniform(0.3, 1.2)], p=[0.5, 0.5]))
    stripes = float(rng.choice([0.0, rng.uniform(0.4, 1.5)], p=[0.7, 0.3])) if checker == 0 else 0.0
    return Material(ca, cb, rng.uniform(0.8, 2.5), 8, checker, stripes, tuple(rng.uniform(0, 500, 2)))


def shade_pattern(noise: Noise, mats: list[Material], mat_idx: np.ndarray, u: np.ndarray, v: np.ndarray,
                   footprint: np.ndarray, min_px: float) -> np.ndarray:
    """Pattern value in [0, 1] per hit (vectorised over hits with per-hit materials)."""
    off = np.array([m.offset for m in mats], dtype=np.float32)[mat_idx]
    lam0 = np.array([m.noise_wavelength for m in mats], dtype=np.float32)[mat_idx]
    n_oct = np.array([m.octaves for m in mats], dtype=np.int32)[mat_idx]
    checker = np.array([m.checker for m in mats], dtype=np.float32)[mat_idx]
    stripes = np.array([m.stripes for m in mats], dtype=np.float32)[mat_idx]
    uu = u + off[:, 0]
    vv = v + off[:, 1]
    total = np.zeros(u.shape, np.float32)
    lam = lam0.copy()
    for o in range(int(n_oct.max(initial=0))):
        amp = AMP0 * (DECAY ** o)           # slow fall-off: strong fine detail
        w = fade(lam, footprint, min_px) * (o < n_oct)
        if np.any(w > 0):
            total += amp * w * noise(uu / lam + 17.0 * o, vv / lam - 31.0 * o)
        lam = lam * 0.5
    # checker: tanh-smoothed sin * sin, transition width ~ 1.5 footprints
    has_ck = checker > 0
    if np.any(has_ck):
        s = np.where(has_ck, checker, 1.0)
        prod = np.sin(np.pi * uu / s) * np.sin(np.pi * vv / s)
        sharp = np.clip(s / (np.pi * 1.5 * np.maximum(footprint, 1e-6)), 0.0, 12.0)
        ck = np.tanh(sharp * prod) * fade(2.0 * s, footprint, min_px)
        total += np.where(has_ck, 0.45 * ck, 0.0)
    has_st = stripes > 0
    if np.any(has_st):
        s = np.where(has_st, stripes, 1.0)
        sharp = np.clip(s / (np.pi * 1.5 * np.maximum(footprint, 1e-6)), 0.0, 12.0)
        st = np.tanh(sharp * np.sin(2 * np.pi * vv / s)) * fade(s, footprint, min_px)
        total += np.where(has_st, 0.4 * st, 0.0)
    return np.clip(0.5 + 0.5 * total, 0.0, 1.0)
