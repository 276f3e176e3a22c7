"""Reader for a folder in KITTI odometry layout (one sequence).

    DIR/image_0/000000.png ...   left grey camera (cam0)
    DIR/image_1/000000.png ...   right grey camera (cam1), optional for mono use
    DIR/calib.txt                P0: / P1: 3x4 projection matrices
    DIR/times.txt                one timestamp (s) per frame
    DIR/poses.txt                optional ground truth: 3x4 row-major pose of cam0 per frame

Also accepts image_2/image_3 (colour cameras) with P2/P3 when image_0 is absent.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

LAYOUT_HINT = (
    "expected KITTI odometry layout: image_0/ (and image_1/ for stereo) with NNNNNN.png, "
    "calib.txt with P0:/P1: lines, times.txt; poses.txt optional"
)


class KittiFormatError(ValueError):
    """The folder is not in KITTI odometry layout; the message says what is missing."""


@dataclass
class KittiSequence:
    root: Path
    left: list[Path]            # image paths, sorted by frame index
    right: list[Path] | None    # None when the sequence is mono
    k: np.ndarray               # (3, 3) intrinsics of the left camera, full resolution
    baseline: float | None      # metres, from P1 (None for mono)
    times: np.ndarray           # (N,) seconds
    poses: np.ndarray | None    # (N, 4, 4) cam0 poses in the frame-0 camera frame
    image_size: tuple[int, int]  # (width, height)

    def __len__(self) -> int:
        return len(self.left)


def parse_calib(path: Path) -> dict[str, np.ndarray]:
    """All 12-number lines of a KITTI calib.txt (P0..P3, Tr) as (3, 4) arrays by key."""
    mats: dict[str, np.ndarray] = {}
    for line in path.read_text().splitlines():
        if ":" not in line:
            continue
        key, vals = line.split(":", 1)
        nums = vals.split()
        if len(nums) == 12:
            mats[key.strip()] = np.array(nums, dtype=np.float64).reshape(3, 4)
    return mats


def load_sequence(root: str | Path, max_frames: int | None = None) -> KittiSequence:
    """Load a KITTI-odometry-format folder; raises KittiFormatError naming what is missing."""
    import cv2  # local: keeps `import vode_ros.kitti` cheap

    root = Path(root)
    if not root.is_dir():
        raise KittiFormatError(f"{root}: no such folder ({LAYOUT_HINT})")
    cams = ("image_0", "image_1", "P0", "P1") if (root / "image_0").is_dir() else ("image_2", "image_3", "P2", "P3")
    left_dir, right_dir, p_left, p_right = cams
    if not (root / left_dir).is_dir():
        raise KittiFormatError(f"{root}: no image_0/ (or image_2/) folder; {LAYOUT_HINT}")
    calib_path = root / "calib.txt"
    if not calib_path.is_file():
        raise KittiFormatError(f"{root}: calib.txt not found; {LAYOUT_HINT}")
    calib = parse_calib(calib_path)
    if p_left not in calib:
        raise KittiFormatError(f"{calib_path}: no '{p_left}:' line with 12 numbers; {LAYOUT_HINT}")
    left = sorted((root / left_dir).glob("*.png"))
    if not left:
        raise KittiFormatError(f"{root / left_dir}: no .png images; {LAYOUT_HINT}")
    right = sorted((root / right_dir).glob("*.png")) if (root / right_dir).is_dir() else None
    if right is not None and len(right) != len(left):
        raise KittiFormatError(f"{root}: {len(left)} left but {len(right)} right images")
    k = calib[p_left][:, :3].copy()
    baseline = None
    if right is not None and p_right in calib:
        # P_right[0, 3] = -fx * baseline (relative to the left camera's P, which has 0 there).
        baseline = float((calib[p_left][0, 3] - calib[p_right][0, 3]) / k[0, 0])
    elif right is not None:
        right = None
    n = len(left)
    times_path = root / "times.txt"
    if times_path.is_file():
        times = np.loadtxt(times_path, dtype=np.float64).reshape(-1)
        if len(times) < n:
            raise KittiFormatError(f"{times_path}: {len(times)} stamps for {n} images")
        times = times[:n]
    else:
        raise KittiFormatError(f"{root}: times.txt not found; {LAYOUT_HINT}")
    poses = None
    if (root / "poses.txt").is_file():
        raw = np.loadtxt(root / "poses.txt", dtype=np.float64).reshape(-1, 12)
        if len(raw) < n:
            raise KittiFormatError(f"{root / 'poses.txt'}: {len(raw)} poses for {n} images")
        poses = np.tile(np.eye(4), (n, 1, 1))
        poses[:, :3, :] = raw[:n].reshape(n, 3, 4)
    if max_frames is not None:
        left, times = left[:max_frames], times[:max_frames]
        right = right[:max_frames] if right is not None else None
        poses = poses[:max_frames] if poses is not None else None
    first = cv2.imread(str(left[0]), cv2.IMREAD_UNCHANGED)
    if first is None:
        raise KittiFormatError(f"{left[0]}: not a readable image")
    return KittiSequence(root, left, right, k, baseline, times, poses, (first.shape[1], first.shape[0]))


def read_image(path: Path) -> np.ndarray:
    """Image as uint8, (H, W) for grey or (H, W, 3) RGB for colour."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise KittiFormatError(f"{path}: not a readable image")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img
