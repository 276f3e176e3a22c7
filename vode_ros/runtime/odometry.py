"""Pose integration for the odometry node: camera motions -> base_link trajectory (REP-105).

Pure numpy; the node feeds it (stamp, T_prev_cur in the camera optical frame).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vode_ros.core.frames import camera_to_base_motion
from vode_ros.core.geometry import invert_se3


@dataclass
class OdometryState:
    stamp: float                  # seconds of the last integrated frame
    pose: np.ndarray              # (4, 4) base_link in odom
    twist_linear: np.ndarray      # (3,) m/s in base_link
    twist_angular: np.ndarray     # (3,) rad/s in base_link


@dataclass
class OdometryIntegrator:
    t_base_cam: np.ndarray                     # (4, 4) camera optical frame in base_link
    scale: float = 1.0                         # multiplies translations (1 for metric models)
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))
    last_stamp: float | None = None
    resets: int = 0

    def reset(self) -> None:
        self.pose = np.eye(4)
        self.last_stamp = None
        self.resets += 1

    def time_went_backwards(self, stamp: float) -> bool:
        return self.last_stamp is not None and stamp < self.last_stamp

    def start(self, stamp: float) -> None:
        """First frame: the trajectory starts at the odom origin."""
        self.last_stamp = stamp

    def update(self, stamp: float, cam_motion: np.ndarray) -> OdometryState:
        """Integrate T_prev_cur (camera frame) observed between the last stamp and `stamp`."""
        motion = cam_motion.copy()
        motion[:3, 3] *= self.scale
        base_motion = camera_to_base_motion(motion, self.t_base_cam)   # base_prev -> base_cur
        self.pose = self.pose @ base_motion
        dt = stamp - self.last_stamp if self.last_stamp is not None else 0.0
        self.last_stamp = stamp
        if dt > 1e-6:
            lin = base_motion[:3, 3] / dt
            rot = base_motion[:3, :3]
            angle = np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1))
            axis = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
            norm = np.linalg.norm(axis)
            ang = axis / norm * angle / dt if norm > 1e-12 else np.zeros(3)
        else:
            lin, ang = np.zeros(3), np.zeros(3)
        return OdometryState(stamp, self.pose.copy(), lin, ang)


def diagonal_covariance(std_xyz: float, std_rpy: float) -> list[float]:
    """Row-major 6x6 covariance for the Odometry message (x, y, z, roll, pitch, yaw)."""
    cov = np.diag([std_xyz**2] * 3 + [std_rpy**2] * 3)
    return cov.reshape(-1).tolist()


def relative_motion(pose_a: np.ndarray, pose_b: np.ndarray) -> np.ndarray:
    """T_a_b from two absolute poses."""
    return invert_se3(pose_a) @ pose_b
