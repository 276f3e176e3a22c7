"""Frame conventions: REP-103 optical frames and the REP-105 odom -> base_link chain.

The networks think in the camera's optical frame (x right, y down, z forward). Robots and
odometry consumers think in base_link (x forward, y left, z up). ``T_base_cam`` (the camera
mount, from parameters) connects them: a camera motion C (optical frame) becomes the base
motion B = T_base_cam @ C @ T_base_cam^-1.
"""
from __future__ import annotations

import numpy as np
import transforms3d

from vode_ros.core.geometry import euler2mat

# Rotation taking optical-frame vectors into a body frame with x forward, y left, z up.
R_BODY_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def mount_transform(xyz: list[float] | np.ndarray, rpy: list[float] | np.ndarray) -> np.ndarray:
    """T_base_cam_optical (4x4) from the camera_link mount (xyz, roll/pitch/yaw in base_link).

    The mount describes camera_link (x forward, REP-103 body convention); the optical frame
    is rotated from it by R_BODY_OPTICAL as in every ROS camera driver.
    """
    out = np.eye(4)
    out[:3, :3] = euler2mat(rpy) @ R_BODY_OPTICAL          # roll, pitch, yaw: R = Rz(yaw) Ry(pitch) Rx(roll)
    out[:3, 3] = np.asarray(xyz, dtype=np.float64)
    return out


def camera_to_base_motion(cam_motion: np.ndarray, t_base_cam: np.ndarray) -> np.ndarray:
    """Express a motion of the optical frame (4x4) as the motion of base_link."""
    return t_base_cam @ cam_motion @ np.linalg.inv(t_base_cam)


def matrix_to_xyz_quat(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4x4 -> (xyz, quaternion as x, y, z, w: the ROS message order)."""
    w, x, y, z = transforms3d.quaternions.mat2quat(mat[:3, :3])
    return mat[:3, 3].copy(), np.array([x, y, z, w])


def xyz_quat_to_matrix(xyz: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
    """Inverse of matrix_to_xyz_quat."""
    x, y, z, w = quat_xyzw
    out = np.eye(4)
    out[:3, :3] = transforms3d.quaternions.quat2mat([w, x, y, z])
    out[:3, 3] = xyz
    return out
