"""Depth ground truth of a KITTI-layout folder, per frame, at full image resolution (numpy).

Sources, in the order ``choose_gt(seq, 'auto')`` prefers them:

1. ``png``: ``depth_0/NNNNNN.png``, KITTI depth convention (uint16, metres = value / 256,
   0 = invalid): Kinect, LiDAR or any sensor's depth registered to image_0.
2. ``npy``: ``depth/NNNNNN.npy`` (float32 metres, 0 = none), as written by the synthetic
   generator; exact.
3. ``velodyne``: ``velodyne/NNNNNN.bin`` (KITTI scans, float32 x, y, z, reflectance) and
   a ``Tr:`` line in ``calib.txt`` (3x4, Velodyne -> rectified cam0, as in the KITTI
   odometry calib files). Each scan is projected with ``P_left @ [Tr; 0 0 0 1]`` where
   ``P_left`` is ``P0`` (image_0 sequences) or ``P2`` (image_2); depth is the third row of
   that product (as SfMLearner's ``generate_depth_map``); points behind the scanner (x < 0)
   dropped; pixel = ``round(u) - 1``, ``round(v) - 1`` (the reference code's MATLAB offset,
   ``matlab_offset=False`` to use ``round``); several points on one pixel keep the nearest.
4. ``sgbm``: stereo pseudo-GT (:func:`vode_ros.core.stereo_depth.sgbm_depth`) from
   image_0/image_1 at full resolution with the calibrated baseline; numDisparities =
   fx·b / 3 m rounded up to 16 (128 on KITTI). Not a sensor: report it as "vs. SGBM pseudo-GT".
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .geometry import project, transform_points

GT_SOURCES = ("png", "npy", "velodyne", "sgbm")
GT_LABELS = {"png": "sensor depth (depth_0/*.png)", "npy": "exact GT depth (depth/*.npy)",
             "velodyne": "Velodyne GT", "sgbm": "SGBM stereo pseudo-GT (not a sensor)"}


class DepthTruthError(ValueError):
    """The folder has no usable depth ground truth of the kind asked for; the message says what is needed."""


def read_calib(root: Path) -> dict[str, np.ndarray]:
    """All 12-number lines of calib.txt (P0..P3, Tr) as (3, 4) arrays."""
    from vode_ros.core.kitti import parse_calib

    return parse_calib(Path(root) / "calib.txt")


# --------------------------------------------------------------------------- ground truth

def velodyne_depth_map(scan: np.ndarray, tr_velo_cam: np.ndarray, p_left: np.ndarray,
                       image_size: tuple[int, int], matlab_offset: bool = True) -> np.ndarray:
    """Project one KITTI Velodyne scan (N, 4) into the left image -> depth (H, W) float32, 0 = none.

    ``tr_velo_cam`` (3, 4): Velodyne -> rectified cam0 (KITTI odometry ``Tr``); ``p_left``
    (3, 4): ``P0`` or ``P2``. Follows SfMLearner's ``generate_depth_map`` (see module doc).
    """
    width, height = image_size
    pts = np.asarray(scan, dtype=np.float64).reshape(-1, 4)[:, :3]
    pts = pts[pts[:, 0] >= 0].T                                                    # (3, N), ahead of the car
    # A rectified KITTI P is K [I | t]: the camera's offset from cam0 is t = K^-1 P[:, 3].
    p = np.asarray(p_left, dtype=np.float64)
    k = p[:, :3]
    cam = transform_points(np.vstack([np.asarray(tr_velo_cam, np.float64), [0, 0, 0, 1]]), pts)
    pix, z = project(cam + np.linalg.solve(k, p[:, 3:]), k)                        # (2, N), (1, N)
    off = 1.0 if matlab_offset else 0.0
    u = np.round(pix[0]) - off
    v = np.round(pix[1]) - off
    ok = (z[0] > 0) & np.isfinite(u) & np.isfinite(v) & (u >= 0) & (v >= 0) & (u < width) & (v < height)
    u, v, z = u[ok].astype(np.int64), v[ok].astype(np.int64), z[0, ok]
    depth = np.full(height * width, np.inf)
    np.minimum.at(depth, v * width + u, z)
    depth[~np.isfinite(depth)] = 0.0
    depth[depth < 0] = 0.0
    return depth.reshape(height, width).astype(np.float32)


def _velodyne_available(root: Path) -> bool:
    return (root / "velodyne").is_dir() and "Tr" in read_calib(root)


def choose_gt(seq, gt: str = "auto") -> str:
    """Resolve ``gt`` ('auto' | npy | velodyne | sgbm) for a sequence; DepthTruthError if unusable."""
    root = Path(seq.root)
    has_png = bool(getattr(seq, "depth", None)) and any(p is not None for p in seq.depth)
    has_npy = (root / "depth").is_dir() and any((root / "depth").glob("*.npy"))
    has_velo = _velodyne_available(root)
    has_stereo = seq.right is not None and seq.baseline is not None
    if gt == "auto":
        if has_png:
            return "png"
        if has_npy:
            return "npy"
        if has_velo:
            return "velodyne"
        if has_stereo:
            return "sgbm"
        raise DepthTruthError(
            f"{root}: no depth ground truth: needs depth_0/NNNNNN.png (uint16, metres * 256), "
            "depth/NNNNNN.npy, or velodyne/NNNNNN.bin with a 'Tr:' line in calib.txt, or a right camera "
            "(image_1/ + P1) for SGBM pseudo-GT")
    if gt not in GT_SOURCES:
        raise DepthTruthError(f"gt must be one of auto, {', '.join(GT_SOURCES)}; got {gt!r}")
    if gt == "png" and not has_png:
        raise DepthTruthError(f"{root}: --gt png needs depth_0/NNNNNN.png files (uint16, metres = value / 256)")
    if gt == "npy" and not has_npy:
        raise DepthTruthError(f"{root}: --gt npy needs depth/NNNNNN.npy files (float32 metres)")
    if gt == "velodyne" and not has_velo:
        raise DepthTruthError(f"{root}: --gt velodyne needs velodyne/NNNNNN.bin and a 'Tr:' line "
                             "(Velodyne -> cam0, 12 numbers) in calib.txt")
    if gt == "sgbm" and not has_stereo:
        raise DepthTruthError(f"{root}: --gt sgbm needs the right camera: image_1/ (or image_3/) and "
                             "P1 (P3) in calib.txt")
    return gt


class GroundTruth:
    """Depth ground truth per frame index, at full image resolution."""

    def __init__(self, seq, source: str, matlab_offset: bool = True):
        self.seq = seq
        self.source = source
        self.root = Path(seq.root)
        self.matlab_offset = matlab_offset
        self.settings: dict = {"source": source}
        if source == "velodyne":
            calib = read_calib(self.root)
            left_key = "P0" if seq.left[0].parent.name == "image_0" else "P2"
            self.tr, self.p_left = calib["Tr"], calib[left_key]
            self.settings.update(projection=f"{left_key} @ Tr", matlab_offset=matlab_offset)
        elif source == "sgbm":
            fxb = seq.k[0, 0] * seq.baseline
            self.num_disp = int(min(256, max(16, math.ceil(fxb / 3.0 / 16.0) * 16)))
            self.settings.update(num_disparities=self.num_disp, block_size=5,
                                 nearest_depth_m=float(fxb / (self.num_disp - 1)),
                                 note="stereo pseudo ground truth, not LiDAR")

    def __call__(self, i: int, left: np.ndarray) -> np.ndarray:
        from vode_ros.core.kitti import read_image

        if self.source == "png":
            from vode_ros.core.kitti import read_depth

            path = self.seq.depth[i]
            if path is None:                       # a frame without a depth image: nothing to score
                return np.zeros(left.shape[:2], dtype=np.float32)
            return read_depth(path)
        if self.source == "npy":
            path = self.root / "depth" / f"{self.seq.left[i].stem}.npy"
            if not path.is_file():
                raise DepthTruthError(f"{path}: missing (depth/ must hold one .npy per left image)")
            return np.load(path).astype(np.float32)
        if self.source == "velodyne":
            path = self.root / "velodyne" / f"{self.seq.left[i].stem}.bin"
            if not path.is_file():
                raise DepthTruthError(f"{path}: missing (velodyne/ must hold one scan per left image)")
            scan = np.fromfile(path, dtype=np.float32).reshape(-1, 4)
            return velodyne_depth_map(scan, self.tr, self.p_left, self.seq.image_size, self.matlab_offset)
        from vode_ros.core.stereo_depth import sgbm_depth

        right = read_image(self.seq.right[i])
        return sgbm_depth(left, right, float(self.seq.k[0, 0]), float(self.seq.baseline),
                          num_disparities=self.num_disp, block_size=5)


