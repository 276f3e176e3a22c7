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

numpy + OpenCV only (no torch).
"""
from __future__ import annotations

import numpy as np


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
    depth = np.zeros(disp.shape, dtype=np.float32)
    valid = disp > 0
    depth[valid] = np.float32(fx * baseline) / disp[valid]
    depth[(depth < min_depth) | (depth > max_depth)] = 0.0
    return depth
