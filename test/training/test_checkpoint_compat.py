"""The shipped checkpoint loads into the nets as they are now: parameter names (state_dict keys)
and shapes are part of the checkpoint format, so restructuring the code must keep them."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vode_ros.core.resources import resource_path
from vode_training.checkpoint import load_checkpoint, method_from_checkpoint

SHIPPED = resource_path("models", "sfmlearner_driving.pt")


@pytest.mark.skipif(not Path(SHIPPED).is_file(), reason="models/sfmlearner_driving.pt not present")
def test_shipped_checkpoint_loads_strictly():
    ckpt = load_checkpoint(SHIPPED)
    method = method_from_checkpoint(ckpt)          # load_state_dict(strict=True) for every net
    for name, state in ckpt["models"].items():
        own = method.nets[name].state_dict()
        assert list(own) == list(state), f"{name}: parameter names changed"
        assert all(own[k].shape == state[k].shape for k in own), f"{name}: parameter shapes changed"
    with torch.no_grad():
        method.eval()
        depth = method.export_modules()["depth"]
        c, h, w = ckpt["channels"], ckpt["config"]["data"]["height"], ckpt["config"]["data"]["width"]
        out = depth(torch.zeros(1, c, h, w))
    assert out.shape[-2:] == (h, w) and torch.isfinite(out).all()
