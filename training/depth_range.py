"""The depth range a model predicts on its own training frames, for the export metadata
(``vode.train_depth_range``): the run time compares a camera's scene with it before it trusts
the model's metres there (vode_ros.runtime.metric_trust). The spread (95th / 5th percentile of
one frame's depth) is scale-free: a road scene spans 5-9x (a few metres of road to the horizon),
an office or a room 2.5-3.5x, whatever the net believes the metres to be."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

FRAMES = 8      # training frames sampled evenly (a forward pass each, at export)


def training_depth_range(method, cfg: dict[str, Any], frames: int = FRAMES) -> dict[str, float] | None:
    """{p5, p50, p95 (metres, medians over frames), spread (median p95/p5), frames}, or None
    when the training data is not on this machine."""
    import copy

    from vode_ros.core.geometry import disp_to_depth

    from .data import build_dataset

    c = copy.deepcopy(cfg)
    c["data"].update(augment=False, stereo=False, offsets=[-1], max_stride=1, static_filter="none", preload=False)
    try:
        ds = build_dataset(c)
    except (OSError, ValueError, KeyError):
        return None
    picks = np.unique(np.linspace(0, len(ds) - 1, min(frames, len(ds))).round().astype(int))
    module = method.export_modules()["depth"].eval()
    info = method.export_info()
    mean = torch.tensor(info["mean"], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(info["std"], dtype=torch.float32).view(1, -1, 1, 1)
    rows = []
    with torch.no_grad():
        for i in picks:
            x = (ds[int(i)]["tgt"][None] - mean) / std
            # A recurrent depth net (RNN-MVOD) takes its state too: a first frame, from zero state.
            state = module.zero_state() if hasattr(module, "zero_state") else []
            out = module(x, *state)
            inv = (out[0] if isinstance(out, (tuple, list)) else out)[0, 0].numpy()
            depth = disp_to_depth(inv, float(info["min_depth"]), float(info["max_depth"]))
            p5, p50, p95 = np.percentile(depth, [5, 50, 95])
            rows.append((p5, p50, p95, p95 / p5))
    if not rows:
        return None
    med = np.median(np.array(rows), axis=0)
    return {"p5": round(float(med[0]), 3), "p50": round(float(med[1]), 3), "p95": round(float(med[2]), 3),
            "spread": round(float(med[3]), 3), "frames": len(rows)}


def depth_range_metadata(method, cfg: dict[str, Any]) -> dict[str, str]:
    found = training_depth_range(method, cfg)
    return {"vode.train_depth_range": json.dumps(found)} if found else {}
