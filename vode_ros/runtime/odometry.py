"""Pose integration for the odometry node: camera motions -> base_link trajectory (REP-105).

Pure numpy; the node feeds it (stamp, T_prev_cur in the camera optical frame[, its covariance]).

Covariance (first order, on SE(3)): a motion's 6x6 covariance is of the right perturbation
δ = [x, y, z, roll, pitch, yaw] with T = T̂ · exp(δ) (the pose estimator's convention, see
runtime/pose/pnp.py). The mount moves it into base_link with the adjoint of T_base_cam
(rotation plus the lever arm of the mount); the trajectory's covariance follows
Σ_k = Ad(B_k⁻¹) Σ_{k-1} Ad(B_k⁻¹)ᵀ + Σ_B,k in base_link, published rotated into odom (the
frame of the Odometry message's pose). The twist's covariance is the motion's / dt².
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vode_ros.core.frames import camera_to_base_motion
from vode_ros.core.geometry import invert_se3, skew


@dataclass
class OdometryState:
    stamp: float                  # seconds of the last integrated frame
    pose: np.ndarray              # (4, 4) base_link in odom
    twist_linear: np.ndarray      # (3,) m/s in base_link
    twist_angular: np.ndarray     # (3,) rad/s in base_link
    pose_covariance: np.ndarray | None = None    # (6, 6) x y z roll pitch yaw, in odom (None: no motion covariance)
    twist_covariance: np.ndarray | None = None   # (6, 6) of the twist, in base_link


def adjoint(t: np.ndarray) -> np.ndarray:
    """(4, 4) -> (6, 6) adjoint for twists ordered [translation, rotation]: T exp(δ) T⁻¹ = exp(Ad δ)."""
    r, p = t[:3, :3], t[:3, 3]
    out = np.zeros((6, 6))
    out[:3, :3] = r
    out[:3, 3:] = skew(p) @ r
    out[3:, 3:] = r
    return out


def motion_covariance_in_base(cov_cam: np.ndarray, t_base_cam: np.ndarray) -> np.ndarray:
    """(6, 6) covariance of a camera motion's right perturbation -> that of the base motion.

    B = T_bc C T_bc⁻¹ and C exp(δ) give B exp(Ad(T_bc) δ): rotation of the axes plus the lever arm."""
    ad = adjoint(t_base_cam)
    out = ad @ np.asarray(cov_cam, np.float64) @ ad.T
    return 0.5 * (out + out.T)


def rotate_covariance(cov: np.ndarray, r: np.ndarray) -> np.ndarray:
    """(6, 6) covariance of [translation, rotation] expressed in axes rotated by r (3, 3)."""
    j = np.zeros((6, 6))
    j[:3, :3] = j[3:, 3:] = r
    out = j @ cov @ j.T
    return 0.5 * (out + out.T)


@dataclass
class OdometryIntegrator:
    t_base_cam: np.ndarray                     # (4, 4) camera optical frame in base_link
    scale: float = 1.0                         # multiplies translations (1 for metric models)
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))
    last_stamp: float | None = None
    resets: int = 0
    # (6, 6) covariance of the pose's right perturbation (base_link axes); zero at the odom origin.
    body_covariance: np.ndarray = field(default_factory=lambda: np.zeros((6, 6)))

    def reset(self) -> None:
        self.pose = np.eye(4)
        self.body_covariance = np.zeros((6, 6))
        self.last_stamp = None
        self.resets += 1

    def time_went_backwards(self, stamp: float) -> bool:
        return self.last_stamp is not None and stamp < self.last_stamp

    def start(self, stamp: float) -> None:
        """First frame: the trajectory starts at the odom origin."""
        self.last_stamp = stamp

    def pose_covariance(self) -> np.ndarray:
        """(6, 6) covariance of the current pose in odom axes (x y z roll pitch yaw)."""
        return rotate_covariance(self.body_covariance, self.pose[:3, :3])

    def update(self, stamp: float, cam_motion: np.ndarray, cam_covariance: np.ndarray | None = None
               ) -> OdometryState:
        """Integrate T_prev_cur (camera frame) observed between the last stamp and `stamp`.

        cam_covariance: (6, 6) of the motion (see the module docstring), in the camera's units
        (the scale is applied to it too); None leaves the state's covariances None."""
        motion = cam_motion.copy()
        motion[:3, 3] *= self.scale
        base_motion = camera_to_base_motion(motion, self.t_base_cam)   # base_prev -> base_cur
        self.pose = self.pose @ base_motion
        dt = stamp - self.last_stamp if self.last_stamp is not None else 0.0
        pose_cov = twist_cov = None
        if cam_covariance is not None:
            cov = np.array(cam_covariance, np.float64)
            cov[:3, :] *= self.scale
            cov[:, :3] *= self.scale
            cov_base = motion_covariance_in_base(cov, self.t_base_cam)
            ad_inv = adjoint(invert_se3(base_motion))
            self.body_covariance = ad_inv @ self.body_covariance @ ad_inv.T + cov_base
            self.body_covariance = 0.5 * (self.body_covariance + self.body_covariance.T)
            pose_cov = self.pose_covariance()
            twist_cov = cov_base / dt ** 2 if dt > 1e-6 else cov_base
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
        return OdometryState(stamp, self.pose.copy(), lin, ang, pose_cov, twist_cov)


def diagonal_covariance(std_xyz: float, std_rpy: float) -> list[float]:
    """Row-major 6x6 covariance for the Odometry message (x, y, z, roll, pitch, yaw)."""
    cov = np.diag([std_xyz**2] * 3 + [std_rpy**2] * 3)
    return cov.reshape(-1).tolist()


def scale_motion(t_prev_cur: np.ndarray, ratio: float) -> np.ndarray:
    """The motion of ``ratio`` times as long at the same twist: rotation angle and translation
    times ``ratio`` (first order in the coupling of the two, as constant velocity needs). (4, 4) -> (4, 4)."""
    import cv2

    rvec = cv2.Rodrigues(np.asarray(t_prev_cur[:3, :3], np.float64))[0]
    out = np.eye(4)
    out[:3, :3] = cv2.Rodrigues(rvec * ratio)[0]
    out[:3, 3] = np.asarray(t_prev_cur[:3, 3], np.float64) * ratio
    return out
