"""Snippet augmentations (torch RNG, so the trainer's seeding and resume cover them).

- :func:`random_scale_crop` — SfMLearner's (TF code and SfmLearner-Pytorch): scale every image of
  the snippet by independent factors sx, sy drawn from [1, 1 + max_extra], then crop a random
  window of the original size; K follows (pixel centres as OpenCV: u' = (u + 0.5) s - 0.5 - offset).
  Changes the images the losses compare, since it is a change of camera, not of colour.
- :func:`colour_jitter` — brightness and contrast (all channels), saturation and hue (RGB only),
  the same factors for every image of a snippet (monodepth2); only the network inputs get it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_scale_crop(images: list[torch.Tensor], k: torch.Tensor, max_extra: float
                      ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """images: tensors (..., C, H, W) of one snippet (same H, W); k (3, 3) -> (scaled-cropped images, new K)."""
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
