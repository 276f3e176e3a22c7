"""A camera's raw image -> the rectified pinhole image the nets and the geometry assume, from its
calibration (what image_proc's rectify node does). No ROS: the nodes fill a Calibration from
sensor_msgs/CameraInfo.

The ROS convention (CameraInfo, image_geometry): K and D describe the raw, distorted image; R
rotates the camera into the rectified frame (stereo rigs; identity for one camera); P = [K' | t]
projects into the rectified image, whose intrinsics are K'. A node fed `image_rect` uses K' as it
is; a node fed `image_raw` first maps each pixel through (K, D, R, K'). Where D is zero, R the
identity and K' = K, the two images are the same and nothing is remapped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

# Distortion models of sensor_msgs/distortion_models.h -> the numbers of coefficients OpenCV takes.
DISTORTION_MODELS = {"plumb_bob": (5,), "rational_polynomial": (8, 12, 14), "equidistant": (4,)}
RECTIFY_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class Calibration:
    """What a CameraInfo says about the image geometry (row-major tuples, as in the message).

    r and p all zero mean "not given" (a driver that fills only K): then R = I and P = [K | 0].
    """

    width: int
    height: int
    k: tuple[float, ...]           # 9
    d: tuple[float, ...]           # as many as the model has
    r: tuple[float, ...] = ()      # 9, or empty / zeros
    p: tuple[float, ...] = ()      # 12, or empty / zeros
    model: str = "plumb_bob"

    @property
    def k_raw(self) -> np.ndarray:
        """(3, 3) intrinsics of the raw image."""
        return np.asarray(self.k, np.float64).reshape(3, 3)

    @property
    def k_rect(self) -> np.ndarray:
        """(3, 3) intrinsics of the rectified image: P's left 3x3 where P is given, else K."""
        if len(self.p) == 12 and any(self.p):
            return np.asarray(self.p, np.float64).reshape(3, 4)[:, :3].copy()
        return self.k_raw

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) R: raw camera -> rectified camera."""
        return np.asarray(self.r, np.float64).reshape(3, 3) if len(self.r) == 9 and any(self.r) else np.eye(3)

    @property
    def distorted(self) -> bool:
        return any(c != 0.0 for c in self.d)

    @property
    def raw_is_rectified(self) -> bool:
        """The raw image is already the rectified one: no distortion, no rotation, K' = K."""
        return (not self.distorted and np.allclose(self.rotation, np.eye(3), atol=1e-9)
                and np.allclose(self.k_rect, self.k_raw, rtol=1e-9, atol=1e-9))

    def describe(self) -> str:
        return f"{self.model or 'no model'}, {len(self.d)} coefficients"


def calibration_from_info(info) -> Calibration:
    """A sensor_msgs/CameraInfo (an rclpy message, or one read from a bag with rosbags: the same
    fields) -> the Calibration of the image published with it.

    K, P, width and height describe the full sensor; a driver that bins (binning_x / _y > 1) or
    crops (roi) publishes a smaller image, whose camera is K and P shifted by the ROI offset and
    divided by the binning, as image_geometry's PinholeCameraModel takes them (D and R, in
    normalised coordinates, stay)."""
    bx, by = max(1, int(info.binning_x)), max(1, int(info.binning_y))
    roi = info.roi
    x0, y0 = int(roi.x_offset), int(roi.y_offset)
    full_w, full_h = int(roi.width) or int(info.width), int(roi.height) or int(info.height)
    k, p = [float(v) for v in info.k], [float(v) for v in info.p]
    if (bx, by, x0, y0) != (1, 1, 0, 0) and len(k) == 9:
        k[0], k[2], k[4], k[5] = k[0] / bx, (k[2] - x0) / bx, k[4] / by, (k[5] - y0) / by
        if len(p) == 12 and any(p):
            p[0:4] = [p[0] / bx, p[1] / bx, (p[2] - x0) / bx, p[3] / bx]
            p[4:8] = [p[4] / by, p[5] / by, (p[6] - y0) / by, p[7] / by]
    return Calibration(width=full_w // bx, height=full_h // by, k=tuple(k), d=tuple(map(float, info.d)),
                       r=tuple(map(float, info.r)), p=tuple(p), model=str(info.distortion_model))


def intrinsics_problem(cal: Calibration) -> str | None:
    """Why P (the rectified camera, whose intrinsics the nodes use) is unusable, or None. K itself is
    checked by core.input_checks.camera_info_problem."""
    if len(cal.p) not in (0, 12):
        return f"P has {len(cal.p)} values, not 12"
    if not all(math.isfinite(v) for v in cal.p):
        return "P has non-finite values: calibrate the camera"
    k = cal.k_rect
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        return f"P's focal lengths fx={k[0, 0]:g}, fy={k[1, 1]:g} must be > 0 (P[0], P[5]): calibrate the camera"
    return None


def rectification_problem(cal: Calibration) -> str | None:
    """Why the raw images of `cal` cannot be remapped (distortion model, coefficients, R), or None."""
    if cal.distorted:
        if cal.model not in DISTORTION_MODELS:
            return (f"distortion_model '{cal.model}' is not supported (supported: {', '.join(DISTORTION_MODELS)}): "
                    "rectify with image_proc and subscribe to image_rect")
        if len(cal.d) not in DISTORTION_MODELS[cal.model]:
            return (f"distortion_model '{cal.model}' takes {' or '.join(map(str, DISTORTION_MODELS[cal.model]))} "
                    f"coefficients, D has {len(cal.d)}: calibrate the camera again")
    if not all(math.isfinite(v) for v in cal.d):
        return "D has non-finite values: calibrate the camera"
    if len(cal.r) not in (0, 9) or not all(math.isfinite(v) for v in cal.r):
        return f"R must be 9 finite values, got {list(cal.r)}"
    return None


def rectification_needed(cal: Calibration, mode: str, topic: str) -> bool:
    """Whether the node remaps the images of `topic` (rectify parameter: auto | on | off).

    auto rectifies unless the topic's name says its images are rectified already (image_rect...,
    what image_proc publishes beside the raw CameraInfo, D included)."""
    if mode == "off" or cal.raw_is_rectified:
        return False
    if mode == "on":
        return True
    return not topic.rstrip("/").rsplit("/", 1)[-1].startswith("image_rect")


class Rectifier:
    """Remaps raw images of one calibration into its rectified image (same size)."""

    def __init__(self, cal: Calibration):
        size = (int(cal.width), int(cal.height))
        k, r, k_new = cal.k_raw, cal.rotation, cal.k_rect
        d = np.asarray(cal.d, np.float64)
        if cal.model == "equidistant":
            self.map1, self.map2 = cv2.fisheye.initUndistortRectifyMap(k, d, r, k_new, size, cv2.CV_16SC2)
        else:
            self.map1, self.map2 = cv2.initUndistortRectifyMap(k, d, r, k_new, size, cv2.CV_16SC2)

    def __call__(self, image: np.ndarray, nearest: bool = False) -> np.ndarray:
        """(H, W) or (H, W, C) raw -> the same shape, rectified; pixels that map outside the raw image are 0.
        nearest: no blending between neighbours (a depth image: blending across an edge invents depths)."""
        return cv2.remap(image, self.map1, self.map2, cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT)


@lru_cache(maxsize=4)
def rectifier_for(cal: Calibration) -> Rectifier:
    """The Rectifier of `cal`, built once: a camera repeats its CameraInfo with every image."""
    return Rectifier(cal)
