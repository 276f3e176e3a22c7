"""Frame sequences from the supported sources, in one form the snippet dataset reads.

A :class:`FrameSequence` is one continuous camera stream: left frames (image paths or decoded
uint8 arrays), optional right frames, the full-resolution intrinsics K of the left camera, the
stereo baseline, optional ground-truth poses and time stamps. Loaders:

- :func:`kitti_odometry` — a KITTI-odometry folder (``vode_ros.core.kitti.load_sequence``);
- :func:`image_folder` — a folder of images (png / jpg / jpeg / bmp, sorted by name; in the
  folder itself or in ``images/``) with the intrinsics in ``K.txt`` (3x3, 9 numbers) or
  ``calib.txt`` (a KITTI ``P0:`` / ``P2:`` line, or a bare 3x3 / 3x4 matrix); optional
  ``times.txt`` (one stamp per image) and ``poses.txt`` (KITTI 3x4 rows);
- ``kitti_raw.py`` (KITTI raw drives) and ``rosbag_frames.py`` (rosbag2) build the same class.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass
class FrameSequence:
    name: str                                  # what it is, for logs and metadata
    left: list[Any]                            # Path or uint8 array (H, W) / (H, W, 3) RGB per frame
    k: np.ndarray                              # (3, 3) left intrinsics at image_size
    image_size: tuple[int, int]                # (width, height) of the frames
    right: list[Any] | None = None
    baseline: float | None = None              # metres, right camera at +baseline along x
    poses: np.ndarray | None = None            # (N, 4, 4) left-camera poses (KITTI convention)
    times: np.ndarray | None = None            # (N,) seconds
    frame_ids: list[int] = field(default_factory=list)   # original frame numbers (after filtering)
    depth: list[Any] | None = None             # sensor depth per frame (Path of a depth_0 PNG, or None)

    def __post_init__(self):
        if not self.frame_ids:
            self.frame_ids = list(range(len(self.left)))
        if self.right is not None and len(self.right) != len(self.left):
            raise ValueError(f"{self.name}: {len(self.left)} left but {len(self.right)} right frames")

    def __len__(self) -> int:
        return len(self.left)

    def subset(self, keep: list[int]) -> "FrameSequence":
        """The frames at positions ``keep`` (in order)."""
        return dataclasses.replace(
            self, left=[self.left[i] for i in keep],
            right=[self.right[i] for i in keep] if self.right is not None else None,
            poses=self.poses[keep] if self.poses is not None else None,
            times=self.times[keep] if self.times is not None else None,
            frame_ids=[self.frame_ids[i] for i in keep],
            depth=[self.depth[i] for i in keep] if self.depth is not None else None)

    def head(self, n: int | None) -> "FrameSequence":
        return self if not n or n >= len(self) else self.subset(list(range(n)))


def read_frame(item: Any) -> np.ndarray:
    """A frame entry (path or array) -> uint8 (H, W) or (H, W, 3) RGB."""
    if isinstance(item, np.ndarray):
        return item
    from vode_ros.core.kitti import read_image

    return read_image(Path(item))


def kitti_odometry(root: str | Path, max_frames: int | None = None) -> FrameSequence:
    from vode_ros.core.kitti import load_sequence

    seq = load_sequence(root, max_frames=max_frames or None)
    return FrameSequence(Path(root).name, list(seq.left), seq.k, seq.image_size, list(seq.right) if seq.right else None,
                         seq.baseline, seq.poses, seq.times, list(seq.frame_ids or []),
                         list(seq.depth) if seq.depth else None)


def _numbers(text: str) -> list[float]:
    out = []
    for tok in text.replace(",", " ").split():
        try:
            out.append(float(tok))
        except ValueError:
            continue
    return out


def read_intrinsics(root: str | Path) -> np.ndarray:
    """K (3, 3) from ``K.txt`` (9 numbers) or ``calib.txt`` (``P0:``/``P2:``/``K:`` line or a bare matrix)."""
    root = Path(root)
    k_path, calib_path = root / "K.txt", root / "calib.txt"
    if k_path.is_file():
        nums = _numbers(k_path.read_text())
        if len(nums) != 9:
            raise ValueError(f"{k_path}: expected 9 numbers (3x3 K, row-major), got {len(nums)}")
        return np.array(nums, dtype=np.float64).reshape(3, 3)
    if calib_path.is_file():
        lines = calib_path.read_text().splitlines()
        keyed = {}
        for line in lines:
            if ":" in line:
                key, vals = line.split(":", 1)
                keyed[key.strip()] = _numbers(vals)
        for key in ("P0", "P2", "K", "P_rect_00", "P_rect_02"):
            vals = keyed.get(key)
            if vals and len(vals) in (9, 12):
                return np.array(vals, dtype=np.float64).reshape(3, -1)[:, :3]
        nums = _numbers("\n".join(line for line in lines if ":" not in line))
        if len(nums) in (9, 12):
            return np.array(nums, dtype=np.float64).reshape(3, -1)[:, :3]
        raise ValueError(f"{calib_path}: no 'P0:'/'P2:'/'K:' line and no bare 3x3 or 3x4 matrix")
    raise FileNotFoundError(f"{root}: no intrinsics; put the 3x3 K in K.txt (9 numbers, row-major) "
                            f"or a KITTI-style calib.txt ('P0: ...' with 12 numbers)")


def image_folder(root: str | Path, max_frames: int | None = None) -> FrameSequence:
    """Images of a folder (or its images/ subfolder), sorted by name, + K.txt / calib.txt."""
    import cv2

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    img_dir = root / "images" if (root / "images").is_dir() else root
    paths = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(paths) < 2:
        raise ValueError(f"{img_dir}: {len(paths)} images (png/jpg/bmp); need a video's frames")
    k = read_intrinsics(root)
    first = cv2.imread(str(paths[0]), cv2.IMREAD_UNCHANGED)
    if first is None:
        raise ValueError(f"{paths[0]}: not a readable image")
    n = len(paths)
    times = poses = None
    if (root / "times.txt").is_file():
        times = np.loadtxt(root / "times.txt", dtype=np.float64).reshape(-1)[:n]
    if (root / "poses.txt").is_file():
        raw = np.loadtxt(root / "poses.txt", dtype=np.float64).reshape(-1, 12)
        if len(raw) >= n:
            poses = np.tile(np.eye(4), (n, 1, 1))
            poses[:, :3, :] = raw[:n].reshape(n, 3, 4)
    seq = FrameSequence(root.name, paths, k, (first.shape[1], first.shape[0]), None, None, poses, times)
    return seq.head(max_frames)
