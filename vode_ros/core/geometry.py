"""Camera and pose maths shared by training, evaluation and the run time (numpy, no torch).

Conventions (used everywhere in the package):
- Camera frames are optical frames (REP-103 *_optical_frame): x right, y down, z forward.
- A pose vector is SfMLearner's ``[tx, ty, tz, rx, ry, rz]``: translation in metres and
  Euler angles in radians, R = Rz(rz) @ Ry(ry) @ Rx(rx).
- The pose net's output for (target t, source s) is ``T_s_t``: it maps a point from the
  target camera into the source camera, X_s = T_s_t @ X_t. For (t = current, s = previous)
  that is the current camera's pose in the previous camera's frame, so the trajectory
  integrates as ``W_t = W_{t-1} @ T_{t-1,t}``.

The torch twin of these functions (vode_training.geometry) is held equal by a test.
"""
from __future__ import annotations

import numpy as np


def euler_to_matrix(rx: float, ry: float, rz: float) -> np.ndarray:
    """R = Rz @ Ry @ Rx (SfMLearner's euler2mat), angles in radians -> (3, 3)."""
    cx, sx = np.cos(rx), np.sin(rx)
    cy, sy = np.cos(ry), np.sin(ry)
    cz, sz = np.cos(rz), np.sin(rz)
    rot_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rot_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rot_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rot_z @ rot_y @ rot_x


def matrix_to_euler(rot: np.ndarray) -> tuple[float, float, float]:
    """Inverse of euler_to_matrix for |ry| < pi/2 -> (rx, ry, rz)."""
    ry = float(np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0)))
    rx = float(np.arctan2(rot[2, 1], rot[2, 2]))
    rz = float(np.arctan2(rot[1, 0], rot[0, 0]))
    return rx, ry, rz


def pose_vec_to_mat(vec: np.ndarray) -> np.ndarray:
    """(6,) [t, euler] -> (4, 4) homogeneous transform."""
    vec = np.asarray(vec, dtype=np.float64).reshape(6)
    out = np.eye(4)
    out[:3, :3] = euler_to_matrix(*vec[3:])
    out[:3, 3] = vec[:3]
    return out


def mat_to_pose_vec(mat: np.ndarray) -> np.ndarray:
    """(4, 4) -> (6,) [t, euler]."""
    return np.concatenate([mat[:3, 3], matrix_to_euler(mat[:3, :3])])


def invert_se3(mat: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform without a general matrix inverse."""
    out = np.eye(4)
    out[:3, :3] = mat[:3, :3].T
    out[:3, 3] = -mat[:3, :3].T @ mat[:3, 3]
    return out


def scale_intrinsics(k: np.ndarray, src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> np.ndarray:
    """Rescale a 3x3 K from an image of size src (w, h) to a resized image of size dst.

    Pixel centres follow OpenCV's resize: u' = (u + 0.5) * sx - 0.5.
    """
    sx = dst_wh[0] / src_wh[0]
    sy = dst_wh[1] / src_wh[1]
    out = np.array(k, dtype=np.float64).copy()
    out[0, 0] *= sx
    out[1, 1] *= sy
    out[0, 2] = (out[0, 2] + 0.5) * sx - 0.5
    out[1, 2] = (out[1, 2] + 0.5) * sy - 0.5
    return out


def disparity_to_depth(disp: np.ndarray, min_depth: float = 0.1, max_depth: float = 100.0) -> np.ndarray:
    """Network inverse depth (1/m) -> depth (m), clipped to the valid range."""
    return np.clip(1.0 / np.maximum(disp, 1.0 / max_depth), min_depth, max_depth)


def stereo_disparity_to_depth(disp_px: np.ndarray, fx: float, baseline: float) -> np.ndarray:
    """Stereo disparity in pixels -> depth in metres; 0 where disparity is invalid (<= 0)."""
    depth = np.zeros_like(disp_px, dtype=np.float32)
    valid = disp_px > 0
    depth[valid] = fx * baseline / disp_px[valid]
    return depth
