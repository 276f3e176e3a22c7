"""Training data: ``data.kind`` picks the loader, every loader gives the same snippet batches.

    kitti_odometry  data.path = a KITTI-odometry folder (image_0/1, calib.txt, times.txt[, poses.txt]);
                    or data.paths = several such folders (different cameras and places in one set;
                    with data.stereo, folders without image_1/ train mono, the stereo term masked;
                    data.max_stride may then be a list, one limit per folder)
    kitti_raw       data.path = KITTI raw root / date folder / drive; data.split = '' (all drives but the
                    Eigen test scenes), 'all', or a split file (kitti_raw.read_split formats)
    image_folder    data.path = a folder of images + K.txt (3x3) or calib.txt (mono only)
    rosbag          data.path = a rosbag2 (folder or .mcap/.db3 inside it); data.image_topic,
                    data.info_topic ('' = <image namespace>/camera_info), data.right_topic for stereo,
                    data.rectify (auto | on | off: raw images rectified by their CameraInfo, as the nodes do)
    synthetic       data.path = a folder for a rendered synthetic street (training/data/synthetic.py),
                    written on first use with data.synthetic (SynthConfig fields) at the training size

Common options: data.static_filter (none | flow | diff) + data.static_threshold drop frames where the
camera stood still (static_frames.py); data.scale_crop (SfMLearner's random scale + crop, K
adjusted), data.brightness / contrast / saturation / hue (colour jitter of the network inputs);
data.preload (frames in RAM at the training size, else read per item); data.depth_hints (an SGBM
depth of each stereo item, ``depth_hints.py``, for loss.hint_weight); data.sensor_depth (the folder's
depth_0/ sensor depth of each target, ``sensor_depth.py``, for loss.sensor_depth_weight).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

KINDS = ("kitti_odometry", "kitti_raw", "image_folder", "rosbag", "synthetic")


def _options(d: dict[str, Any]) -> dict[str, Any]:
    return {"scale_crop": d["scale_crop"], "saturation": d["saturation"], "hue": d["hue"],
            "static_filter": d["static_filter"], "static_threshold": d["static_threshold"], "preload": d["preload"],
            "depth_hints": d.get("depth_hints", False), "flip": d.get("flip", False),
            "sensor_depth": d.get("sensor_depth", False)}


def is_rosbag(path: str | Path) -> bool:
    path = Path(path)
    return (path.is_dir() and (path / "metadata.yaml").is_file()) or (
        path.is_file() and path.suffix in (".mcap", ".db3"))


def ensure_synthetic(cfg: dict[str, Any]) -> Path:
    """Render the synthetic sequence of ``data.kind: synthetic`` into data.path unless it is there."""
    from .synthetic import SynthConfig, write_kitti_layout

    d = cfg["data"]
    root = Path(d["path"])
    if (root / "synthetic.json").is_file() and (root / "calib.txt").is_file():
        return root
    opts = {"width": d["width"], "height": d["height"], "color": d["color"], "frames": 60}
    opts.update(d["synthetic"])
    unknown = set(opts) - set(SynthConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"data.synthetic: unknown SynthConfig field(s) {sorted(unknown)}")
    write_kitti_layout(root, cfg=SynthConfig(**opts))
    return root


def data_path(d: dict[str, Any], path: str) -> Path:
    """``path`` under ``data.root`` when it is relative and a root is given."""
    return Path(d.get("root") or ".") / path


def prepare_data(cfg: dict[str, Any]) -> None:
    """One-off work before the dataset is built (rendering a synthetic sequence); run on one process."""
    if cfg["data"]["kind"] == "synthetic":
        ensure_synthetic(cfg)


def build_dataset(cfg: dict[str, Any]):
    """The snippet dataset of a validated config (a SnippetDataset; KittiSnippets for KITTI layouts)."""
    from .kitti_snippets import KittiSnippets
    from .snippets import SnippetDataset

    d = cfg["data"]
    kind = d["kind"]
    common = (d["width"], d["height"], d["color"], d["stereo"], tuple(d["offsets"]), d["augment"],
              d["brightness"], d["contrast"])
    if kind == "kitti_odometry" and d["paths"]:
        from .sequences import kitti_odometry

        seqs = [kitti_odometry(data_path(d, p), d["max_frames"] or None) for p in d["paths"]]
        return SnippetDataset(seqs, *common, max_stride=d["max_stride"], stereo_optional=True, **_options(d))
    if kind in ("kitti_odometry", "synthetic"):
        if kind == "synthetic":
            ensure_synthetic(cfg)
        return KittiSnippets(d["path"], *common, d["max_frames"] or None, d["max_stride"], **_options(d))
    targets = None
    if kind == "kitti_raw":
        from .kitti_raw import raw_sequences

        seqs, targets = raw_sequences(d["path"], d["split"], d["stereo"], d["max_frames"] or None)
    elif kind == "image_folder":
        from .sequences import image_folder

        if d["stereo"]:
            raise ValueError("data.kind image_folder is monocular: set data.stereo: false")
        seqs = [image_folder(d["path"], d["max_frames"] or None)]
    elif kind == "rosbag":
        from .rosbag_frames import load_bag

        if not d["image_topic"]:
            raise ValueError("data.kind rosbag needs data.image_topic (vode train --image-topic)")
        if d["stereo"] and not d["right_topic"]:
            raise ValueError("data.stereo: true with a rosbag needs data.right_topic (vode train --right-topic)")
        seqs = [load_bag(d["path"], d["image_topic"], d["info_topic"], d["right_topic"] if d["stereo"] else "",
                         d["right_info_topic"], d["color"], (d["width"], d["height"]), d["max_frames"] or None,
                         rectify=d["rectify"])]
    else:
        raise ValueError(f"data.kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return SnippetDataset(seqs, *common, max_stride=d["max_stride"], targets=targets, **_options(d))


def load_frames(root: str | Path, max_frames: int | None = None, stereo: bool = False, color: str = "gray",
                size: tuple[int, int] | None = None):
    """Guess the layout of ``root`` (rosbag2, KITTI raw drive, image folder) -> FrameSequence, or None."""
    root = Path(root)
    if is_rosbag(root):
        from .rosbag_frames import auto_topics, load_bag

        image, right = auto_topics(root, stereo)
        return load_bag(root, image, right_topic=right, color=color, size=size, max_frames=max_frames)
    if (root / "image_02" / "data").is_dir():
        from .kitti_raw import load_drive

        return load_drive(root, stereo, max_frames)
    if root.is_dir() and ((root / "K.txt").is_file() or (root / "calib.txt").is_file()):
        from .sequences import image_folder

        return image_folder(root, max_frames)
    return None


def training_cameras(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The cameras a config trains on: per sequence its name, frames, focal length at the training
    size (``fx``, pixels), horizontal field of view (degrees) and ``metric``: whether the run has a
    scale source there (its stereo pair, its ground-truth poses pulled on by loss.pose_weight /
    speed_weight, or its sensor depth pulled on by loss.sensor_depth_weight; listed in
    ``scale_sources``); a camera without one teaches no metres. Empty where the data kind does not
    say (rosbags, synthetic scenes not yet rendered): the export then records no camera."""
    import math

    from vode_ros.core.geometry import scale_intrinsics
    from vode_ros.core.kitti import KittiFormatError, load_sequence

    from ..config import poses_give_scale, sensor_depth_gives_scale

    d, loss = cfg["data"], cfg.get("loss", {})
    if d.get("kind", "kitti_odometry") not in ("kitti_odometry", "synthetic"):
        return []
    out = []
    for path in (d.get("paths") or [d["path"]]):
        try:
            seq = load_sequence(data_path(d, path))
        except (KittiFormatError, OSError):
            continue
        k = scale_intrinsics(seq.k, seq.image_size, (d["width"], d["height"]))
        sources = [name for name, has in (
            ("stereo", bool(d["stereo"]) and seq.right is not None and bool(seq.baseline)),
            ("sensor_depth", bool(seq.depth) and any(p is not None for p in seq.depth) and sensor_depth_gives_scale(cfg)),
            ("poses", seq.poses is not None and poses_give_scale(loss))) if has]
        out.append({"name": Path(path).name, "frames": len(seq), "fx": float(k[0, 0]),
                    "hfov_deg": math.degrees(2 * math.atan(seq.image_size[0] / (2 * seq.k[0, 0]))),
                    "metric": bool(sources), "scale_sources": sources})
    return out


def describe_data(cfg: dict[str, Any]) -> str:
    """What a run trains on, for the ONNX metadata ``vode.trained_on``."""
    d, init = cfg["data"], cfg["train"].get("init", "")
    kind = d.get("kind", "kitti_odometry")
    if kind == "kitti_odometry" and d.get("paths"):
        text = ", ".join(Path(p).name for p in d["paths"])
    elif kind == "kitti_odometry":
        text = Path(d["path"]).name
    elif kind == "rosbag":
        text = f"rosbag {Path(d['path']).resolve()} image={d['image_topic']}"
        if d.get("right_topic") and d.get("stereo"):
            text += f" right={d['right_topic']}"
    elif kind == "kitti_raw":
        text = f"kitti_raw {Path(d['path']).name} split={Path(d['split']).name if d['split'] else 'all-but-eigen-test'}"
    else:
        text = f"{kind} {Path(d['path']).name}"
    if init:
        text += f"; fine-tuned from {Path(init).name}"
    return text


def real_frame_pair(cfg: dict[str, Any]):
    """Two consecutive training frames (2, C, H, W) float32 in [0, 1] ([previous, current]), or None."""
    import copy

    c = copy.deepcopy(cfg)
    c["data"].update(augment=False, stereo=False, offsets=[-1], max_stride=1, max_frames=3, static_filter="none")
    try:
        if c["data"]["kind"] == "synthetic" and not (Path(c["data"]["path"]) / "synthetic.json").is_file():
            return None
        ds = build_dataset(c)
    except (OSError, ValueError, KeyError):
        return None
    item = ds[min(1, len(ds) - 1)]
    import torch

    return torch.stack([item["src"][0], item["tgt"]]).numpy()
