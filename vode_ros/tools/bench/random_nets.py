"""Randomly initialised nets exported to ONNX (speed does not depend on the weights): the registry's
depth and pose nets and the SfMLearner DispNet baseline. Needs torch."""
from __future__ import annotations

import datetime as _dt
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import MEAN, OPSET, STD


@dataclass
class NetSpec:
    name: str            # dispnet | small | lite (depth); small | lite (pose); shipped
    kind: str            # depth | pose
    label: str
    module: Any = None   # torch module (None for shipped ONNX files)
    params: int = 0
    fp32: Path | None = None
    int8: Path | None = None


def random_nets(channels: int) -> list[NetSpec]:
    """The benchmarked nets, randomly initialised, eval mode (seeded)."""
    import torch
    from vode_training.nets.registry import build_depth_net, build_pose_net

    torch.manual_seed(0)
    specs = [NetSpec("dispnet", "depth", "DispNet (SfMLearner, baseline)", build_depth_net("dispnet", channels)),
             NetSpec("small", "depth", "DepthNet (small)", build_depth_net("small", channels)),
             NetSpec("lite", "depth", "LiteDepthNet", build_depth_net("lite", channels)),
             NetSpec("small", "pose", "PoseNet (small)", build_pose_net("small", channels)),
             NetSpec("lite", "pose", "LitePoseNet", build_pose_net("lite", channels))]
    for s in specs:
        s.module.eval()
        s.params = sum(p.numel() for p in s.module.parameters())
    return specs


def _finest(module):
    import torch.nn as nn

    class Finest(nn.Module):
        """Export wrapper: the finest inverse depth only (as the method's export)."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, image):
            return self.net(image)[0]

    return Finest(module)


def input_shape(kind: str, channels: int, width: int, height: int) -> tuple[int, int, int, int]:
    return (1, channels * (2 if kind == "pose" else 1), height, width)


def export_random(spec: NetSpec, channels: int, width: int, height: int, path: Path) -> Path:
    """torch module -> ONNX with vode metadata (loadable by OnnxModel and the nodes)."""
    import io

    import onnx
    import torch

    in_name, out_name = ("image", "inv_depth") if spec.kind == "depth" else ("frames", "pose")
    module = _finest(spec.module) if spec.kind == "depth" else spec.module
    x = torch.zeros(input_shape(spec.kind, channels, width, height))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():   # the settings of vode_training.export (opset 17, TorchScript exporter)
            torch.onnx.export(module.eval(), (x,), buf, input_names=[in_name], output_names=[out_name],
                              opset_version=OPSET, dynamo=False, do_constant_folding=True)
    model = onnx.load_from_string(buf.getvalue())
    add_metadata(model, {
        "vode.kind": spec.kind, "vode.method": f"bench-random-{spec.name}", "vode.input_width": str(width),
        "vode.input_height": str(height), "vode.channels": str(channels),
        "vode.color": "gray" if channels == 1 else "rgb", "vode.mean": json.dumps(MEAN * channels),
        "vode.std": json.dumps(STD * channels), "vode.metric_scale": "false", "vode.min_depth": "0.1",
        "vode.max_depth": "100.0", "vode.trained_on": "none (random weights, speed only)",
        "vode.train_steps": "0",
        "vode.created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "vode.output": "bench model with random weights"})
    onnx.save(model, str(path))
    return path


def add_metadata(model, meta: dict[str, str]) -> None:
    """Replace the model's metadata_props (in memory; as vode_training.export._set_metadata does on file)."""
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)


def onnx_params(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT))
