"""Export a training checkpoint to ONNX (``depth.onnx``, ``pose.onnx``) with metadata and a parity check.

depth.onnx: input ``image`` float32 [1, C, H, W], normalised as at training,
            (pixel / 255 - mean) / std; output ``inv_depth`` float32 [1, 1, H, W], the finest
            scale, inverse depth in 1/m (metric when ``vode.metric_scale`` is "true").
pose.onnx:  input ``frames`` float32 [1, 2C, H, W] = [target = current, source = previous], each
            half normalised like ``image``; output ``pose`` float32 [1, 6] = T_previous_current as
            [tx, ty, tz, rx, ry, rz] (metres, radians, R = Rz @ Ry @ Rx; vode_ros.core.geometry).

Metadata (``metadata_props``, all strings): vode.kind, vode.method, vode.input_width,
vode.input_height, vode.channels, vode.color, vode.mean, vode.std (JSON lists), vode.metric_scale,
vode.min_depth, vode.max_depth, vode.trained_on, vode.train_steps, vode.created (ISO 8601),
vode.onnx_parity_max_abs, plus vode.output (a one-line description of the output); where the training
frames are on the machine, vode.train_depth_range (JSON: the depth percentiles p5 / p50 / p95 and their
spread p95/p5 that the depth net predicts on its training frames; ``depth_range.py``).

Extra inputs / outputs (recurrent state): a module from ``export_modules`` may have a method
``onnx_io()`` returning {"input_names", "output_names", "make_inputs": fn(the default input above)
-> list of arrays for all inputs, "metadata": extra vode.* entries}; the first input / output
keep the roles above, the others (e.g. ConvLSTM state) are exported and parity-checked too.

Parity: after export, ONNX Runtime (CPU) and torch run the same random and real inputs (two
consecutive frames of the training sequence when its folder exists); the largest absolute
difference must be <= 1e-4 for inverse depth (1/m) and <= 1e-5 for the pose vector, else
ExportParityError. Files are written to temporaries and moved into place (os.replace) only
after both models passed, so a failed export leaves no half-written model behind.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

DEPTH_TOLERANCE = 1e-4   # max |ORT - torch| of inverse depth, 1/m
POSE_TOLERANCE = 1e-5    # max |ORT - torch| of the pose vector
OPSET = 17


class ExportParityError(RuntimeError):
    """ONNX Runtime output differs from torch by more than the tolerance."""


def _real_frames(cfg: dict[str, Any]) -> np.ndarray | None:
    """Two consecutive training frames (2, C, H, W) in [0, 1], or None if the data is not there."""
    from .data import real_frame_pair

    return real_frame_pair(cfg)   # [previous, current] of any data.kind (frames 1, 2 of a KITTI folder)


def _set_metadata(path: Path, meta: dict[str, str], out_shape: tuple[int, ...]) -> None:
    """Write metadata_props, and the static output shape (the TorchScript exporter leaves the
    dimensions after Resize unnamed)."""
    import onnx

    model = onnx.load(str(path))
    dims = model.graph.output[0].type.tensor_type.shape.dim
    del dims[:]
    for n in out_shape:
        dims.add().dim_value = int(n)
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _max_abs_diff(session, name: str | list[str], module: torch.nn.Module, inputs: list[np.ndarray],
                  make_inputs=None) -> float:
    """Largest |ORT - torch| over all outputs; ``make_inputs`` turns one input into all graph inputs."""
    names = [name] if isinstance(name, str) else list(name)
    worst = 0.0
    for x in inputs:
        feeds = [a.astype(np.float32) for a in (make_inputs(x) if make_inputs else [x])]
        ort_outs = session.run(None, dict(zip(names, feeds)))
        with torch.no_grad():
            refs = module(*[torch.from_numpy(a) for a in feeds])
        refs = refs if isinstance(refs, (tuple, list)) else (refs,)
        for ort_out, ref in zip(ort_outs, refs):
            ref = ref.numpy()
            if ort_out.shape != ref.shape:
                raise ExportParityError(f"output shape {ort_out.shape} from ONNX Runtime, torch gives {ref.shape}")
            worst = max(worst, float(np.abs(ort_out - ref).max()))
    return worst


def _camera_metadata(cameras: list[dict[str, Any]], domain: str) -> dict[str, str]:
    """vode.train_fx (frame-weighted median focal length at the network size: the run time rescales
    metric depth by fx_camera / train_fx), vode.train_hfov_deg ([min, max] field of view of the
    training cameras) and vode.train_domain: what the run time checks before it trusts the
    model's metres on a camera (vode_ros.runtime.metric_trust). Focal length and field of view
    come from the cameras with a scale source (``metric``) where the run had any: a camera that
    trained without stereo or poses taught no metres, so it must not widen the trusted range.
    The focal length comes from the cameras that pinned the depth net's metres directly (a stereo
    pair, a depth sensor) where the run had any: ground-truth poses reach the depth only through
    the pose net, and in a mixed set the direct ones are what the net's metres belong to (7-Scenes'
    Kinect, not the desk camera with poses, in the indoor recipe)."""
    meta = {"vode.train_domain": domain} if domain else {}
    if not cameras:
        return meta
    scaled = [c for c in cameras if c.get("metric", True)] or cameras
    direct = [c for c in scaled if {"stereo", "sensor_depth"} & set(c.get("scale_sources", []))] or scaled
    fx = np.repeat([c["fx"] for c in direct], [c["frames"] for c in direct])
    hfov = [c["hfov_deg"] for c in scaled]
    meta.update({"vode.train_fx": f"{float(np.median(fx)):.3f}",
                 "vode.train_hfov_deg": json.dumps([round(min(hfov), 2), round(max(hfov), 2)]),
                 "vode.train_cameras": json.dumps([{k: (round(v, 3) if isinstance(v, float) else v)
                                                    for k, v in c.items()} for c in cameras])})
    return meta


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, seed: int = 0,
                      size: tuple[int, int] | None = None, relative: bool = False) -> dict[str, Any]:
    """checkpoint -> out_dir/depth.onnx (+ pose.onnx when the method has a pose net); returns a report.

    ``size`` (width, height; multiples of 32): the models' input size when it is not the training
    size, e.g. a square camera's 256x256 instead of a squashed 416x128 (the nets are
    convolutional: the same weights at another aspect ratio); the training size is kept in
    vode.train_input_size. ``relative``: record the model as relative depth (vode.metric_scale
    false) although its training had a scale source, where its metres were measured wrong on
    held-out footage: the run time then never publishes them as metres."""
    import onnxruntime as ort

    from .checkpoint import load_checkpoint, method_from_checkpoint
    from .data import describe_data, training_cameras
    from .depth_range import depth_range_metadata

    ckpt = load_checkpoint(checkpoint)
    method = method_from_checkpoint(ckpt)
    cfg = method.cfg
    info = method.export_info()
    d = cfg["data"]
    c, h, w = method.channels, d["height"], d["width"]
    if size is not None:
        w, h = (int(v) for v in size)
        if w <= 0 or h <= 0 or w % 32 or h % 32:
            raise ValueError(f"export size {w}x{h}: width and height must be positive multiples of 32 (the nets' stride)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    mean = np.asarray(info["mean"], np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(info["std"], np.float32).reshape(1, -1, 1, 1)
    rng = np.random.default_rng(seed)
    real = _real_frames(cfg)
    if real is not None and real.shape[-2:] != (h, w):     # another input size: the same frames resized
        real = torch.nn.functional.interpolate(torch.from_numpy(real), size=(h, w), mode="area").numpy()

    def norm(x01: np.ndarray) -> np.ndarray:
        return ((x01 - mean) / std).astype(np.float32)

    rand = [norm(rng.random((2, c, h, w), dtype=np.float32)) for _ in range(2)]
    real_n = norm(real) if real is not None else None
    cases = {
        "depth": ("image", "inv_depth", (1, c, h, w), DEPTH_TOLERANCE,
                  [r[:1] for r in rand] + ([real_n[1:2]] if real_n is not None else []),
                  "inverse depth in 1/m, finest scale, [1,1,H,W]"),
        "pose": ("frames", "pose", (1, 2 * c, h, w), POSE_TOLERANCE,
                 [r.reshape(1, 2 * c, h, w) for r in rand]
                 + ([np.concatenate([real_n[1:2], real_n[0:1]], axis=1)] if real_n is not None else []),
                 "T_previous_current [tx,ty,tz,rx,ry,rz] (m, rad, R=Rz@Ry@Rx), input [current, previous]"),
    }
    modules = method.export_modules()
    camera_meta = _camera_metadata(training_cameras(cfg), d.get("domain", ""))
    camera_meta.update(depth_range_metadata(method, cfg))   # the scene the metres hold in (metric_trust)
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    report: dict[str, Any] = {"real_input": real is not None, "files": {}}
    tmps: list[tuple[Path, Path]] = []
    try:
        for kind, module in modules.items():
            in_name, out_name, shape, tol, inputs, desc = cases[kind]
            final = out_dir / f"{kind}.onnx"
            tmp = out_dir / f".{kind}.onnx.tmp"
            tmps.append((tmp, final))
            module = module.eval()
            io = module.onnx_io() if hasattr(module, "onnx_io") else {}
            in_names, out_names = io.get("input_names", [in_name]), io.get("output_names", [out_name])
            make_inputs = io.get("make_inputs")
            example = make_inputs(inputs[0]) if make_inputs else [inputs[0]]
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*[Cc]onstant folding.*")
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                torch.onnx.export(module, tuple(torch.from_numpy(a) for a in example), str(tmp),
                                  input_names=in_names, output_names=out_names, opset_version=OPSET,
                                  dynamo=False, do_constant_folding=True)
            sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            diff = _max_abs_diff(sess, in_names, module, inputs, make_inputs)
            if not diff <= tol:
                raise ExportParityError(f"{kind}.onnx: ONNX Runtime differs from torch by {diff:.3g} > {tol:g}")
            with torch.no_grad():
                first = module(*[torch.from_numpy(a) for a in example])
            out_shape = tuple((first[0] if isinstance(first, (tuple, list)) else first).shape)
            _set_metadata(tmp, {
                "vode.kind": kind,
                "vode.method": cfg["method"],
                "vode.input_width": str(w),
                "vode.input_height": str(h),
                "vode.channels": str(c),
                "vode.color": d["color"],
                "vode.mean": json.dumps([float(v) for v in info["mean"]]),
                "vode.std": json.dumps([float(v) for v in info["std"]]),
                "vode.metric_scale": "true" if info["metric_scale"] and not relative else "false",
                **({"vode.scale_note": "exported relative (vode export --relative): its training had a scale "
                                       "source, but its metres did not hold on held-out footage"}
                   if relative and info["metric_scale"] else {}),
                "vode.min_depth": repr(float(info["min_depth"])),
                "vode.max_depth": repr(float(info["max_depth"])),
                "vode.trained_on": describe_data(cfg),
                "vode.train_steps": str(int(ckpt["step"])),
                "vode.created": created,
                "vode.onnx_parity_max_abs": f"{diff:.3g}",
                "vode.output": desc,
                **camera_meta,
                **({"vode.train_input_size": f"{d['width']}x{d['height']}"} if (w, h) != (d["width"], d["height"]) else {}),
                **io.get("metadata", {}),
            }, out_shape)
            report["files"][kind] = {"path": str(final), "parity_max_abs": diff, "tolerance": tol,
                                     "parity_inputs": len(inputs)}
        for tmp, final in tmps:
            os.replace(tmp, final)
            report["files"][final.stem]["bytes"] = final.stat().st_size
    finally:
        for tmp, _ in tmps:
            if tmp.exists():
                tmp.unlink()
    return report
