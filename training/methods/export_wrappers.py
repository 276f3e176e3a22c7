"""Export wrappers shared by the methods: what depth.onnx computes from a trained depth net."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn


class FinestInvDepth(nn.Module):
    """Export wrapper: the finest inverse depth (B, 1, H, W) of a multi-scale depth net.

    The attribute name ``depth_net`` keeps the wrapped parameters' names ("depth_net.<...>").
    ``metadata``: extra ``vode.*`` entries for the ONNX file.
    """

    def __init__(self, depth_net: nn.Module, metadata: dict[str, str] | None = None):
        super().__init__()
        self.depth_net = depth_net
        self._metadata = dict(metadata or {})

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.depth_net(image)[0]

    def onnx_io(self) -> dict[str, Any]:
        return {"input_names": ["image"], "output_names": ["inv_depth"], "metadata": self._metadata}
