"""KITTI raw drives (the layout of the KITTI raw data download) and the Eigen split files.

Layout::

    ROOT/2011_09_26/calib_cam_to_cam.txt                     P_rect_02 / P_rect_03 (3x4), S_rect_02
    ROOT/2011_09_26/2011_09_26_drive_0001_sync/image_02/data/0000000000.png   left colour camera
    ROOT/2011_09_26/2011_09_26_drive_0001_sync/image_02/timestamps.txt        '2011-09-26 13:02:25.964389445'
    ROOT/2011_09_26/2011_09_26_drive_0001_sync/image_03/data/...               right colour camera

Intrinsics: K = P_rect_02[:, :3]; stereo baseline b = (P_rect_02[0, 3] - P_rect_03[0, 3]) / fx
(about 0.54 m). One :class:`~vode_training.data.sequences.FrameSequence` per drive (image_02,
with image_03 as the right frames). Ground-truth poses are not read (the OXTS files would need
the IMU/Velodyne/camera chain); ``gt_src_tgt`` is absent from raw batches.

Split files (``read_split``) in the three formats in use:

- monodepth2: ``2011_09_26/2011_09_26_drive_0002_sync 69 l`` (side l = image_02, r = image_03);
- SfMLearner: ``2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000069.png``;
- monodepth: the SfMLearner form, then the image_03 path on the same line (first one used).

``data.path`` may be ROOT, a date folder or one drive folder. ``data.split``: '' = all drives
found except the 28 Eigen test scenes (``splits/eigen_test_scenes.txt``), 'all' = every drive,
else a split file whose lines name the target frames (sources are their neighbours in the drive).
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np

from .sequences import FrameSequence

SPLITS_DIR = Path(__file__).resolve().parent / "splits"
CAM_DIRS = {2: "image_02", 3: "image_03"}


def read_calib_cam_to_cam(path: str | Path) -> dict[str, np.ndarray]:
    """calib_cam_to_cam.txt -> {key: array}; P_rect_xx reshaped to (3, 4), S/S_rect to (2,)."""
    out: dict[str, np.ndarray] = {}
    for line in Path(path).read_text().splitlines():
        if ":" not in line:
            continue
        key, vals = line.split(":", 1)
        try:
            nums = np.array([float(v) for v in vals.split()], dtype=np.float64)
        except ValueError:
            continue                                   # calib_time: 09-Jan-2012 13:57:47
        key = key.strip()
        if key.startswith("P_rect") and nums.size == 12:
            nums = nums.reshape(3, 4)
        elif key.startswith(("K_", "R_")) and nums.size == 9:
            nums = nums.reshape(3, 3)
        out[key] = nums
    return out


def read_timestamps(path: str | Path) -> np.ndarray:
    """timestamps.txt ('YYYY-MM-DD HH:MM:SS.fffffffff' per line) -> seconds since the epoch (float64)."""
    out = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        day, clock = line.split(" ")
        whole, _, frac = clock.partition(".")
        t = _dt.datetime.strptime(f"{day} {whole}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=_dt.timezone.utc)
        out.append(t.timestamp() + (float("0." + frac) if frac else 0.0))
    return np.array(out, dtype=np.float64)


def drive_calibration(drive_dir: Path) -> tuple[np.ndarray, float, tuple[int, int] | None]:
    """(K of image_02, baseline to image_03 in m, rectified size (w, h) or None) of a drive folder."""
    calib_path = drive_dir.parent / "calib_cam_to_cam.txt"
    if not calib_path.is_file():
        raise FileNotFoundError(f"{calib_path}: not found (KITTI raw keeps it in the date folder above the drive)")
    calib = read_calib_cam_to_cam(calib_path)
    if "P_rect_02" not in calib or "P_rect_03" not in calib:
        raise ValueError(f"{calib_path}: needs P_rect_02 and P_rect_03 (12 numbers each)")
    p2, p3 = calib["P_rect_02"], calib["P_rect_03"]
    k = p2[:, :3].copy()
    baseline = float((p2[0, 3] - p3[0, 3]) / k[0, 0])
    size = tuple(int(round(v)) for v in calib["S_rect_02"]) if "S_rect_02" in calib else None
    return k, baseline, size


def load_drive(drive_dir: str | Path, stereo: bool = True, max_frames: int | None = None) -> FrameSequence:
    """One KITTI raw drive folder (…_sync) -> FrameSequence of image_02 (+ image_03 as right)."""
    import cv2

    drive_dir = Path(drive_dir)
    left_dir = drive_dir / "image_02" / "data"
    left = sorted(p for p in left_dir.glob("*") if p.suffix.lower() in (".png", ".jpg")) if left_dir.is_dir() else []
    if not left:
        raise FileNotFoundError(f"{drive_dir}: no image_02/data/*.png (KITTI raw drive layout)")
    right = None
    if stereo:
        right_dir = drive_dir / "image_03" / "data"
        right = sorted(p for p in right_dir.glob("*") if p.suffix.lower() in (".png", ".jpg")) if right_dir.is_dir() else []
        if len(right) != len(left):
            raise ValueError(f"{drive_dir}: {len(left)} image_02 but {len(right)} image_03 frames")
    k, baseline, size = drive_calibration(drive_dir)
    first = cv2.imread(str(left[0]), cv2.IMREAD_UNCHANGED)
    if first is None:
        raise ValueError(f"{left[0]}: not a readable image")
    image_size = (first.shape[1], first.shape[0])
    times = None
    ts_path = drive_dir / "image_02" / "timestamps.txt"
    if ts_path.is_file():
        times = read_timestamps(ts_path)
        if len(times) < len(left):
            times = None
        else:
            times = times[:len(left)]
    frame_ids = [int(p.stem) for p in left]
    name = f"{drive_dir.parent.name}/{drive_dir.name}"
    seq = FrameSequence(name, left, k, image_size, right, baseline if stereo else None, None, times, frame_ids)
    return seq.head(max_frames)


def find_drives(path: str | Path) -> list[Path]:
    """Drive folders (…_sync with image_02/) under ROOT, a date folder, or the drive itself."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such folder (KITTI raw root, date folder or drive folder)")
    if (path / "image_02").is_dir():
        return [path]
    drives = sorted(p for p in path.glob("*_sync") if (p / "image_02").is_dir())
    drives += sorted(p for p in path.glob("*/*_sync") if (p / "image_02").is_dir())
    if not drives:
        raise FileNotFoundError(f"{path}: no KITTI raw drives (DATE/DATE_drive_NNNN_sync/image_02/data)")
    return drives


def eigen_test_scenes() -> list[str]:
    """The 28 drives of the Eigen test split ('2011_09_26_drive_0002', ...)."""
    lines = (SPLITS_DIR / "eigen_test_scenes.txt").read_text().splitlines()
    return [s.strip() for s in lines if s.strip() and not s.startswith("#")]


def read_split(path: str | Path) -> list[tuple[str, int, int]]:
    """A split file -> [(drive 'DATE/DATE_drive_NNNN_sync', frame number, camera 2 | 3)]."""
    out = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        first = parts[0]
        if "/image_0" in first:                                    # SfMLearner / monodepth form
            drive, rest = first.split("/image_0", 1)
            cam = int(rest[0])
            frame = int(Path(first).stem)
        elif len(parts) >= 2:                                      # monodepth2 form
            drive, frame = first.rstrip("/"), int(parts[1])
            cam = 3 if (len(parts) > 2 and parts[2] == "r") else 2
        else:
            raise ValueError(f"{path}:{n}: cannot read {line!r} (expected 'DATE/DRIVE_sync FRAME l|r' or "
                             f"'DATE/DRIVE_sync/image_02/data/NNNNNNNNNN.png')")
        out.append((drive, frame, cam))
    return out


def raw_sequences(path: str | Path, split: str = "", stereo: bool = True,
                  max_frames: int | None = None) -> tuple[list[FrameSequence], list[list[int]] | None]:
    """Sequences for ``data.kind: kitti_raw`` and, for a split file, the target frame numbers per sequence.

    -> (sequences, targets) where targets[i] lists the frame numbers (``frame_ids``) of sequence i
    that the split names, or None (every frame with its sources in range is a target).
    Split entries on image_03 are read from the image_02 drive (the snippet's left camera).
    """
    path = Path(path)
    if split and split != "all":
        entries = read_split(split)
        root = path
        by_drive: dict[str, set[int]] = {}
        for drive, frame, _cam in entries:
            by_drive.setdefault(drive, set()).add(frame)
        seqs, targets = [], []
        for drive, frames in sorted(by_drive.items()):
            drive_dir = root / drive
            if not drive_dir.is_dir():
                raise FileNotFoundError(f"{split}: drive {drive} not under {root}")
            seqs.append(load_drive(drive_dir, stereo, max_frames))
            targets.append(sorted(frames))
        return seqs, targets
    drives = find_drives(path)
    if split != "all":
        test = set(eigen_test_scenes())
        drives = [d for d in drives if d.name.replace("_sync", "") not in test] or drives
    return [load_drive(d, stereo, max_frames) for d in drives], None
