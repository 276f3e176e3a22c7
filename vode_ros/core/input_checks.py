"""Checks of camera input before it reaches a model: CameraInfo intrinsics and image size.

Each returns None when the input is usable, else one sentence naming the problem and the way
out (the nodes log it, count it and report it on /diagnostics). No ROS, no numpy arrays needed.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

# Below this many pixels a side an image carries no usable structure for a depth or pose net
# (a 1x1 "image" would be upsampled into a constant depth map and a jump of the odometry).
MIN_IMAGE_SIDE = 16


def camera_info_problem(k: Sequence[float], width: int, height: int) -> str | None:
    """Problem with a CameraInfo's K (row-major 3x3) and size, or None."""
    if width <= 0 or height <= 0:
        return f"size {width}x{height}: the camera driver must fill width and height"
    if len(k) != 9:
        return f"K has {len(k)} values, not 9"
    bad = [i for i, v in enumerate(k) if not math.isfinite(v)]
    if bad:
        return f"K has non-finite values ({', '.join(f'K[{i}]={k[i]}' for i in bad[:3])}): calibrate the camera"
    fx, cx, fy, cy = k[0], k[2], k[4], k[5]
    if fx <= 0 or fy <= 0:
        return f"focal lengths fx={fx:g}, fy={fy:g} must be > 0 (K[0], K[4]): calibrate the camera"
    if not (0 <= cx <= width and 0 <= cy <= height):
        return (f"principal point ({cx:g}, {cy:g}) lies outside the {width}x{height} image: this CameraInfo "
                "belongs to another resolution or camera")
    if k[8] != 1 or k[3] != 0 or k[6] != 0 or k[7] != 0:
        return f"K is not an intrinsic matrix (K[3], K[6], K[7] must be 0 and K[8] 1; got {k[3]:g}, {k[6]:g}, " \
               f"{k[7]:g}, {k[8]:g})"
    return None


def image_size_problem(width: int, height: int, max_pixels: int,
                       min_side: int = MIN_IMAGE_SIDE) -> tuple[str, str] | None:
    """(reason, problem) of an image's size before it is decoded, or None.

    The reasons (image_empty, image_too_small, image_too_large) are counted and logged apart.
    """
    if width <= 0 or height <= 0:
        return "image_empty", f"empty image ({width}x{height})"
    if min(width, height) < min_side:
        return "image_too_small", (f"image is {width}x{height}: smaller than {min_side} pixels a side, too small "
                                   "to estimate depth or motion from")
    if max_pixels > 0 and width * height > max_pixels:
        return "image_too_large", (f"image is {width}x{height} = {width * height / 1e6:.1f} MP, over "
                                   f"max_image_pixels = {max_pixels / 1e6:.1f} MP: publish a downscaled image "
                                   "(image_proc resize) or raise max_image_pixels")
    return None
