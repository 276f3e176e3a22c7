"""ONNX Runtime sessions for the exported Depth and Pose nets, configured by their metadata.

The model files carry what the run time needs (written by vode_training.export): input
size, colour, normalisation, method and whether the scale is metric. Nothing here imports
torch or ROS.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vode_ros.core.geometry import disp_to_depth, pose_vec2mat, scale_intrinsics
from vode_ros.core.image_codec import to_gray, to_rgb
from vode_ros.runtime.recurrent import RecurrentSession, state_spec

LOG = logging.getLogger("vode_ros.runtime.inference")
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class ModelLoadError(RuntimeError):
    """A model file is missing, corrupt or not a vode model; the message names the file."""


@dataclass(frozen=True)
class ModelMeta:
    kind: str                 # depth | pose
    method: str
    width: int
    height: int
    channels: int
    color: str                # gray | rgb
    mean: tuple[float, ...]
    std: tuple[float, ...]
    metric_scale: bool
    min_depth: float
    max_depth: float
    raw: dict[str, str]

    @staticmethod
    def from_props(props: dict[str, str], path: Path) -> "ModelMeta":
        try:
            return ModelMeta(
                kind=props["vode.kind"],
                method=props.get("vode.method", "unknown"),
                width=int(props["vode.input_width"]),
                height=int(props["vode.input_height"]),
                channels=int(props["vode.channels"]),
                color=props.get("vode.color", "gray" if props["vode.channels"] == "1" else "rgb"),
                mean=tuple(json.loads(props.get("vode.mean", "[0.0]"))),
                std=tuple(json.loads(props.get("vode.std", "[1.0]"))),
                metric_scale=props.get("vode.metric_scale", "false").lower() == "true",
                min_depth=float(props.get("vode.min_depth", 0.1)),
                max_depth=float(props.get("vode.max_depth", 100.0)),
                raw=dict(props),
            )
        except (KeyError, ValueError) as exc:
            raise ModelLoadError(
                f"{path}: missing or bad vode metadata ({exc}); export models with `vode export`"
            ) from exc


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def provider_problem(names: list[str]) -> str | None:
    """Why `names` is not a usable provider list (the `providers` parameter), or None."""
    import onnxruntime as ort

    if not names:
        return "give at least one execution provider, e.g. [CPUExecutionProvider]"
    known = set(ort.get_all_providers())
    unknown = [n for n in names if n not in known]
    if unknown:
        return (f"unknown ONNX Runtime execution provider(s) {', '.join(unknown)}; use names such as "
                f"{', '.join(PREFERRED_PROVIDERS)} (available in this build: {', '.join(available_providers())})")
    return None


def _tensorrt_importable() -> bool:
    import importlib.util

    return any(importlib.util.find_spec(m) is not None for m in ("tensorrt_libs", "tensorrt"))


_DLLS_PRELOADED = False


def _preload_cuda_dlls(ort) -> None:
    """Load the pip CUDA / cuDNN libraries before the first CUDA session (ORT >= 1.21), once."""
    global _DLLS_PRELOADED
    if _DLLS_PRELOADED or not hasattr(ort, "preload_dlls"):
        return
    _DLLS_PRELOADED = True
    try:
        ort.preload_dlls()
    except Exception as exc:  # noqa: BLE001 - ORT then finds the libraries itself or falls back to CPU
        LOG.warning("onnxruntime.preload_dlls() failed (%s); CUDA libraries are searched as usual", exc)


def choose_providers(requested: list[str] | None = None) -> list[str]:
    """TensorRT -> CUDA -> CPU, keeping only what this onnxruntime build offers.

    TensorRT is left out when its libraries are not importable: ORT would otherwise log an
    error for it and retry without it on every session.
    """
    avail = available_providers()
    wanted = requested or list(PREFERRED_PROVIDERS)
    chosen = [p for p in wanted if p in avail]
    if "TensorrtExecutionProvider" in chosen and not _tensorrt_importable():
        chosen.remove("TensorrtExecutionProvider")
    return chosen or ["CPUExecutionProvider"]


class OnnxModel:
    """One ORT session plus its vode metadata. Raises ModelLoadError with the file name."""

    def __init__(self, path: str | Path, providers: list[str] | None = None, threads: int = 0,
                 expected_kind: str | None = None, cache_dir: str | Path | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise ModelLoadError(
                f"model file not found: {self.path} (set the model_dir parameter, or export one with `vode export`)"
            )
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads > 0:
            opts.intra_op_num_threads = threads
        provider_list = choose_providers(providers)
        if "CUDAExecutionProvider" in provider_list:
            _preload_cuda_dlls(ort)
        provider_opts = []
        for p in provider_list:
            if p == "TensorrtExecutionProvider" and cache_dir is not None:
                provider_opts.append({"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir)})
            else:
                provider_opts.append({})
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=provider_list,
                                                provider_options=provider_opts)
        except Exception as exc:  # ORT raises its own exception types for corrupt files
            raise ModelLoadError(f"{self.path}: not a loadable ONNX model ({exc.__class__.__name__}: {exc})") from exc
        self.provider = self.session.get_providers()[0]
        props = dict(self.session.get_modelmeta().custom_metadata_map)
        self.meta = ModelMeta.from_props(props, self.path)
        # Recurrent models (RNN-MVOD: vode.recurrent / vode.state) carry a state from frame to
        # frame; a pose model of that kind takes the current frame only (its history is the state).
        self.recurrent = bool(state_spec(props))
        if expected_kind and self.meta.kind != expected_kind:
            raise ModelLoadError(f"{self.path}: is a '{self.meta.kind}' model, expected '{expected_kind}'")
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = list(inp.shape)
        want_c = self.meta.channels * (2 if self.meta.kind == "pose" and not self.recurrent else 1)
        if len(shape) != 4 or shape[1] != want_c or shape[2] != self.meta.height or shape[3] != self.meta.width:
            raise ModelLoadError(
                f"{self.path}: input shape {shape} does not match its metadata "
                f"[1, {want_c}, {self.meta.height}, {self.meta.width}]; re-export the model"
            )
        # One warm-up run: the first call allocates and (for TensorRT) builds engines, which
        # would otherwise stall the first camera frame.
        self.state: RecurrentSession | None = RecurrentSession(self.session) if self.recurrent else None
        if self.state is not None:
            extra = [n for n in self.state.data_inputs if n != self.input_name]
            if extra:
                raise ModelLoadError(f"{self.path}: recurrent model needs inputs {extra} besides "
                                     f"'{self.input_name}'; export it with model.export_pose: bundled")
            self.state.step(np.zeros([1, want_c, self.meta.height, self.meta.width], np.float32))
            self.state.reset()
        else:
            self.session.run(None, {self.input_name: np.zeros([1, want_c, self.meta.height, self.meta.width], np.float32)})
        self.last_ms = 0.0

    def reset_state(self) -> None:
        """Start a new sequence (recurrent models; a no-op for the others)."""
        if self.state is not None:
            self.state.reset()

    def run(self, tensor: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        if self.state is not None:          # carries the recurrent state to the next call
            out = next(iter(self.state.step({self.input_name: tensor}).values()))
        else:
            out = self.session.run(None, {self.input_name: tensor})[0]
        self.last_ms = (time.perf_counter() - t0) * 1e3
        return out

    def preprocess(self, img: np.ndarray, encoding: str) -> np.ndarray:
        """uint8 image in any supported encoding -> (C, H, W) float32 normalised net input."""
        import cv2

        m = self.meta
        x = to_gray(img, encoding) if m.color == "gray" else to_rgb(img, encoding)
        x = cv2.resize(x, (m.width, m.height), interpolation=cv2.INTER_AREA)
        x = x.astype(np.float32) / 255.0
        if x.ndim == 2:
            x = x[None]                              # (1, H, W)
        else:
            x = np.transpose(x, (2, 0, 1))           # (3, H, W)
        mean = np.asarray(m.mean, np.float32).reshape(-1, 1, 1)
        std = np.asarray(m.std, np.float32).reshape(-1, 1, 1)
        return np.ascontiguousarray((x - mean) / std)

    def intrinsics_for_net(self, k: np.ndarray, image_wh: tuple[int, int]) -> np.ndarray:
        return scale_intrinsics(k, image_wh, (self.meta.width, self.meta.height))


class DepthNet:
    """image -> depth (network resolution, metres when the model is metric)."""

    def __init__(self, model: OnnxModel):
        self.model = model

    def __call__(self, net_input: np.ndarray, fx: float | None = None) -> np.ndarray:
        """net_input (C, H, W) -> depth (H, W). With `fx` (focal length in pixels at the
        network's resolution) a metric model's depth is rescaled from the focal length it
        was trained with (metadata vode.train_fx): depth is proportional to f for the same image."""
        inv_depth = self.model.run(net_input[None])[0, 0]      # (H, W), 1/m
        m = self.model.meta
        depth = disp_to_depth(inv_depth, m.min_depth, m.max_depth)
        train_fx = float(m.raw.get("vode.train_fx", 0) or 0)
        if fx and train_fx > 0:
            # One float32 factor: a numpy float64 fx would make the product float64 and round it
            # differently from a Python float's (the node and the evaluation must agree to the bit).
            depth = depth * np.float32(float(fx) / train_fx)
        return depth.astype(np.float32, copy=False)


class PoseNet:
    """(current, previous) net inputs -> T_prev_cur, the current camera in the previous one.

    A recurrent pose model (RNN-MVOD) sees only the current frame: the previous ones live in its
    state, so ``start`` must see the first frame of every sequence (after a reset or time jump)."""

    def __init__(self, model: OnnxModel):
        self.model = model

    def start(self, current: np.ndarray) -> None:
        """First frame of a sequence: no motion yet; a recurrent model starts its state on it."""
        if self.model.recurrent:
            self.model.reset_state()
            self.model.run(current[None])

    def __call__(self, current: np.ndarray, previous: np.ndarray) -> np.ndarray:
        if self.model.recurrent:
            vec = self.model.run(current[None]).reshape(-1)[:6]       # [current] + state
        else:
            frames = np.concatenate([current, previous], axis=0)[None]   # (1, 2C, H, W)
            vec = self.model.run(frames).reshape(-1)[:6]
        return pose_vec2mat(vec)


SHIPPED_MODELS = ("driving", "indoor")     # models/ and models/indoor/


def default_model_dir(model: str = "driving") -> Path:
    """A shipped model's folder (source tree, colcon install or wheel: :mod:`vode_ros.core.resources`):
    ``driving`` = models/ (KITTI cameras), ``indoor`` = models/indoor/ (hand-held and RGB-D indoor)."""
    from vode_ros.core.resources import resource_path

    if model not in SHIPPED_MODELS:
        raise ModelLoadError(f"no shipped model {model!r}: choose one of {', '.join(SHIPPED_MODELS)}, "
                             "or give a folder with depth.onnx and pose.onnx (model_dir)")
    base = resource_path("models")
    return base if model == "driving" else base / model


def shipped_model_for(model: str, domain: str) -> str:
    """Which shipped model runs: ``model`` where given, else the one of the camera's ``domain``
    (the indoor model indoors, the driving one elsewhere and where the domain is not said)."""
    if model:
        return model
    return "indoor" if domain.strip().lower() == "indoor" else "driving"


def load_models(model_dir: str | Path | None, providers: list[str] | None = None,
                threads: int = 0) -> tuple[OnnxModel, OnnxModel]:
    d = Path(model_dir) if model_dir else default_model_dir()
    depth = OnnxModel(d / "depth.onnx", providers, threads, expected_kind="depth")
    pose = OnnxModel(d / "pose.onnx", providers, threads, expected_kind="pose")
    LOG.info("models from %s run on %s", d, depth.provider)
    return depth, pose
