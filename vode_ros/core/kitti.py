"""Reader for a folder in KITTI odometry layout (one sequence).

    DIR/image_0/000000.png ...   left camera (cam0), PNG or JPEG, grey or colour
    DIR/image_1/000000.png ...   right camera (cam1), optional for mono use
    DIR/depth_0/000000.png ...   optional ground-truth depth of cam0 (uint16, metres = value / 256, 0 = invalid)
    DIR/calib.txt                P0: / P1: 3x4 projection matrices
    DIR/times.txt                one timestamp (s) per frame
    DIR/poses.txt                optional ground truth: 3x4 row-major pose of cam0 per frame

Also accepts image_2/image_3 (colour cameras) with P2/P3 when image_0 is absent.

Frames are matched by the number in the file name, not by position: frame ``000123.png`` gets
line 123 of times.txt and poses.txt, so a frame missing from the folder does not shift the
stamps and poses of every later one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .trajectory import ground_truth_rotations

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

LAYOUT_HINT = (
    "expected KITTI odometry layout: image_0/ (and image_1/ for stereo) with NNNNNN.png or .jpg, "
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
    frame_ids: list[int] | None = None   # the number of each frame (from its file name)
    depth: list[Path | None] | None = None   # depth_0/ ground truth per frame, when the folder has it

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


def read_number_table(path: Path, columns: int, layout: str) -> np.ndarray:
    """(N, columns) finite float64 from a whitespace-separated text file; KittiFormatError naming the file,
    the line and what is wrong (numpy's loadtxt names neither the file nor the fix). Blank lines are
    skipped, as loadtxt does."""
    try:
        lines = Path(path).read_text().splitlines()
    except UnicodeDecodeError:
        raise KittiFormatError(f"{path}: not a text file ({layout})") from None
    rows = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path} line {number}"
        if len(fields) != columns:
            raise KittiFormatError(f"{where}: {len(fields)} numbers, expected {columns} ({layout}); fix or "
                                   "remove the line")
        values = []
        for field in fields:
            try:
                values.append(float(field))
            except ValueError:
                raise KittiFormatError(f"{where}: {field!r} is not a number ({layout}); fix the line") from None
        if not all(np.isfinite(values)):
            raise KittiFormatError(f"{where}: {line.strip()!r} is not finite (NaN or Inf); fix the line")
        rows.append(values)
    if not rows:
        raise KittiFormatError(f"{path}: empty, expected {layout}")
    return np.asarray(rows, dtype=np.float64)


def load_sequence(root: str | Path, max_frames: int | None = None, first_frame: int = 0) -> KittiSequence:
    """Load a KITTI-odometry-format folder; raises KittiFormatError naming what is missing.

    ``first_frame``: drop the frames before this position (then ``max_frames`` counts from it); the
    poses are re-expressed in the camera frame of the first frame kept, which becomes the identity.
    For scoring where the start of a ground truth is known to be unreliable (KITTI 00's first
    frames are a constant-velocity fill)."""
    import cv2  # local: keeps `import vode_ros.core.kitti` cheap

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
    left_by_id = _numbered_images(root / left_dir)
    if not left_by_id:
        raise KittiFormatError(f"{root / left_dir}: no .png/.jpg images named by frame number; {LAYOUT_HINT}")
    ids = sorted(left_by_id)
    left = [left_by_id[i] for i in ids]
    right = None
    if (root / right_dir).is_dir():
        right_by_id = _numbered_images(root / right_dir)
        missing = [i for i in ids if i not in right_by_id]
        if missing:
            raise KittiFormatError(f"{root / right_dir}: no right image for frame(s) "
                                   f"{', '.join(f'{i:06d}' for i in missing[:5])}; give every left frame its "
                                   f"right frame or remove {right_dir}/ for mono use")
        right = [right_by_id[i] for i in ids]
    k = calib[p_left][:, :3].copy()
    baseline = None
    if right is not None and p_right in calib:
        # P_right[0, 3] = -fx * baseline (relative to the left camera's P, which has 0 there).
        baseline = float((calib[p_left][0, 3] - calib[p_right][0, 3]) / k[0, 0])
    elif right is not None:
        right = None
    times_path = root / "times.txt"
    if not times_path.is_file():
        raise KittiFormatError(f"{root}: times.txt not found; {LAYOUT_HINT}")
    all_times = read_number_table(times_path, 1, "one time in seconds per line").reshape(-1)
    back = np.flatnonzero(np.diff(all_times) <= 0)
    if len(back):
        line = int(back[0]) + 2
        raise KittiFormatError(f"{times_path} line {line}: {all_times[line - 1]:.6f} s does not come after line "
                               f"{line - 1}'s {all_times[line - 2]:.6f} s: the times of a sequence must increase; "
                               "fix or regenerate times.txt")
    if len(all_times) <= ids[-1]:
        raise KittiFormatError(f"{times_path}: {len(all_times)} stamps, but the images go up to frame "
                               f"{ids[-1]:06d} (line {ids[-1] + 1} needed)")
    times = all_times[ids]
    poses = None
    if (root / "poses.txt").is_file():
        raw = read_number_table(root / "poses.txt", 12, "a 3x4 row-major pose per line")
        if len(raw) <= ids[-1]:
            raise KittiFormatError(f"{root / 'poses.txt'}: {len(raw)} poses, but the images go up to frame "
                                   f"{ids[-1]:06d}")
        poses = np.tile(np.eye(4), (len(ids), 1, 1))
        poses[:, :3, :] = raw[ids].reshape(-1, 3, 4)
        try:     # real sources give rotations orthonormal to ~1e-4: projected onto SO(3), broken lines refused
            poses[:, :3, :3] = ground_truth_rotations(poses[:, :3, :3], str(root / "poses.txt"),
                                                      [i + 1 for i in ids])
        except ValueError as exc:
            raise KittiFormatError(str(exc)) from None
    depth = None
    if (root / "depth_0").is_dir():
        depth_by_id = {i: p for i, p in _numbered_images(root / "depth_0").items() if p.suffix == ".png"}
        depth = [depth_by_id.get(i) for i in ids]
    if first_frame:
        if not 0 <= first_frame < len(left):
            raise KittiFormatError(f"{root}: first frame {first_frame} is outside its {len(left)} frames")
        left, times, ids = left[first_frame:], times[first_frame:], ids[first_frame:]
        right = right[first_frame:] if right is not None else None
        poses = np.linalg.inv(poses[first_frame]) @ poses[first_frame:] if poses is not None else None
        depth = depth[first_frame:] if depth is not None else None
    if max_frames is not None:
        left, times, ids = left[:max_frames], times[:max_frames], ids[:max_frames]
        right = right[:max_frames] if right is not None else None
        poses = poses[:max_frames] if poses is not None else None
        depth = depth[:max_frames] if depth is not None else None
    first = cv2.imread(str(left[0]), cv2.IMREAD_UNCHANGED)
    if first is None:
        raise KittiFormatError(f"{left[0]}: not a readable image")
    return KittiSequence(root, left, right, k, baseline, times, poses, (first.shape[1], first.shape[0]), ids, depth)


def _numbered_images(folder: Path) -> dict[int, Path]:
    """{frame number: path} of the images in ``folder`` whose stem is a number (PNG preferred over JPEG)."""
    out: dict[int, Path] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir(), key=lambda p: IMAGE_SUFFIXES.index(p.suffix.lower())
                       if p.suffix.lower() in IMAGE_SUFFIXES else 99, reverse=True):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.stem.isdigit():
            out[int(path.stem)] = path
    return out


def read_depth(path: Path) -> np.ndarray:
    """Ground-truth depth (H, W) float32 metres from a KITTI-convention uint16 PNG (0 = invalid -> 0)."""
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16 or raw.ndim != 2:
        raise KittiFormatError(f"{path}: not a uint16 single-channel depth PNG (KITTI depth convention)")
    return raw.astype(np.float32) / 256.0


def read_image(path: Path) -> np.ndarray:
    """Image as uint8, (H, W) for grey or (H, W, 3) RGB for colour."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise KittiFormatError(f"{path}: not a readable image")
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img
