"""sensor_msgs/Image and CompressedImage payloads <-> numpy, without ROS imports.

cv_bridge is not on PyPI; these are the few lines of it the nodes need (encoding, step,
endianness). Functions take the message's fields so they run and are tested without ROS.
"""
from __future__ import annotations

import numpy as np

# encoding -> (channels, dtype)
DECODABLE = {
    "mono8": (1, np.uint8),
    "rgb8": (3, np.uint8),
    "bgr8": (3, np.uint8),
    "rgba8": (4, np.uint8),
    "bgra8": (4, np.uint8),
    "32FC1": (1, np.float32),
    "16UC1": (1, np.uint16),     # depth in millimetres (REP-118's other depth encoding)
    "mono16": (1, np.uint16),
}
IMAGE_ENCODINGS = ("mono8", "rgb8", "bgr8", "rgba8", "bgra8")


class ImageDecodeError(ValueError):
    """The image cannot be used; the message names the problem and what is accepted."""


def decode_image(
    encoding: str, height: int, width: int, step: int, is_bigendian: bool, data: bytes | memoryview
) -> np.ndarray:
    """Image message fields -> array (H, W) or (H, W, C) in the message's channel order."""
    if encoding not in DECODABLE:
        raise ImageDecodeError(
            f"unsupported encoding '{encoding}'; use one of {', '.join(DECODABLE)} "
            "(convert bayer/yuv/16-bit images with image_proc first)"
        )
    channels, dtype = DECODABLE[encoding]
    itemsize = np.dtype(dtype).itemsize
    row_bytes = width * channels * itemsize
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"empty image ({width}x{height})")
    if step < row_bytes:
        raise ImageDecodeError(f"step {step} is smaller than width*channels*bytes = {row_bytes}")
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size < step * (height - 1) + row_bytes:
        raise ImageDecodeError(
            f"truncated data: {buf.size} bytes for {width}x{height} {encoding} with step {step} "
            f"(need {step * height})"
        )
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row_bytes), strides=(step, 1))
    arr = np.ascontiguousarray(rows).view(dtype)
    if itemsize > 1 and bool(is_bigendian) != (np.little_endian is False):
        arr = arr.byteswap()
    return arr.reshape(height, width, channels) if channels > 1 else arr.reshape(height, width)


def to_gray(img: np.ndarray, encoding: str) -> np.ndarray:
    """Any decodable 8-bit image -> (H, W) uint8 grey (ITU-R 601 luma as OpenCV)."""
    if img.ndim == 2:
        return img
    rgb = img[..., :3] if encoding.startswith("rgb") else img[..., 2::-1]
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.clip(luma + 0.5, 0, 255).astype(np.uint8)


def to_rgb(img: np.ndarray, encoding: str) -> np.ndarray:
    """Any decodable 8-bit image -> (H, W, 3) uint8 RGB."""
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3] if encoding.startswith("rgb") else img[..., 2::-1])


def decode_compressed(fmt: str, data: bytes | memoryview) -> tuple[np.ndarray, str]:
    """CompressedImage (jpeg/png) -> (array, encoding of the array)."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageDecodeError(f"cannot decode CompressedImage with format '{fmt}' (jpeg and png are supported)")
    if arr.ndim == 2:
        return arr, "mono8"
    return arr, ("bgra8" if arr.shape[2] == 4 else "bgr8")


def encode_image(arr: np.ndarray, encoding: str) -> dict:
    """numpy -> Image fields (encoding, height, width, step, is_bigendian, data)."""
    if encoding not in DECODABLE:
        raise ImageDecodeError(f"cannot encode '{encoding}'")
    channels, dtype = DECODABLE[encoding]
    arr = np.ascontiguousarray(arr, dtype=dtype)
    h, w = arr.shape[:2]
    return {
        "encoding": encoding,
        "height": h,
        "width": w,
        "step": w * channels * np.dtype(dtype).itemsize,
        "is_bigendian": 0 if np.little_endian else 1,
        "data": arr.tobytes(),
    }
