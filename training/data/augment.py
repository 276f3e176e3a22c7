"""Snippet augmentations (torch RNG, so the trainer's seeding and resume cover them).

- :func:`random_scale_crop` — SfMLearner's (TF code and SfmLearner-Pytorch): scale every image of
  the snippet by independent factors sx, sy drawn from [1, 1 + max_extra], then crop a random
  window of the original size; K follows (pixel centres as OpenCV: u' = (u + 0.5) s - 0.5 - offset).
  Changes the images the losses compare, since it is a change of camera, not of colour.
- :func:`mirror_snippet` — monodepth2's left-right flip, with K, stereo roles and motions kept exact.
- :func:`colour_jitter` — brightness and contrast (all channels), saturation and hue (RGB only),
  the same factors for every image of a snippet (monodepth2); only the network inputs get it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_scale_crop(images: list[torch.Tensor], k: torch.Tensor, max_extra: float,
                      nearest: list[torch.Tensor] = ()) -> tuple[list[torch.Tensor], torch.Tensor]:
    """images: tensors (..., C, H, W) of one snippet (same H, W); k (3, 3) -> (scaled-cropped images, new K).

    ``nearest``: maps with the same geometry that must not be blended (sensor depth, where 0 means
    no reading): scaled by nearest neighbour and appended to the returned images, values kept."""
    height, width = images[0].shape[-2:]
    sx, sy = (1.0 + torch.rand(2) * max_extra).tolist()
    h2, w2 = max(height, int(round(height * sy))), max(width, int(round(width * sx)))
    ox = int(torch.randint(0, w2 - width + 1, ()).item())
    oy = int(torch.randint(0, h2 - height + 1, ()).item())
    out = []
    for x in images:
        flat = x.reshape(-1, *x.shape[-3:])
        big = F.interpolate(flat, size=(h2, w2), mode="bilinear", align_corners=False)
        out.append(big[..., oy:oy + height, ox:ox + width].reshape(x.shape).clamp(0, 1))
    for x in nearest:
        flat = x.reshape(-1, *x.shape[-3:])
        big = F.interpolate(flat, size=(h2, w2), mode="nearest")
        out.append(big[..., oy:oy + height, ox:ox + width].reshape(x.shape))
    ax, ay = w2 / width, h2 / height                       # the factors actually applied
    k2 = k.clone()
    k2[0, 0] = k[0, 0] * ax
    k2[1, 1] = k[1, 1] * ay
    k2[0, 2] = (k[0, 2] + 0.5) * ax - 0.5 - ox
    k2[1, 2] = (k[1, 2] + 0.5) * ay - 0.5 - oy
    return out, k2


class ColourJitter:
    """One draw of jitter factors, applied to any number of (..., C, H, W) tensors in [0, 1]."""

    def __init__(self, brightness: float, contrast: float, saturation: float = 0.0, hue: float = 0.0):
        # Draw order: brightness, contrast (as kitti_snippets always did), then saturation, hue if on.
        self.b = 1.0 + (torch.rand(()) * 2 - 1) * brightness
        self.c = 1.0 + (torch.rand(()) * 2 - 1) * contrast
        self.s = 1.0 + (torch.rand(()) * 2 - 1) * saturation if saturation > 0 else None
        self.h = (torch.rand(()) * 2 - 1) * hue if hue > 0 else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(-3, -2, -1), keepdim=True)
        x = ((x - mean) * self.c + mean) * self.b
        if x.shape[-3] == 3 and (self.s is not None or self.h is not None):
            x = x.clamp(0, 1)
            if self.s is not None:
                grey = (0.299 * x[..., 0:1, :, :] + 0.587 * x[..., 1:2, :, :] + 0.114 * x[..., 2:3, :, :])
                x = grey + (x - grey) * self.s
            if self.h is not None:
                x = _rotate_hue(x, float(self.h) * 2 * math.pi)
        return x.clamp(0, 1)


def _rotate_hue(x: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate the chroma of RGB (..., 3, H, W) by ``angle`` radians in YIQ space."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=x.dtype)
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=x.dtype)
    mat = torch.linalg.inv(to_yiq) @ rot @ to_yiq
    return torch.einsum("ij,...jhw->...ihw", mat, x)


def colour_jitter(images: list[torch.Tensor], brightness: float, contrast: float, saturation: float = 0.0,
                  hue: float = 0.0) -> list[torch.Tensor]:
    jit = ColourJitter(brightness, contrast, saturation, hue)
    return [jit(x) for x in images]


MIRROR = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))   # x -> -x: the mirror image of the world


def mirror_intrinsics(k: torch.Tensor, width: int) -> torch.Tensor:
    """K (3, 3) of a camera whose image is flipped left-right: cx -> W - 1 - cx (pixel centres)."""
    k2 = k.clone()
    k2[0, 2] = width - 1 - k[0, 2]
    return k2


def mirror_motion(t_src_tgt: torch.Tensor, baseline: float = 0.0, swap: bool = False) -> torch.Tensor:
    """Motions (..., 4, 4) of a camera -> those seen in the left-right mirrored images.

    ``swap``: the mirrored snippet's camera is the *right* one of a stereo pair (see
    :func:`mirror_snippet`); its motion is the left camera's conjugated by T_right_left first."""
    t = t_src_tgt
    if swap:
        e = torch.eye(4, dtype=t.dtype)
        e[0, 3] = -baseline                                   # T_right_left: X_right = X_left - [b, 0, 0]
        t = e @ t @ torch.linalg.inv(e)
    return MIRROR.to(t.dtype) @ t @ MIRROR.to(t.dtype)


def mirror_snippet(tgt: torch.Tensor, src: torch.Tensor, k: torch.Tensor, right: torch.Tensor | None = None,
                   right_src: torch.Tensor | None = None):
    """Flip a snippet left-right (monodepth2's flip augmentation), keeping its geometry exact.

    tgt (C, H, W), src (S, C, H, W), k (3, 3); with a stereo pair also right (C, H, W) and right_src
    (S, C, H, W). In the mirror image of a rectified pair the right camera is on
    the left, so the flipped right images become the left camera's and the flipped left images the
    right camera's: the pair stays a standard one with the same positive baseline (the hint, the
    stereo warp and every stereo loss need no sign). Motions follow with :func:`mirror_motion`
    (``swap`` = a stereo pair was given). -> (tgt, src, k, right, right_src)."""
    width = tgt.shape[-1]
    flip = lambda x: torch.flip(x, dims=[-1])                 # noqa: E731
    k2 = mirror_intrinsics(k, width)
    if right is None:
        return flip(tgt), flip(src), k2, None, None
    return flip(right), flip(right_src), k2, flip(tgt), flip(src)
