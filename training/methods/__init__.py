"""Training methods: a method = nets + a list of loss terms + its config defaults.

A method class subclasses :class:`Method`, declares ``DEFAULTS`` (its ``model`` and ``loss``
config sections, which the config loader validates against) and registers itself by name:

    @register("sfmlearner")
    class SfMLearner(Method): ...

Configs pick it with ``method: sfmlearner``; the trainer only calls ``compute_loss`` and the
exporter only calls ``export_modules`` / ``export_info``, so adding a method touches neither.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn

METHODS: dict[str, type["Method"]] = {}


def register(name: str) -> Callable[[type["Method"]], type["Method"]]:
    def deco(cls: type["Method"]) -> type["Method"]:
        if name in METHODS:
            raise ValueError(f"method {name!r} registered twice")
        cls.name = name
        METHODS[name] = cls
        return cls
    return deco


def get_method(name: str) -> type["Method"]:
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; known: {sorted(METHODS)}")
    return METHODS[name]


def build_method(cfg: dict[str, Any], channels: int) -> "Method":
    """Instantiate the method named by cfg['method'] for images with ``channels`` channels."""
    return get_method(cfg["method"])(cfg, channels)


class LossTerm:
    """One weighted term of a method's loss: ``weight * compute(out, batch)``."""

    name = "term"

    def __init__(self, weight: float = 1.0):
        self.weight = float(weight)

    def compute(self, out: dict[str, Any], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, out: dict[str, Any], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.weight * self.compute(out, batch)


class Method(nn.Module):
    """Base class. Subclasses set DEFAULTS, build ``self.nets`` (nn.ModuleDict) and ``self.terms``."""

    name = "base"
    DEFAULTS: dict[str, dict[str, Any]] = {"model": {}, "loss": {}}

    def __init__(self, cfg: dict[str, Any], channels: int):
        super().__init__()
        self.cfg = cfg
        self.channels = channels
        self.nets = nn.ModuleDict()
        self.terms: list[LossTerm] = []

    # -- what subclasses provide ------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Run the nets on a batch -> predictions the loss terms read."""
        raise NotImplementedError

    def metrics(self, out: dict[str, Any], batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Extra scalars for logging (no gradients)."""
        return {}

    def export_modules(self) -> dict[str, nn.Module]:
        """{'depth': image -> inv_depth (finest), 'pose': frames -> pose vector}."""
        raise NotImplementedError

    def export_info(self) -> dict[str, Any]:
        """Facts the exporter writes into the ONNX metadata (mean, std, metric_scale, ...)."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------
    def register_normalisation(self, model_cfg: dict[str, Any]) -> None:
        """Buffers ``mean``/``std`` (1, C, 1, 1) from model.mean / model.std (1 or C values)."""
        mean, std = list(model_cfg["mean"]), list(model_cfg["std"])
        for key, val in (("mean", mean), ("std", std)):
            if len(val) not in (1, self.channels):
                raise ValueError(f"model.{key} needs 1 or {self.channels} values, got {val}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] images (..., C, H, W) -> network input."""
        return (x - self.mean) / self.std

    def normalise_pairs(self, pairs: torch.Tensor) -> torch.Tensor:
        """(N, 2C, H, W) [0, 1] -> normalised, each half with the image mean/std."""
        c = self.channels
        return torch.cat([self.normalise(pairs[:, :c]), self.normalise(pairs[:, c:])], dim=1)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, float]]:
        """-> (total, {term name: weighted value}, {metric: float})."""
        out = self(batch)
        terms = {t.name: t(out, batch) for t in self.terms}
        total = sum(terms.values())
        with torch.no_grad():
            metrics = self.metrics(out, batch)
        return total, terms, metrics


from . import sfmlearner  # noqa: E402,F401  (registers the built-in methods)
from . import undeepvo, deep_vo_feat  # noqa: E402,F401  (UnDeepVO, Deep-VO-Feat)
from . import rnn_mvod  # noqa: E402,F401
from . import geonet, lkvo  # noqa: E402,F401  (GeoNet, LKVOLearner/DDVO)
