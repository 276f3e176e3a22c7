"""Convert a KITTI-odometry folder into a rosbag2 (mcap or sqlite3) with the vode topics.

Per frame i (stamp = times.txt[i] + stamp_offset):
    LEFT_IMAGE / RIGHT_IMAGE    sensor_msgs/Image, mono8 (rgb8 for colour sources)
    LEFT_INFO / RIGHT_INFO      sensor_msgs/CameraInfo, plumb_bob, D = 0, R = I,
                                right P[0, 3] = -fx * baseline (ROS stereo convention)
    GROUND_TRUTH                nav_msgs/Odometry odom -> base_link (only with poses.txt)
    DEPTH_IMAGE                 sensor_msgs/Image 32FC1, metres, 0 = none, in LEFT_FRAME (only
                                with depth_0/: RGB-D footage; `vode adapt --depth-topic` reads it)
Once, at the first stamp:
    TF_STATIC                   tf2_msgs/TFMessage LEFT_FRAME -> RIGHT_FRAME, recorded with
                                the transient-local QoS of /tf_static

The bag is written into a temporary folder beside ``out_path`` and renamed at the end, so
a failure never leaves a half-written bag behind.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from vode_ros.core import frames
from vode_ros.bag import topics as T
from vode_ros.core.kitti import KittiFormatError, load_sequence, read_depth, read_image

STORAGES = ("mcap", "sqlite3")


class BagExistsError(FileExistsError):
    """out_path exists and overwrite was not requested."""


def _qos(depth: int, durability: str):
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    unspecified = QosTime(0, 0)  # RMW_DURATION_UNSPECIFIED: the rmw default (infinite)
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=depth,
        reliability=QosReliability.RELIABLE,
        durability=getattr(QosDurability, durability),
        deadline=unspecified,
        lifespan=unspecified,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=unspecified,
        avoid_ros_namespace_conventions=False,
    )


def _seconds_to_ns(s: float) -> int:
    # Whole seconds and fraction separately: float(s) * 1e9 would lose ~100 ns at epoch sizes.
    whole = math.floor(s)
    return int(whole) * 1_000_000_000 + int(round((s - whole) * 1e9))


def stamp_ns(t: float, offset: float) -> int:
    return _seconds_to_ns(float(t)) + _seconds_to_ns(float(offset))


class _Msgs:
    """Builds the rosbags message objects from the typestore."""

    def __init__(self, typestore):
        self.ts = typestore
        ty = typestore.types
        self.Header = ty["std_msgs/msg/Header"]
        self.Time = ty["builtin_interfaces/msg/Time"]
        self.Image = ty["sensor_msgs/msg/Image"]
        self.CameraInfo = ty["sensor_msgs/msg/CameraInfo"]
        self.RegionOfInterest = ty["sensor_msgs/msg/RegionOfInterest"]
        self.TFMessage = ty["tf2_msgs/msg/TFMessage"]
        self.TransformStamped = ty["geometry_msgs/msg/TransformStamped"]
        self.Transform = ty["geometry_msgs/msg/Transform"]
        self.Vector3 = ty["geometry_msgs/msg/Vector3"]
        self.Quaternion = ty["geometry_msgs/msg/Quaternion"]
        self.Odometry = ty["nav_msgs/msg/Odometry"]
        self.PoseWithCovariance = ty["geometry_msgs/msg/PoseWithCovariance"]
        self.Pose = ty["geometry_msgs/msg/Pose"]
        self.Point = ty["geometry_msgs/msg/Point"]
        self.TwistWithCovariance = ty["geometry_msgs/msg/TwistWithCovariance"]
        self.Twist = ty["geometry_msgs/msg/Twist"]

    def header(self, stamp_ns: int, frame_id: str):
        return self.Header(stamp=self.Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000),
                           frame_id=frame_id)

    def image(self, img: np.ndarray, stamp_ns: int, frame_id: str):
        img = np.ascontiguousarray(img)
        encoding = "mono8" if img.ndim == 2 else "rgb8"
        h, w = img.shape[:2]
        return self.Image(header=self.header(stamp_ns, frame_id), height=h, width=w, encoding=encoding,
                          is_bigendian=0, step=img.strides[0], data=img.reshape(-1).view(np.uint8))

    def camera_info(self, k: np.ndarray, tx: float, wh: tuple[int, int], stamp_ns: int, frame_id: str):
        p = np.zeros((3, 4))
        p[:, :3] = k
        p[0, 3] = tx
        return self.CameraInfo(
            header=self.header(stamp_ns, frame_id), height=wh[1], width=wh[0], distortion_model="plumb_bob",
            d=np.zeros(5), k=np.asarray(k, dtype=np.float64).reshape(9), r=np.eye(3).reshape(9),
            p=p.reshape(12), binning_x=0, binning_y=0,
            roi=self.RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))

    def transform(self, mat: np.ndarray, stamp_ns: int, parent: str, child: str):
        xyz, q = frames.matrix_to_xyz_quat(mat)
        return self.TransformStamped(
            header=self.header(stamp_ns, parent), child_frame_id=child,
            transform=self.Transform(translation=self.Vector3(x=xyz[0], y=xyz[1], z=xyz[2]),
                                     rotation=self.Quaternion(x=q[0], y=q[1], z=q[2], w=q[3])))

    def odometry(self, mat: np.ndarray, lin: np.ndarray, ang: np.ndarray, stamp_ns: int):
        xyz, q = frames.matrix_to_xyz_quat(mat)
        pose = self.Pose(position=self.Point(x=xyz[0], y=xyz[1], z=xyz[2]),
                         orientation=self.Quaternion(x=q[0], y=q[1], z=q[2], w=q[3]))
        twist = self.Twist(linear=self.Vector3(x=lin[0], y=lin[1], z=lin[2]),
                           angular=self.Vector3(x=ang[0], y=ang[1], z=ang[2]))
        return self.Odometry(
            header=self.header(stamp_ns, T.ODOM_FRAME), child_frame_id=T.BASE_FRAME,
            pose=self.PoseWithCovariance(pose=pose, covariance=np.zeros(36)),
            twist=self.TwistWithCovariance(twist=twist, covariance=np.zeros(36)))


def base_trajectory(poses: np.ndarray, t_base_cam: np.ndarray) -> np.ndarray:
    """KITTI cam0 poses (N,4,4) -> base_link poses in odom (= base_link at frame 0)."""
    rel = np.linalg.inv(poses[0]) @ poses
    return np.stack([frames.camera_to_base_motion(p, t_base_cam) for p in rel])


def _twists(base: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Finite-difference body-frame (child frame) velocities; backward, forward for frame 0."""
    import transforms3d

    n = len(base)
    lin, ang = np.zeros((n, 3)), np.zeros((n, 3))
    for i in range(n):
        a, b = (i - 1, i) if i > 0 else (0, 1)
        if b >= n or times[b] <= times[a]:
            continue
        dt = times[b] - times[a]
        d = np.linalg.inv(base[a]) @ base[b]
        axis, angle = transforms3d.axangles.mat2axangle(d[:3, :3], unit_thresh=1e-5)
        lin[i] = d[:3, 3] / dt
        ang[i] = np.asarray(axis) * angle / dt
    return lin, ang


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_partials(out_path: Path) -> None:
    """Remove what a killed conversion to `out_path` left (.<name>.partial-<pid>-*, its process gone)."""
    for old in out_path.parent.glob(f".{out_path.name}.partial-*"):
        pid = old.name[len(f".{out_path.name}.partial-"):].split("-", 1)[0]
        if old.is_dir() and (not pid.isdigit() or not _pid_alive(int(pid))):
            shutil.rmtree(old, ignore_errors=True)


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def convert(
    kitti_dir: str | Path,
    out_path: str | Path,
    storage: str = "mcap",
    mount_xyz=T.DEFAULT_MOUNT_XYZ,
    mount_rpy=T.DEFAULT_MOUNT_RPY,
    stamp_offset: float = 0.0,
    progress: bool = True,
    overwrite: bool = False,
    max_frames: int | None = None,
) -> dict:
    """Write the KITTI folder ``kitti_dir`` as a rosbag2 at ``out_path``; returns a summary.

    Raises KittiFormatError for bad input, BagExistsError when out_path exists and
    ``overwrite`` is False, ValueError for a bad storage name.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    from tqdm import tqdm

    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {', '.join(STORAGES)}, not {storage!r}")
    out_path = Path(out_path)
    if (out_path.exists() or out_path.is_symlink()) and not overwrite:
        raise BagExistsError(f"{out_path} exists already; pass overwrite=True (CLI: --overwrite) to replace it")
    seq = load_sequence(kitti_dir, max_frames=max_frames)
    t_base_cam = frames.mount_transform(list(mount_xyz), list(mount_rpy))
    gt = base_trajectory(seq.poses, t_base_cam) if seq.poses is not None else None
    gt_twist = _twists(gt, seq.times) if gt is not None else None
    stereo = seq.right is not None and seq.baseline is not None
    stamps = [stamp_ns(t, stamp_offset) for t in seq.times]
    if any(s < 0 for s in stamps):
        raise ValueError(f"negative stamps: times.txt starts at {seq.times[0]} s and stamp_offset is {stamp_offset}")

    typestore = get_typestore(Stores.ROS2_KILTED)
    msgs = _Msgs(typestore)
    ser = typestore.serialize_cdr
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    default_qos = [_qos(10, "VOLATILE")]
    counts: dict[str, int] = {}
    fx = float(seq.k[0, 0])
    started = time.perf_counter()

    out_path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(out_path)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.partial-{os.getpid()}-", dir=out_path.parent))
    tmp_bag = tmp_dir / out_path.name  # storage file is named after the bag folder
    try:
        writer = Writer(tmp_bag, version=Writer.VERSION_LATEST, storage_plugin=plugin)
        with writer:
            def conn(topic, msgtype, qos=None):
                return writer.add_connection(topic, msgtype, typestore=typestore,
                                             offered_qos_profiles=qos or default_qos)

            def write(c, stamp, msg):
                writer.write(c, stamp, ser(msg, c.msgtype))
                counts[c.topic] = counts.get(c.topic, 0) + 1

            c_left = conn(T.LEFT_IMAGE, T.IMAGE_TYPE)
            c_left_info = conn(T.LEFT_INFO, T.CAMERA_INFO_TYPE)
            if stereo:
                c_right = conn(T.RIGHT_IMAGE, T.IMAGE_TYPE)
                c_right_info = conn(T.RIGHT_INFO, T.CAMERA_INFO_TYPE)
                c_tf = conn(T.TF_STATIC, T.TF_TYPE, [_qos(1, "TRANSIENT_LOCAL")])
                stereo_ext = np.eye(4)
                stereo_ext[0, 3] = seq.baseline  # right camera at +baseline along x of the left
                tf = msgs.TFMessage(transforms=[msgs.transform(stereo_ext, stamps[0], T.LEFT_FRAME, T.RIGHT_FRAME)])
                write(c_tf, stamps[0], tf)
            if gt is not None:
                c_gt = conn(T.GROUND_TRUTH, T.ODOMETRY_TYPE)
            c_depth = conn(T.DEPTH_IMAGE, T.IMAGE_TYPE) if seq.depth else None   # depth_0/ (RGB-D footage)

            encodings = set()
            for i in tqdm(range(len(seq)), desc=f"kitti -> {storage}", unit="frame", disable=not progress):
                stamp = stamps[i]
                views = [(seq.left[i], c_left, c_left_info, T.LEFT_FRAME, 0.0)]
                if stereo:
                    views.append((seq.right[i], c_right, c_right_info, T.RIGHT_FRAME, -fx * seq.baseline))
                for path, c_img, c_info, frame_id, tx in views:
                    img = read_image(path)
                    if (img.shape[1], img.shape[0]) != seq.image_size:
                        raise KittiFormatError(f"{path}: size {img.shape[1]}x{img.shape[0]}, expected "
                                               f"{seq.image_size[0]}x{seq.image_size[1]} like {seq.left[0].name}")
                    msg = msgs.image(img, stamp, frame_id)
                    encodings.add(msg.encoding)
                    write(c_img, stamp, msg)
                    write(c_info, stamp, msgs.camera_info(seq.k, tx, seq.image_size, stamp, frame_id))
                if gt is not None:
                    write(c_gt, stamp, msgs.odometry(gt[i], gt_twist[0][i], gt_twist[1][i], stamp))
                if c_depth is not None and seq.depth[i] is not None:
                    d = np.ascontiguousarray(read_depth(seq.depth[i]), dtype=np.float32)    # metres, 0 = none
                    write(c_depth, stamp, msgs.Image(header=msgs.header(stamp, T.LEFT_FRAME), height=d.shape[0],
                                                     width=d.shape[1], encoding="32FC1", is_bigendian=0,
                                                     step=d.strides[0], data=d.reshape(-1).view(np.uint8)))
        # Success: move into place (replacing an old bag only now, when the new one is complete).
        if out_path.exists() or out_path.is_symlink():
            old = tmp_dir / ".replaced"
            os.replace(out_path, old)
        os.replace(tmp_bag, out_path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)

    elapsed = time.perf_counter() - started
    return {
        "out_path": str(out_path),
        "storage": storage,
        "frames": len(seq),
        "stereo": stereo,
        "ground_truth": gt is not None,
        "encoding": ",".join(sorted(encodings)),
        "image_size": seq.image_size,
        "baseline_m": seq.baseline,
        "topics": counts,
        "messages": sum(counts.values()),
        "start_ns": stamps[0],
        "duration_s": (stamps[-1] - stamps[0]) / 1e9,
        "size_bytes": _dir_size(out_path),
        "seconds": elapsed,
    }
