"""Training configuration: YAML file + dotted command-line overrides, validated.

A config has the sections ``method`` (a registered method name), ``data``, ``train`` (common to
all methods, defaults below) and ``model``, ``loss`` (the method's own, defaults in its class's
``DEFAULTS``). Missing keys take the defaults; unknown keys and wrongly typed values raise
ConfigError naming the key and what is allowed.

    cfg = load_config("config/train/sfmlearner.yaml", ["train.steps=50", "data.stereo=false"])

Override values are parsed as YAML (``3``, ``2e-4``, ``true``, ``[-1, 1]``, ``gray``).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

import yaml

COMMON_DEFAULTS: dict[str, Any] = {
    "method": "sfmlearner",
    "data": {
        "path": "data/kitti_odometry_06_0000-0050",   # KITTI odometry folder (relative: to the cwd)
        "paths": [],                     # kitti_odometry: several folders in one training set (overrides path)
        "root": "",                      # folder that relative data.path / data.paths entries are under
        "domain": "",                    # driving | indoor | ...: recorded in the export; the run time trusts
                                         # the model's metres only on a camera of that domain
        "width": 416,
        "height": 128,
        "color": "gray",                 # gray | rgb
        "stereo": True,                  # right image at t as an extra source (metric scale)
        "offsets": [-1, 1],              # source frames relative to the target
        "max_stride": 1,                 # >1: each snippet's frame stride drawn from 1..max_stride
                                         # (or a list: one value per data.paths entry)
        "augment": True,                 # brightness / contrast jitter of the network inputs
        "brightness": 0.2,
        "contrast": 0.2,
        "max_frames": 0,                 # 0 = all
        "kind": "kitti_odometry",        # kitti_odometry | kitti_raw | image_folder | rosbag | synthetic
        "split": "",                     # kitti_raw: '' (all drives but the Eigen test scenes), 'all', or a split file
        "image_topic": "",               # rosbag: sensor_msgs/Image or CompressedImage topic
        "info_topic": "",                # rosbag: CameraInfo ('' = <image topic namespace>/camera_info)
        "right_topic": "",               # rosbag: right image topic (stereo)
        "right_info_topic": "",          # rosbag: right CameraInfo ('' = <right namespace>/camera_info)
        "rectify": "auto",               # rosbag: auto | on | off, raw images rectified by their CameraInfo as the nodes do
        "static_filter": "none",         # none | flow | diff: drop frames where the camera stood still
        "static_threshold": 1.0,         # flow: mean optical flow (px at the training size); diff: grey levels
        "scale_crop": 0.0,               # SfMLearner augmentation: scale by [1, 1 + x] and crop back, K adjusted
        "saturation": 0.0,               # colour jitter of the network inputs (rgb), as brightness/contrast
        "hue": 0.0,                      # hue rotation, fraction of a turn (rgb)
        "preload": True,                 # frames in RAM at the training size (false: read per item)
        "flip": False,                   # mirror half the snippets left-right (augment; K, stereo, poses follow)
        "depth_hints": False,            # SGBM depth of each stereo item as item["hint"] (loss.hint_weight)
        "sensor_depth": False,           # depth_0/ sensor depth of each target as item["sensor_depth"]
                                         # (loss.sensor_depth_weight; RGB-D footage)
        "synthetic": {},                 # synthetic: SynthConfig fields (frames, seed, speed, ...)
    },
    "train": {
        "steps": 500,
        "batch_size": 4,
        "lr": 2.0e-4,
        "lr_decay_steps": [],            # multiply lr by lr_decay_factor at these steps
        "lr_decay_factor": 0.1,
        "beta1": 0.9,                    # Adam betas (SfMLearner: beta1 0.9)
        "beta2": 0.999,
        "weight_decay": 0.0,
        "grad_clip": 0.0,                # 0 = off
        "seed": 0,
        "num_threads": 2,
        "num_workers": 0,
        "log_every": 10,
        "ckpt_every": 100,
        "init": "",                      # start the nets from this checkpoint (e.g. stage 1 of a method)
        "init_nets": [],                 # only these nets from train.init ([] = every net both share),
                                         # e.g. [depth]: keep a trained depth net, start a fresh pose net
        "freeze": [],                    # net names kept fixed (e.g. [depth, pose] in GeoNet stage 2)
        "image_every": 100,              # TensorBoard images (depth, warped sources, masks) every N steps; 0 = off
        "keep_every": 0,                 # also keep checkpoint_NNNNNN.pt every N steps (0 = only checkpoint.pt)
        "device": "auto",                # auto (cuda when available) | cpu | cuda | cuda:N
        "backend": "auto",               # torch.distributed backend when launched distributed: auto (nccl on
                                         # GPU, gloo on CPU) | gloo | nccl
        "find_unused_parameters": True,  # DDP: tolerate nets/branches without gradient in a step (false: faster)
    },
}

# Keys whose value may be of any type (None in the defaults would otherwise fix the type).
_FREE_KEYS: set[str] = {"data.synthetic", "data.max_stride"}     # checked in validate()


class ConfigError(ValueError):
    """Invalid training config; the message names the key."""


def poses_give_scale(loss: dict[str, Any]) -> bool:
    """Whether a run's loss pulls its motions to ground-truth poses in metres (loss.pose_weight or
    loss.speed_weight): with them, a sequence that has poses teaches metric scale, stereo or not."""
    return float(loss.get("pose_weight", 0.0)) > 0 or float(loss.get("speed_weight", 0.0)) > 0


def sensor_depth_gives_scale(cfg: dict[str, Any]) -> bool:
    """Whether a run pulls its depth to a depth sensor's metres (data.sensor_depth with
    loss.sensor_depth_weight): then a sequence with depth_0/ teaches metric scale."""
    return bool(cfg["data"].get("sensor_depth")) and float(cfg.get("loss", {}).get("sensor_depth_weight", 0.0)) > 0


def defaults_for(method: str) -> dict[str, Any]:
    """Full default config for a method (common sections + the method's model/loss)."""
    from .methods import get_method

    try:
        cls = get_method(method)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    out = copy.deepcopy(COMMON_DEFAULTS)
    out["method"] = method
    for section, vals in cls.DEFAULTS.items():
        out[section] = copy.deepcopy(vals)
    return out


def _type_ok(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list)
    if isinstance(default, str):
        return isinstance(value, str)
    return True


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _merge(defaults: dict[str, Any], given: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    if not isinstance(given, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {type(given).__name__}")
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        path = prefix + str(key)
        if key not in defaults:
            raise ConfigError(f"unknown config key '{path}'; allowed here: {', '.join(sorted(defaults))}")
        default = defaults[key]
        if path in _FREE_KEYS:
            out[key] = copy.deepcopy(value)
        elif isinstance(default, dict):
            out[key] = _merge(default, value if value is not None else {}, path + ".")
        elif isinstance(default, float) and isinstance(value, str) and _is_float(value):
            out[key] = float(value)      # PyYAML reads '2e-4' (no dot) as a string
        elif _type_ok(default, value):
            out[key] = float(value) if isinstance(default, float) else value
        else:
            raise ConfigError(f"config key '{path}': expected {type(default).__name__} like {default!r}, "
                              f"got {value!r} ({type(value).__name__})")
    return out


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """['train.steps=50', 'data.stereo=false'] -> nested dict."""
    nested: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. train.steps=50")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: empty key part")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from None
        node = nested
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: '{p}' is set both as a value and a section")
        node[parts[-1]] = value
    return nested


def _deep_update(base: dict[str, Any], upd: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in upd.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_update(out[k], v)
        else:
            out[k] = v
    return out


def validate(given: dict[str, Any]) -> dict[str, Any]:
    """Merge a (partial) config dict with the defaults of its method and check it."""
    if not isinstance(given, dict):
        raise ConfigError("config: expected a mapping at the top level")
    method = given.get("method", COMMON_DEFAULTS["method"])
    if not isinstance(method, str):
        raise ConfigError(f"config key 'method': expected a method name, got {method!r}")
    cfg = _merge(defaults_for(method), given)
    data, train = cfg["data"], cfg["train"]
    for key in ("width", "height"):
        if data[key] <= 0 or data[key] % 32:
            raise ConfigError(f"config key 'data.{key}': must be a positive multiple of 32, got {data[key]}")
    if data["color"] not in ("gray", "rgb"):
        raise ConfigError(f"config key 'data.color': must be 'gray' or 'rgb', got {data['color']!r}")
    if not data["offsets"] or 0 in data["offsets"] or not all(isinstance(o, int) for o in data["offsets"]):
        raise ConfigError(f"config key 'data.offsets': non-zero integers needed, got {data['offsets']}")
    strides = data["max_stride"] if isinstance(data["max_stride"], list) else [data["max_stride"]]
    if not strides or not all(isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in strides):
        raise ConfigError(f"config key 'data.max_stride': integers >= 1 needed, got {data['max_stride']}")
    if isinstance(data["max_stride"], list) and len(strides) != len(data["paths"]):
        raise ConfigError(f"config key 'data.max_stride': a list needs one value per data.paths entry "
                          f"({len(data['paths'])}), got {len(strides)}")
    from .data import KINDS
    from .data.static_frames import METHODS as STATIC_FILTERS

    if data["kind"] not in KINDS:
        raise ConfigError(f"config key 'data.kind': must be one of {', '.join(KINDS)}, got {data['kind']!r}")
    if data["static_filter"] not in STATIC_FILTERS:
        raise ConfigError(f"config key 'data.static_filter': must be one of {', '.join(STATIC_FILTERS)}, "
                          f"got {data['static_filter']!r}")
    if not isinstance(data["synthetic"], dict):
        raise ConfigError(f"config key 'data.synthetic': expected a mapping of SynthConfig fields, got {data['synthetic']!r}")
    for key in ("scale_crop", "saturation", "hue", "brightness", "contrast"):
        if data[key] < 0:
            raise ConfigError(f"config key 'data.{key}': must be >= 0, got {data[key]}")
    if data["depth_hints"] and not data["stereo"]:
        raise ConfigError("config key 'data.depth_hints': hints come from the stereo pair; set data.stereo: true")
    if data["kind"] == "rosbag" and not data["image_topic"]:
        raise ConfigError("config key 'data.image_topic': data.kind rosbag needs the image topic")
    if train["backend"] not in ("auto", "gloo", "nccl"):
        raise ConfigError(f"config key 'train.backend': must be auto, gloo or nccl, got {train['backend']!r}")
    if not (train["device"] in ("auto", "cpu", "cuda") or train["device"].startswith("cuda:")):
        raise ConfigError(f"config key 'train.device': must be auto, cpu, cuda or cuda:N, got {train['device']!r}")
    for key in ("image_every", "keep_every"):
        if train[key] < 0:
            raise ConfigError(f"config key 'train.{key}': must be >= 0, got {train[key]}")
    for key in ("steps", "batch_size", "num_threads", "log_every", "ckpt_every"):
        if train[key] <= 0:
            raise ConfigError(f"config key 'train.{key}': must be > 0, got {train[key]}")
    if train["lr"] <= 0:
        raise ConfigError(f"config key 'train.lr': must be > 0, got {train['lr']}")
    return cfg


def load_config(path: str | Path | dict | None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Read a YAML file (or only defaults when path is None; or a config dict, e.g. a checkpoint's),
    apply overrides, validate."""
    given: dict[str, Any] = {}
    if isinstance(path, dict):
        given, path = copy.deepcopy(path), None
    elif path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            given = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if not isinstance(given, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
    given = _deep_update(given, parse_overrides(overrides))
    try:
        return validate(given)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path is not None else str(exc)) from None


def dump_config(cfg: dict[str, Any]) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
