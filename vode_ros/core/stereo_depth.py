"""*Pseudo* ground-truth depth from a rectified stereo pair (OpenCV semi-global matching).

This is not Velodyne ground truth: SGBM is itself an estimate, with errors at occlusions,
textureless and reflective surfaces and thin structures, growing quadratically with depth
(one pixel of disparity at 80 m on KITTI is ~15 m). It serves to evaluate depth on clips
that come without LiDAR; report numbers against it as "vs. SGBM pseudo-GT", evaluate with
``garg_crop=False`` or the crop that fits, and don't compare them with published Eigen-split
figures.

Validity: 0 marks invalid pixels (no match, failed uniqueness / left-right check, speckle,
the left border of ``num_disparities`` columns that has no match range, depth outside
``[min_depth, max_depth]``). With ``num_disparities`` = 128 the nearest measurable depth is
``fx * b / 127`` (≈ 3 m on KITTI at full resolution).

The one semi-global matcher of the project. Named presets (:data:`PRESETS`) say what each use
runs: ``pseudo_gt`` at the resolution given (evaluation, depth hints), ``run_time`` on the pair
downscaled by a whole factor to about 416 px wide (the odometry's geometry depth and the depth
node's stereo scale, one match per pair: :func:`pair_depth`).

numpy + OpenCV only (no torch).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vode_ros.core.geometry import stereo_disparity_to_depth


def _as_grey_u8(img: np.ndarray, name: str) -> np.ndarray:
    import cv2

    img = np.asarray(img)
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if img.ndim != 2:
        raise ValueError(f"{name} must be (H, W) grey or (H, W, 3), got {img.shape}")
    if img.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got {img.dtype}")
    return np.ascontiguousarray(img)


def sgbm_disparity(left: np.ndarray, right: np.ndarray, num_disparities: int = 128,
                   block_size: int = 5, uniqueness: int = 10, speckle_window: int = 100,
                   speckle_range: int = 2, lr_max_diff: int = 1, full_dp: bool = False
                   ) -> np.ndarray:
    """Left-image disparity in pixels (float32); <= 0 where invalid.

    P1 = 8·bs², P2 = 32·bs² (grey input, OpenCV's recommended smoothness), pre-filter cap 63,
    uniqueness margin ``uniqueness`` %, speckle filter (window ``speckle_window`` px, range
    ``speckle_range`` px), left-right consistency via ``disp12MaxDiff = lr_max_diff`` px.
    ``full_dp`` selects the full 8-direction mode (HH, slower); default is 3-way SGBM.
    """
    import cv2

    left = _as_grey_u8(left, "left")
    right = _as_grey_u8(right, "right")
    if left.shape != right.shape:
        raise ValueError(f"left {left.shape} and right {right.shape} differ in size")
    num_disparities = int(np.ceil(num_disparities / 16) * 16)
    if block_size % 2 == 0 or block_size < 1:
        raise ValueError(f"block_size must be odd, got {block_size}")
    matcher = cv2.StereoSGBM_create(
        minDisparity=0,
        numDisparities=num_disparities,
        blockSize=block_size,
        P1=8 * block_size * block_size,
        P2=32 * block_size * block_size,
        disp12MaxDiff=lr_max_diff,
        preFilterCap=63,
        uniquenessRatio=uniqueness,
        speckleWindowSize=speckle_window,
        speckleRange=speckle_range,
        mode=cv2.STEREO_SGBM_MODE_HH if full_dp else cv2.STEREO_SGBM_MODE_SGBM_3WAY,
    )
    disp16 = matcher.compute(left, right)  # int16, fixed point with 4 fractional bits
    return disp16.astype(np.float32) / 16.0


def sgbm_depth(left: np.ndarray, right: np.ndarray, fx: float, baseline: float,
               num_disparities: int = 128, block_size: int = 5,
               min_depth: float = 1e-3, max_depth: float = 80.0, **sgbm_kwargs) -> np.ndarray:
    """Pseudo-GT depth (metres, float32, 0 = invalid) of the left image of a rectified pair.

    depth = fx · baseline / disparity, with ``fx`` in pixels *at the resolution of the
    images passed* and ``baseline`` in metres. Invalid where disparity <= 0 or the depth falls
    outside ``[min_depth, max_depth]``. Extra keyword arguments go to :func:`sgbm_disparity`.
    """
    disp = sgbm_disparity(left, right, num_disparities=num_disparities, block_size=block_size,
                          **sgbm_kwargs)
    depth = stereo_disparity_to_depth(disp, fx, baseline)
    depth[(depth < min_depth) | (depth > max_depth)] = 0.0
    return depth


@dataclass(frozen=True)
class StereoPreset:
    """How a use of the matcher runs it. ``work_width`` 0: at the resolution given; else the pair is
    downscaled by a whole factor to about that width and ``num_disparities`` (at full resolution)
    shrinks with it."""
    work_width: int = 0
    num_disparities: int = 128
    block_size: int = 5
    max_depth: float = 80.0


PRESETS = {
    "pseudo_gt": StereoPreset(),
    # About 416 px wide, a third of KITTI's resolution (the pose benchmark: ~15x faster than full
    # resolution on KITTI and as accurate for the motion, ATE-5 0.0095 / 0.0156 m on the 06 / 00
    # clips vs 0.0100 / 0.0157 at half resolution; matching only the tracked corners along the row
    # by LK instead was cheaper but worse, 0.0119 m and 1.3 % end drift on 06 vs 0.49 %: corners sit
    # on depth edges, where a window's disparity is a blend). At the depth net's 416 px the depth
    # node's stereo scale reads the same map.
    "run_time": StereoPreset(work_width=416),
}


def work_divisor(width: int, work_width: int) -> int:
    """Whole downscale factor that brings an image ``width`` px wide to about ``work_width`` (>= 1)."""
    return 1 if work_width <= 0 else max(1, round(width / work_width))


def pair_depth(left: np.ndarray, right: np.ndarray, fx: float, baseline: float, preset: str | StereoPreset = "run_time",
               div: int | None = None) -> np.ndarray:
    """(H, W) grey or RGB uint8 rectified pair (fx in px at (W, H), baseline m) -> (H/div, W/div)
    metres, 0 = none, by the preset (a name of :data:`PRESETS` or a StereoPreset).

    div: the downscale factor; None: the preset's (:func:`work_divisor`)."""
    import cv2

    p = PRESETS[preset] if isinstance(preset, str) else preset
    left, right = _as_grey_u8(left, "left"), _as_grey_u8(right, "right")
    h, w = left.shape[:2]
    div = work_divisor(w, p.work_width) if div is None else int(div)
    if div > 1:
        wh = (w // div, h // div)
        left = cv2.resize(left, wh, interpolation=cv2.INTER_AREA)
        right = cv2.resize(right, wh, interpolation=cv2.INTER_AREA)
        fx = fx * wh[0] / w
    return sgbm_depth(left, right, fx, baseline, num_disparities=p.num_disparities // div, block_size=p.block_size,
                      max_depth=p.max_depth)
