"""Training frames straight from a rosbag2 (mcap or sqlite3, read with rosbags; no ROS install needed).

    seq = load_bag("run.mcap-folder", "/camera/left/image_raw", right_topic="/camera/right/image_raw")

- images: ``sensor_msgs/Image`` (mono8, rgb8, bgr8, rgba8, bgra8, ...) or
  ``sensor_msgs/CompressedImage`` (jpeg / png) on ``image_topic``; decoded to grey (H, W) or RGB
  (H, W, 3) uint8 and, with ``size``, resized (INTER_AREA) to the training size right away so a
  long bag fits in memory;
- intrinsics: the first ``sensor_msgs/CameraInfo`` on ``info_topic`` (default: the image topic's
  namespace + ``/camera_info``, e.g. /camera/left/image_raw -> /camera/left/camera_info), taken as the
  run-time nodes take it: raw images (D, R in the CameraInfo) are rectified by K, D, R -> P before
  anything else (``rectify``: auto | on | off, auto: unless the topic is an image_rect; the nodes'
  ``rectify`` parameter) and the intrinsics are P's, scaled with the frames;
- stereo (``right_topic``): each left frame is paired with the right frame of the nearest stamp
  (within ``sync_tolerance`` seconds, default half the median left frame period); left frames
  without a partner are dropped; the baseline comes from the right CameraInfo's P (P[0, 3] =
  -fx * baseline, ROS convention), as the run time reads it;
- time stamps: the header stamps. Static frames are dropped later by the snippet dataset
  (``data.static_filter``), which ``vode train --bag`` turns on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .sequences import FrameSequence

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
INFO_TYPE = "sensor_msgs/msg/CameraInfo"


class BagDataError(ValueError):
    """The bag lacks a topic or holds data that cannot be used; the message says which."""


def default_info_topic(image_topic: str) -> str:
    ns = image_topic.rsplit("/", 1)[0] if "/" in image_topic.strip("/") else ""
    return f"{ns}/camera_info"


def _decode(msg, msgtype: str, color: str) -> np.ndarray:
    from vode_ros.core.image_codec import decode_compressed, decode_image, to_gray, to_rgb

    if msgtype.endswith("CompressedImage"):
        arr, enc = decode_compressed(msg.format, bytes(msg.data))
    else:
        enc = msg.encoding
        arr = decode_image(enc, int(msg.height), int(msg.width), int(msg.step), bool(msg.is_bigendian),
                           bytes(msg.data) if not isinstance(msg.data, np.ndarray) else msg.data.tobytes())
    if arr.dtype != np.uint8:
        raise BagDataError(f"image encoding {enc!r}: 8-bit images needed for training")
    return to_gray(arr, enc) if color == "gray" else to_rgb(arr, enc)


def _resize(img: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    import cv2

    if size is None or (img.shape[1], img.shape[0]) == tuple(size):
        return img
    return cv2.resize(img, tuple(size), interpolation=cv2.INTER_AREA)


def bag_topics(bag: str | Path) -> dict[str, str]:
    """{topic: message type} of a bag."""
    from vode_ros.bag.reader import open_bag

    with open_bag(bag) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


def _first_infos(reader, topics: set[str]) -> dict[str, Any]:
    """The first CameraInfo on each of `topics` (a pass over those connections alone)."""
    found: dict[str, Any] = {}
    for conn, _, raw in reader.messages(connections=[c for c in reader.connections if c.topic in topics]):
        if conn.topic not in found:
            found[conn.topic] = reader.deserialize(raw, conn.msgtype)
            if len(found) == len(topics):
                break
    return found


def _camera(bag, info, info_topic: str, image_topic: str, rectify: str):
    """(Rectifier or None, (3, 3) K of the images after it, CameraInfo size) as the run-time nodes take
    this CameraInfo: raw images remapped by K, D, R -> P (core.rectify), P's intrinsics."""
    from vode_ros.core.rectify import (calibration_from_info, intrinsics_problem, rectification_needed,
                                       rectification_problem, rectifier_for)

    cal = calibration_from_info(info)
    if cal.k_raw[0, 0] <= 0 or cal.k_raw[1, 1] <= 0:
        raise BagDataError(f"{bag}: {info_topic} has no intrinsics (k[0] = {cal.k_raw[0, 0]}); calibrate the camera first")
    if cal.width <= 0 or cal.height <= 0:
        raise BagDataError(f"{bag}: {info_topic} has width/height 0")
    problem = intrinsics_problem(cal)
    if problem:
        raise BagDataError(f"{bag}: {info_topic}: {problem}")
    if not rectification_needed(cal, rectify, image_topic):
        return None, cal.k_rect, (cal.width, cal.height)
    problem = rectification_problem(cal)
    if problem:
        raise BagDataError(f"{bag}: the images of {image_topic} cannot be rectified: {problem}; or train on them "
                           "as they come with data.rectify=off")
    return rectifier_for(cal), cal.k_rect, (cal.width, cal.height)


def load_bag(bag: str | Path, image_topic: str, info_topic: str = "", right_topic: str = "",
             right_info_topic: str = "", color: str = "gray", size: tuple[int, int] | None = None,
             max_frames: int | None = None, sync_tolerance: float = 0.0, rectify: str = "auto") -> FrameSequence:
    """Frames of ``image_topic`` (+ paired ``right_topic``) with intrinsics from CameraInfo; see the module doc."""
    from vode_ros.bag.reader import BagReadError, open_bag, stamp_to_ns
    from vode_ros.core.geometry import scale_intrinsics
    from vode_ros.core.rectify import RECTIFY_MODES

    if rectify not in RECTIFY_MODES:
        raise BagDataError(f"data.rectify must be one of {', '.join(RECTIFY_MODES)}, got {rectify!r}")
    info_topic = info_topic or default_info_topic(image_topic)
    if right_topic:
        right_info_topic = right_info_topic or default_info_topic(right_topic)
    try:
        reader_cm = open_bag(bag)
    except BagReadError as exc:
        raise BagDataError(str(exc)) from None
    left: list[tuple[int, np.ndarray]] = []
    right: list[tuple[int, np.ndarray]] = []
    with reader_cm as reader:
        types = {c.topic: c.msgtype for c in reader.connections}

        def need(topic: str, allowed: tuple[str, ...], what: str) -> None:
            if topic not in types:
                listing = ", ".join(f"{t} ({ty})" for t, ty in sorted(types.items()))
                raise BagDataError(f"{bag}: no {what} topic {topic!r}; the bag has: {listing}")
            if types[topic] not in allowed:
                raise BagDataError(f"{bag}: {topic} is {types[topic]}, expected {' or '.join(allowed)}")

        need(image_topic, IMAGE_TYPES, "image")
        need(info_topic, (INFO_TYPE,), "CameraInfo (set data.info_topic / --info-topic)")
        if right_topic:
            need(right_topic, IMAGE_TYPES, "right image")
            need(right_info_topic, (INFO_TYPE,), "right CameraInfo (set data.right_info_topic)")
        infos = _first_infos(reader, {info_topic, right_info_topic} - {""})
        for topic in (info_topic, right_info_topic):
            if topic and topic not in infos:
                raise BagDataError(f"{bag}: no message on {topic}")
        rect_left, k_info, info_wh = _camera(bag, infos[info_topic], info_topic, image_topic, rectify)
        cameras = {image_topic: (rect_left, info_wh)}
        if right_topic:
            rect_right, _, right_wh = _camera(bag, infos[right_info_topic], right_info_topic, right_topic, rectify)
            cameras[right_topic] = (rect_right, right_wh)
        conns = [c for c in reader.connections if c.topic in {image_topic, right_topic}]
        for conn, log_ns, raw in reader.messages(connections=conns):
            topic = conn.topic
            if topic == image_topic and max_frames and len(left) >= max_frames and not right_topic:
                break
            msg = reader.deserialize(raw, conn.msgtype)
            stamp = stamp_to_ns(msg.header.stamp) if getattr(msg, "header", None) is not None else int(log_ns)
            img = _decode(msg, conn.msgtype, color)
            rectifier, wh = cameras[topic]
            if rectifier is not None:
                if (img.shape[1], img.shape[0]) != wh:
                    raise BagDataError(f"{bag}: an image on {topic} is {img.shape[1]}x{img.shape[0]} but its CameraInfo "
                                       f"says {wh[0]}x{wh[1]}: cannot rectify it")
                img = rectifier(img)
            (left if topic == image_topic else right).append((stamp, _resize(img, size)))
    if len(left) < 2:
        raise BagDataError(f"{bag}: {len(left)} images on {image_topic}; need a video")
    left.sort(key=lambda x: x[0])
    baseline = None
    if right_topic:
        right_info = infos[right_info_topic]
        fx_r, tx_r = float(right_info.p[0]), float(right_info.p[3])
        if not (fx_r > 0 and tx_r < 0):
            raise BagDataError(f"{bag}: {right_info_topic} P[0, 3] = {tx_r}: expected -fx * baseline < 0 "
                               f"(ROS stereo convention) for the right camera")
        baseline = -tx_r / fx_r
        right.sort(key=lambda x: x[0])
        if not right:
            raise BagDataError(f"{bag}: no images on {right_topic}")
        l_st = np.array([s for s, _ in left], dtype=np.int64)
        r_st = np.array([s for s, _ in right], dtype=np.int64)
        tol = sync_tolerance or 0.5 * float(np.median(np.diff(l_st))) / 1e9
        idx = np.clip(np.searchsorted(r_st, l_st), 1, len(r_st) - 1) if len(r_st) > 1 else np.zeros(len(l_st), int)
        if len(r_st) > 1:
            idx = np.where(np.abs(r_st[idx - 1] - l_st) <= np.abs(r_st[idx] - l_st), idx - 1, idx)
        pairs = [(i, int(j)) for i, j in enumerate(idx) if abs(r_st[j] - l_st[i]) <= tol * 1e9]
        if len(pairs) < 2:
            raise BagDataError(f"{bag}: fewer than 2 left/right pairs within {tol * 1e3:.1f} ms")
        left_imgs = [left[i][1] for i, _ in pairs]
        right_imgs = [right[j][1] for _, j in pairs]
        stamps = np.array([left[i][0] for i, _ in pairs], dtype=np.int64)
    else:
        left_imgs = [img for _, img in left]
        right_imgs = None
        stamps = np.array([s for s, _ in left], dtype=np.int64)
    if max_frames:
        left_imgs, stamps = left_imgs[:max_frames], stamps[:max_frames]
        right_imgs = right_imgs[:max_frames] if right_imgs is not None else None
    h, w = left_imgs[0].shape[:2]
    k = scale_intrinsics(k_info, info_wh, (w, h))
    name = f"{Path(bag).name}:{image_topic}"
    return FrameSequence(name, left_imgs, k, (w, h), right_imgs, baseline, None, stamps.astype(np.float64) / 1e9)


def auto_topics(bag: str | Path, stereo: bool = False) -> tuple[str, str]:
    """(image topic, right image topic or '') of a bag: image topics with a sibling camera_info,
    the one named '*left*' first (else the first by name); the right one named '*right*'."""
    types = bag_topics(bag)
    cands = sorted(t for t, ty in types.items()
                   if ty in IMAGE_TYPES and types.get(default_info_topic(t)) == INFO_TYPE)
    if not cands:
        raise BagDataError(f"{bag}: no image topic with a sibling camera_info; topics: {sorted(types)}")
    rights = [t for t in cands if "right" in t]
    lefts = [t for t in cands if t not in rights]
    image = next((t for t in lefts if "left" in t), (lefts or cands)[0])
    right = rights[0] if (stereo and rights) else ""
    return image, right
