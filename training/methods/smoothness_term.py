"""The methods' one smoothness loss term: ``losses.smoothness.multiscale_smoothness`` over the
inverse-depth pyramids a method names.

Each method says where its pyramids and images are (``inputs(out, batch)`` -> [(disps, images)],
one pair per view, averaged), which kind (edge-aware or SfMLearner's second order), whether the
inverse depth is mean-normalised first, and how the scales combine.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..losses.smoothness import KINDS, multiscale_smoothness
from . import LossTerm

Inputs = Callable[[dict[str, Any], dict[str, torch.Tensor]], Sequence[tuple[Sequence[torch.Tensor], Any]]]


def target_disps(out: dict[str, Any], batch: dict[str, torch.Tensor]):
    """The usual pair: ``out["disps"]`` against ``batch["tgt"]``."""
    return [(out["disps"], batch["tgt"])]


class SmoothnessTerm(LossTerm):
    name = "smoothness"

    def __init__(self, weight: float, inputs: Inputs = target_disps, kind: str = "edge_aware",
                 normalise: bool = True, reduce: str = "mean", name: str | None = None):
        super().__init__(weight)
        if kind not in KINDS:
            raise ValueError(f"loss.smoothness must be 'edge_aware' or 'second_order', got {kind!r}")
        self.inputs, self.kind, self.normalise, self.reduce = inputs, kind, normalise, reduce
        if name:
            self.name = name

    def compute(self, out, batch):
        parts = [multiscale_smoothness(disps, images, self.kind, self.normalise, self.reduce)
                 for disps, images in self.inputs(out, batch)]
        return parts[0] if len(parts) == 1 else torch.stack(parts).mean()
