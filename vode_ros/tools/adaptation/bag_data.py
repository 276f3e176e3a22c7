"""A recorded bag as offline adaptation reads it: the camera frames (and the right camera's),
and what can judge or scale a model: a depth topic, the bag's odometry or ground truth.

Images are read at the camera's resolution (stereo SGBM of the held-out frames is computed
there); the training sets resize them to the network size. Odometry (``nav_msgs/Odometry``,
the pose of base_link in odom) becomes camera poses through the camera mount
(``T_base_cam``): C_i = T_base_cam^-1 B_0^-1 B_i T_base_cam, the KITTI convention the
training data and the pose metrics use (first pose = identity).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vode_ros.bag import topics as T

from .split import nearest_stamps

ODOMETRY_TYPES = ("nav_msgs/msg/Odometry", "geometry_msgs/msg/PoseStamped")
DEPTH_ENCODINGS = ("32FC1", "16UC1", "mono16")


@dataclass
class AdaptData:
    seq: object                       # vode_training FrameSequence: frames at camera size, K, stereo, poses
    image_topic: str
    right_topic: str
    depth: list[np.ndarray | None] | None = None    # per frame: depth topic reading (H, W) metres, or None
    depth_topic: str = ""
    odometry_topic: str = ""

    @property
    def stereo(self) -> bool:
        return self.seq.right is not None and bool(self.seq.baseline)

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(self.seq.image_size[0] / (2.0 * float(self.seq.k[0, 0]))))


def odometry_topics(types: dict[str, str]) -> list[str]:
    """Odometry / ground-truth topics of a bag, ground truth first."""
    found = sorted(t for t, ty in types.items() if ty in ODOMETRY_TYPES)
    return sorted(found, key=lambda t: (t != T.GROUND_TRUTH, "ground_truth" not in t, t))


def camera_poses(base_poses: np.ndarray, t_base_cam: np.ndarray) -> np.ndarray:
    """base_link poses in odom (N, 4, 4) -> camera poses relative to the first camera (N, 4, 4)."""
    rel = np.linalg.inv(base_poses[0]) @ base_poses
    inv_mount = np.linalg.inv(t_base_cam)
    return np.stack([inv_mount @ b @ t_base_cam for b in rel])


def load_adapt_data(bag: str | Path, image_topic: str = "", right_topic: str = "", depth_topic: str = "",
                    odometry_topic: str | None = None, color: str = "gray",
                    mount: np.ndarray | None = None) -> AdaptData:
    """Read ``bag`` (see the module doc). ``image_topic`` '' = found as ``vode train --bag`` finds it
    (and the right camera when the bag has one); ``odometry_topic`` None = the first odometry topic
    the bag has ('' = none). Raises vode_training's BagDataError with the way out."""
    import dataclasses

    from vode_ros.bag.reader import read_depth_images, read_trajectory
    from vode_ros.core.frames import mount_transform
    from vode_training.data.rosbag_frames import BagDataError, auto_topics, bag_topics, load_bag

    types = bag_topics(bag)
    if not image_topic:
        image_topic, found_right = auto_topics(bag, stereo=True)
        right_topic = right_topic or found_right
    seq = load_bag(bag, image_topic, right_topic=right_topic, color=color)
    stamps = np.rint(np.asarray(seq.times) * 1e9).astype(np.int64)
    period = int(np.median(np.diff(stamps))) if len(stamps) > 1 else 100_000_000
    data = AdaptData(seq, image_topic, right_topic)
    if depth_topic:
        if depth_topic not in types:
            raise BagDataError(f"{bag}: no depth topic {depth_topic!r}; the bag has: {', '.join(sorted(types))}")
        readings = read_depth_images(bag, depth_topic)
        idx = nearest_stamps(stamps, np.array([s for s, _ in readings], np.int64), period // 2)
        data.depth = [readings[int(j)][1] if j >= 0 else None for j in idx]
        data.depth_topic = depth_topic
        if not any(d is not None for d in data.depth):
            raise BagDataError(f"{bag}: no {depth_topic} image within half a frame of a camera image")
    if odometry_topic is None:
        odometry_topic = next(iter(odometry_topics(types)), "")
    if odometry_topic:
        if odometry_topic not in types:
            raise BagDataError(f"{bag}: no odometry topic {odometry_topic!r}")
        odo_ns, base = read_trajectory(bag, odometry_topic)
        order = np.argsort(odo_ns)
        idx = nearest_stamps(stamps, odo_ns[order], period // 2)
        if (idx >= 0).all() and len(base) >= 2:
            t_base_cam = mount if mount is not None else mount_transform(list(T.DEFAULT_MOUNT_XYZ),
                                                                         list(T.DEFAULT_MOUNT_RPY))
            poses = camera_poses(base[order][idx], t_base_cam)
            data.seq = dataclasses.replace(seq, poses=poses)
            data.odometry_topic = odometry_topic
    return data
