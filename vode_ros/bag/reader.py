"""Small helpers to read rosbag2 bags (mcap or sqlite3) with rosbags, no ROS install needed.

``bag_path`` is the bag folder (the one holding metadata.yaml); the .mcap / .db3 file
inside it is accepted too.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from vode_ros.core import frames

# encoding -> (numpy dtype char/size, channels)
_ENCODINGS = {
    "mono8": ("u1", 1),
    "8uc1": ("u1", 1),
    "rgb8": ("u1", 3),
    "bgr8": ("u1", 3),
    "8uc3": ("u1", 3),
    "mono16": ("u2", 1),
    "16uc1": ("u2", 1),
    "32fc1": ("f4", 1),
}


class BagReadError(ValueError):
    """The path is not a readable rosbag2, or a message cannot be decoded."""


def _bag_dir(bag_path: str | Path) -> Path:
    path = Path(bag_path)
    if path.is_file() and path.suffix in (".mcap", ".db3") and (path.parent / "metadata.yaml").is_file():
        return path.parent
    if not path.exists():
        raise BagReadError(f"{path}: no such bag (expected a rosbag2 folder with metadata.yaml)")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise BagReadError(f"{path}: no metadata.yaml; not a rosbag2 folder (give the folder `ros2 bag record` wrote)")
    return path


def _damaged(path: Path, exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    return (f"{path}: damaged, truncated or unfinished rosbag2 ({first}); the recording was not closed cleanly "
            "or the file was cut short: record or convert it again")


class _Reader:
    """rosbags' AnyReader whose open and read errors become BagReadError naming the bag."""

    def __init__(self, path: Path):
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        self.path = path
        self._reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED))

    def __enter__(self) -> "_Reader":
        try:
            self._reader.__enter__()
        except Exception as exc:  # noqa: BLE001 - rosbags raises several types for damaged files
            raise BagReadError(_damaged(self.path, exc)) from None
        return self

    def __exit__(self, *exc_info):
        return self._reader.__exit__(*exc_info)

    def __getattr__(self, name: str):
        return getattr(self._reader, name)

    def messages(self, *args, **kwargs):
        try:
            yield from self._reader.messages(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a chunk cut off in the middle of the file
            raise BagReadError(_damaged(self.path, exc)) from None


def open_bag(bag_path: str | Path) -> _Reader:
    """An opened-on-enter rosbags AnyReader (use as a context manager); a damaged bag raises
    BagReadError naming it, on open or while reading."""
    return _Reader(_bag_dir(bag_path))


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def read_messages(bag_path: str | Path, topics: Iterable[str] | None = None) -> Iterator[tuple[str, int, object]]:
    """Yield (topic, stamp_ns, msg) in log-time order.

    stamp_ns is the message's header stamp; messages without a header (e.g. TFMessage)
    use the first transform's header stamp, or else the bag's log time.
    """
    wanted = set(topics) if topics is not None else None
    with open_bag(bag_path) as reader:
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if not conns:
            return
        for conn, log_ns, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            yield conn.topic, _msg_stamp(msg, log_ns), msg


def _msg_stamp(msg, default: int) -> int:
    header = getattr(msg, "header", None)
    if header is not None:
        return stamp_to_ns(header.stamp)
    transforms = getattr(msg, "transforms", None)
    if transforms:
        return stamp_to_ns(transforms[0].header.stamp)
    return int(default)


def image_to_numpy(msg) -> np.ndarray:
    """sensor_msgs/Image -> (H, W) or (H, W, 3) array, native byte order, channels as encoded.

    Supports mono8, rgb8, bgr8 (8UC1/8UC3), mono16/16UC1 and 32FC1; honours step (row
    padding) and is_bigendian.
    """
    enc = msg.encoding.lower()
    if enc not in _ENCODINGS:
        raise BagReadError(f"image encoding {msg.encoding!r} not supported (supported: {', '.join(_ENCODINGS)})")
    kind, ch = _ENCODINGS[enc]
    dtype = np.dtype(kind).newbyteorder(">" if msg.is_bigendian else "<") if kind != "u1" else np.dtype("u1")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row = w * ch * dtype.itemsize
    data = np.asarray(msg.data, dtype=np.uint8).reshape(-1)
    if step < row or data.size < step * h:
        raise BagReadError(f"image {w}x{h} {msg.encoding}: step {step} / data size {data.size} too small")
    rows = data[: step * h].reshape(h, step)[:, :row]
    out = np.ascontiguousarray(rows).view(dtype).reshape((h, w, ch) if ch > 1 else (h, w))
    return out.astype(dtype.newbyteorder("="), copy=False)


def odometry_to_matrix(msg) -> np.ndarray:
    """nav_msgs/Odometry (or geometry_msgs/Pose[Stamped|WithCovariance]) -> 4x4 pose."""
    pose = msg
    while hasattr(pose, "pose"):
        pose = pose.pose
    p, q = pose.position, pose.orientation
    return frames.xyz_quat_to_matrix(np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w]))


def transform_to_matrix(transform) -> np.ndarray:
    """geometry_msgs/Transform -> 4x4."""
    t, q = transform.translation, transform.rotation
    return frames.xyz_quat_to_matrix(np.array([t.x, t.y, t.z]), np.array([q.x, q.y, q.z, q.w]))


def read_trajectory(bag_path: str | Path, topic: str) -> tuple[np.ndarray, np.ndarray]:
    """All poses on ``topic`` (Odometry / PoseStamped) -> (stamps_ns (N,) int64, poses (N,4,4))."""
    stamps, poses = [], []
    for _, stamp, msg in read_messages(bag_path, [topic]):
        stamps.append(stamp)
        poses.append(odometry_to_matrix(msg))
    return np.array(stamps, dtype=np.int64), (np.stack(poses) if poses else np.zeros((0, 4, 4)))


def read_depth_images(bag_path: str | Path, topic: str) -> list[tuple[int, np.ndarray]]:
    """Depth images on ``topic`` -> [(stamp_ns, (H, W) float32 metres)].

    32FC1 is taken as metres; 16UC1/mono16 as millimetres (the ROS depth convention).
    """
    out = []
    for _, stamp, msg in read_messages(bag_path, [topic]):
        img = image_to_numpy(msg)
        if img.ndim != 2:
            raise BagReadError(f"{topic}: encoding {msg.encoding} is not a single-channel depth image")
        millimetres = img.dtype.kind == "u" and img.itemsize == 2
        depth = img.astype(np.float32) / 1000.0 if millimetres else img.astype(np.float32)
        out.append((stamp, depth))
    return out


def bag_info(bag_path: str | Path) -> dict:
    """Topics (type, count, QoS durability), message count, start/duration of a bag."""
    with open_bag(bag_path) as reader:
        topics = {}
        for conn in reader.connections:
            entry = topics.setdefault(conn.topic, {"type": conn.msgtype, "count": 0, "durability": ""})
            entry["count"] += conn.msgcount
            qos = getattr(getattr(conn, "ext", None), "offered_qos_profiles", None) or []
            if qos:
                entry["durability"] = qos[0].durability.name.lower()
        start, end = reader.start_time, reader.end_time
        return {
            "path": str(_bag_dir(bag_path)),
            "topics": topics,
            "messages": reader.message_count,
            "start_ns": start,
            "duration_s": max(0, end - start) / 1e9 if reader.message_count else 0.0,
        }
