"""numpy <-> ROS message helpers used by the nodes (thin: the maths lives in vode_ros/*)."""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from vode_ros.core.frames import matrix_to_xyz_quat
from vode_ros.core.geometry import backproject_points
from vode_ros.nodes import ros_bridges as bridges
from vode_ros.core.image_codec import IMAGE_ENCODINGS, ImageDecodeError, decode_compressed, decode_image, encode_image


def stamp_to_sec(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def stamp_to_ns(stamp: Time) -> int:
    """Exact integer nanoseconds (a key that pairs messages copied from one header)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def depth_from_msg(msg: Image) -> np.ndarray:
    """Depth image (REP-118) -> (H, W) float32 metres: 32FC1 in metres, or 16UC1 / mono16 in
    millimetres as RGB-D drivers publish it (0 = no depth, as NaN / 0 in 32FC1); ImageDecodeError
    for anything else."""
    if msg.encoding not in ("32FC1", "16UC1", "mono16"):
        raise ImageDecodeError(f"depth image encoding '{msg.encoding}': expected 32FC1 (metres) or 16UC1 "
                               "(millimetres), REP-118")
    depth = decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
    return depth if depth.dtype == np.float32 else depth.astype(np.float32) * np.float32(1e-3)


def image_from_msg(msg) -> tuple[np.ndarray, str]:
    """Image or CompressedImage -> (array, encoding)."""
    if hasattr(msg, "encoding"):
        if msg.encoding not in IMAGE_ENCODINGS:
            raise ImageDecodeError(
                f"unsupported encoding '{msg.encoding}'; camera images must be one of {', '.join(IMAGE_ENCODINGS)} "
                "(convert bayer/yuv/16-bit images with image_proc first)")
        return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data), msg.encoding
    return decode_compressed(msg.format, msg.data)


def image_to_msg(arr: np.ndarray, encoding: str, header: Header) -> Image:
    """numpy -> Image: cv_bridge where installed, else the package's codec (the same bytes)."""
    if bridges.HAVE_CV_BRIDGE:
        return bridges.cv_bridge_image(arr, encoding, header)
    return codec_image_msg(arr, encoding, header)


def codec_image_msg(arr: np.ndarray, encoding: str, header: Header) -> Image:
    """numpy -> Image by core.image_codec (no cv_bridge)."""
    fields = encode_image(arr, encoding)
    msg = Image(header=header)
    msg.height, msg.width, msg.step = fields["height"], fields["width"], fields["step"]
    msg.encoding, msg.is_bigendian = fields["encoding"], fields["is_bigendian"]
    msg.data = fields["data"]
    return msg


def rectified_camera_info(k: np.ndarray, width: int, height: int, header: Header) -> CameraInfo:
    """CameraInfo of an image the nodes made from the rectified input (the depth image, at the
    network resolution): pinhole K, no distortion, R = I, P = [K | 0]."""
    out = CameraInfo(header=header, width=width, height=height, distortion_model="plumb_bob")
    out.d = [0.0] * 5
    out.k = k.reshape(-1).tolist()
    out.r = np.eye(3).reshape(-1).tolist()
    p = np.zeros((3, 4))
    p[:, :3] = k
    out.p = p.reshape(-1).tolist()
    return out


def transform_msg(mat: np.ndarray, parent: str, child: str, stamp: Time) -> TransformStamped:
    xyz, q = matrix_to_xyz_quat(mat)
    t = TransformStamped()
    t.header.stamp, t.header.frame_id, t.child_frame_id = stamp, parent, child
    t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = map(float, xyz)
    (t.transform.rotation.x, t.transform.rotation.y,
     t.transform.rotation.z, t.transform.rotation.w) = map(float, q)
    return t


def odometry_msg(pose: np.ndarray, lin: np.ndarray, ang: np.ndarray, stamp: Time, odom_frame: str,
                 base_frame: str, pose_cov: list[float], twist_cov: list[float]) -> Odometry:
    xyz, q = matrix_to_xyz_quat(pose)
    msg = Odometry()
    msg.header.stamp, msg.header.frame_id, msg.child_frame_id = stamp, odom_frame, base_frame
    p = msg.pose.pose
    p.position.x, p.position.y, p.position.z = map(float, xyz)
    p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = map(float, q)
    msg.pose.covariance = pose_cov
    tw = msg.twist.twist
    tw.linear.x, tw.linear.y, tw.linear.z = map(float, lin)
    tw.angular.x, tw.angular.y, tw.angular.z = map(float, ang)
    msg.twist.covariance = twist_cov
    return msg


def pointcloud_msg(depth: np.ndarray, k: np.ndarray, stride: int, header: Header):
    """Decimated xyz PointCloud2 in the depth image's optical frame (as depth_image_proc)."""

    d = depth[::stride, ::stride]
    v, u = np.mgrid[0:depth.shape[0]:stride, 0:depth.shape[1]:stride]
    ok = np.isfinite(d) & (d > 0)
    z = d[ok]
    pts = backproject_points(np.stack([u[ok], v[ok]]), z, k).T.astype(np.float32)       # (N, 3)
    if bridges.HAVE_SENSOR_MSGS_PY:
        return bridges.cloud_xyz32(header, pts)
    return codec_cloud_msg(pts, header)


def codec_cloud_msg(pts: np.ndarray, header: Header):
    """(N, 3) float32 points -> PointCloud2 (x, y, z FLOAT32, dense) without sensor_msgs_py."""
    from sensor_msgs.msg import PointCloud2, PointField

    msg = PointCloud2(header=header, height=1, width=len(pts), is_bigendian=False, point_step=12,
                      row_step=12 * len(pts), is_dense=True)
    msg.fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1) for i, n in enumerate("xyz")]
    msg.data = pts.tobytes()
    return msg
