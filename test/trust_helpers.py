"""Models and scenes for the scale-trust tests: the shipped models recorded as a driving model with
its training depth range, and an indoor-looking scene seen through a driving camera's field of view."""
from __future__ import annotations

import json
import math

import numpy as np
import onnx

# What `vode export` records (training/depth_range.py) for the shipped model on its training frames
# (KITTI 00 + 07): the spread p95/p5 of its depth, about 7x on roads.
TRAIN_RANGE = {"p5": 6.165, "p50": 12.848, "p95": 43.77, "spread": 7.147, "frames": 16}


def models_with_metadata(src, dst, props: dict[str, str]):
    """The shipped models (``src``) copied to ``dst`` with ``props`` added to their ONNX metadata."""
    for name in ("depth.onnx", "pose.onnx"):
        model = onnx.load(str(src / name))
        meta = {p.key: p.value for p in model.metadata_props}
        meta.update(props)
        del model.metadata_props[:]
        for k, v in meta.items():
            e = model.metadata_props.add()
            e.key, e.value = k, v
        onnx.save(model, str(dst / name))
    return dst


def driving_models(src, dst, domain: str = "driving", depth_range: bool = True, **props):
    """The shipped models copied to ``dst`` as a metric model of ``domain`` trained at ~82 deg field of
    view (with the training depth range unless ``depth_range`` is false), + ``props``."""
    meta = {"vode.metric_scale": "true", "vode.train_domain": domain, "vode.train_hfov_deg": json.dumps([81.6, 81.9])}
    if depth_range:
        meta["vode.train_depth_range"] = json.dumps(TRAIN_RANGE)
    return models_with_metadata(src, dst, {**meta, **props})


def room_image(width: int = 640, height: int = 480, hfov_deg: float = 81.7):
    """An indoor-looking scene: a textured room (a wall at 3 m, side walls, floor, ceiling) seen by a
    camera with a driving camera's field of view -> (grey uint8 image, K, true depth)."""
    fx = width / (2 * math.tan(math.radians(hfov_deg / 2)))
    k = np.array([[fx, 0, width / 2], [0, fx, height / 2], [0, 0, 1.0]])
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    x, y = (u - k[0, 2]) / fx, (v - k[1, 2]) / fx
    hits = [np.full_like(x, 3.0)]
    for plane, coord in ((2.0, x), (-2.0, x), (1.0, y), (-1.5, y)):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = plane / coord
        t[(t <= 0) | ~np.isfinite(t)] = np.inf
        hits.append(t)
    z = np.min(np.stack(hits), axis=0)
    tex = 0.5 + 0.2 * np.sin(7 * x * z + 3 * y * z) + 0.15 * np.sin(11 * y * z - 5 * z) + 0.1 * np.cos(13 * z + 2 * x * z)
    return np.clip(tex * 255, 0, 255).astype(np.uint8), k, z
