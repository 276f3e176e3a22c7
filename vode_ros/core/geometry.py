"""Camera and pose maths shared by training, evaluation and the run time (numpy, no torch).

Conventions (used everywhere in the package):
- Camera frames are optical frames (REP-103 *_optical_frame): x right, y down, z forward.
- A pose vector is SfMLearner's ``[tx, ty, tz, rx, ry, rz]``: translation in metres and
  Euler angles in radians, R = Rz(rz) @ Ry(ry) @ Rx(rx).
- The pose net's output for (target t, source s) is ``T_s_t``: it maps a point from the
  target camera into the source camera, X_s = T_s_t @ X_t. For (t = current, s = previous)
  that is the current camera's pose in the previous camera's frame, so the trajectory
  integrates as ``W_t = W_{t-1} @ T_{t-1,t}``.
- Pixel centres sit at integer coordinates (OpenCV): resizing by s maps u -> (u + 0.5) s - 0.5.

The torch twin (``vode_training.geometry``) has the same names for the same operations (batched
there, single here); test/core/test_geometry_twins.py holds every pair equal.
"""
from __future__ import annotations

import numpy as np

from vode_ros.core.shapes import check_shape

_SMALL = 1e-4   # th^2 below this: Taylor series in se3_exp (as the torch twin)


def euler2mat(angles) -> np.ndarray:
    """(3,) [rx, ry, rz] radians -> (3, 3) R = Rz @ Ry @ Rx (SfMLearner's euler2mat)."""
    rx, ry, rz = np.asarray(angles, dtype=np.float64).reshape(3)
    cx, sx = np.cos(rx), np.sin(rx)
    cy, sy = np.cos(ry), np.sin(ry)
    cz, sz = np.cos(rz), np.sin(rz)
    rot_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rot_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rot_z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rot_z @ rot_y @ rot_x


def mat2euler(rot: np.ndarray) -> np.ndarray:
    """(3, 3) -> (3,) [rx, ry, rz], inverse of euler2mat for |ry| < pi/2."""
    check_shape(rot, "3,3", "rot")
    ry = np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0))
    rx = np.arctan2(rot[2, 1], rot[2, 2])
    rz = np.arctan2(rot[1, 0], rot[0, 0])
    return np.array([rx, ry, rz], dtype=np.float64)


def pose_vec2mat(vec) -> np.ndarray:
    """(6,) [t, euler] -> (4, 4) homogeneous transform."""
    vec = np.asarray(vec, dtype=np.float64).reshape(6)
    out = np.eye(4)
    out[:3, :3] = euler2mat(vec[3:])
    out[:3, 3] = vec[:3]
    return out


def mat2pose_vec(mat: np.ndarray) -> np.ndarray:
    """(4, 4) -> (6,) [t, euler]."""
    check_shape(mat, "4,4", "mat")
    return np.concatenate([mat[:3, 3], mat2euler(mat[:3, :3])])


def invert_se3(mat: np.ndarray) -> np.ndarray:
    """Inverse of a (4, 4) rigid transform without a general matrix inverse."""
    check_shape(mat, "4,4", "mat")
    out = np.eye(4)
    out[:3, :3] = mat[:3, :3].T
    out[:3, 3] = -mat[:3, :3].T @ mat[:3, 3]
    return out


def skew(w) -> np.ndarray:
    """(3,) -> (3, 3) cross-product matrix [w]x."""
    w = np.asarray(w, dtype=np.float64).reshape(3)
    return np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])


def _exp_coefficients(theta2: float) -> tuple[float, float, float]:
    """A, B, C of the exponential map as functions of th^2, safe at 0 (same series as the torch twin)."""
    if theta2 < _SMALL:
        t4 = theta2 * theta2
        return 1 - theta2 / 6 + t4 / 120, 0.5 - theta2 / 24 + t4 / 720, 1.0 / 6 - theta2 / 120 + t4 / 5040
    th = np.sqrt(theta2)
    return np.sin(th) / th, (1 - np.cos(th)) / theta2, (th - np.sin(th)) / (theta2 * th)


def se3_exp(xi) -> np.ndarray:
    """(6,) twist [rho (3), omega (3)] -> (4, 4) rigid transform exp(xi^)."""
    xi = np.asarray(xi, dtype=np.float64).reshape(6)
    rho, omega = xi[:3], xi[3:]
    a, b, c = _exp_coefficients(float(omega @ omega))
    wx = skew(omega)
    wx2 = wx @ wx
    out = np.eye(4)
    out[:3, :3] = np.eye(3) + a * wx + b * wx2
    out[:3, 3] = (np.eye(3) + b * wx + c * wx2) @ rho
    return out


def backproject(depth: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Depth (H, W) metres, K (3, 3) -> camera points (3, H * W), row-major pixel order."""
    check_shape(depth, "H,W", "depth")
    check_shape(k, "3,3", "k")
    h, w = depth.shape
    v, u = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    pix = np.stack([u.ravel(), v.ravel(), np.ones(h * w)])
    return (np.linalg.inv(k) @ pix) * depth.reshape(1, -1)


def backproject_points(pix: np.ndarray, z: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Pixels (2, N) and their depths (N,) or (1, N) in metres, K (3, 3) -> camera points (3, N): z K^-1 [u, v, 1]."""
    check_shape(pix, "2,N", "pix")
    check_shape(k, "3,3", "k")
    pix = np.asarray(pix, np.float64)
    x = (pix[0] - k[0, 2]) / k[0, 0]
    y = (pix[1] - k[1, 2]) / k[1, 1]
    return np.stack([x, y, np.ones_like(x)]) * np.asarray(z, np.float64).reshape(1, -1)


def transform_points(mat: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(4, 4) @ points (3, N) -> (3, N)."""
    check_shape(mat, "4,4", "mat")
    check_shape(points, "3,N", "points")
    return mat[:3, :3] @ points + mat[:3, 3:]


def project(points: np.ndarray, k: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Camera points (3, N), K (3, 3) -> pixels (2, N) and depth z (1, N).

    z is clamped to eps before dividing, so points behind the camera give finite pixels: the
    caller tells them apart by z."""
    check_shape(points, "3,N", "points")
    check_shape(k, "3,3", "k")
    cam = k @ points
    z = cam[2:3]
    return cam[:2] / np.maximum(z, eps), z


def rescale_intrinsics(k: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """(3, 3) K of an image resized by (sx, sy): f * s, c -> (c + 0.5) * s - 0.5 (OpenCV's resize)."""
    check_shape(k, "3,3", "k")
    out = np.array(k, dtype=np.float64)
    out[0, 0] *= sx
    out[1, 1] *= sy
    out[0, 2] = (out[0, 2] + 0.5) * sx - 0.5
    out[1, 2] = (out[1, 2] + 0.5) * sy - 0.5
    return out


def scale_intrinsics(k: np.ndarray, src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> np.ndarray:
    """Rescale a 3x3 K from an image of size src (w, h) to a resized image of size dst."""
    return rescale_intrinsics(k, dst_wh[0] / src_wh[0], dst_wh[1] / src_wh[1])


def disp_to_depth(disp: np.ndarray, min_depth: float = 0.1, max_depth: float = 100.0) -> np.ndarray:
    """Network inverse depth (1/m) -> depth (m), clipped to [min_depth, max_depth]."""
    return 1.0 / np.clip(disp, 1.0 / max_depth, 1.0 / min_depth)


def stereo_disparity_to_depth(disp_px: np.ndarray, fx: float, baseline: float) -> np.ndarray:
    """Stereo disparity in pixels -> depth in metres; 0 where disparity is invalid (<= 0)."""
    depth = np.zeros_like(disp_px, dtype=np.float32)
    valid = disp_px > 0
    depth[valid] = fx * baseline / disp_px[valid]
    return depth
