"""Rotations and rigid transforms (torch, batched): the twin of ``vode_ros.core.geometry``.

Same names as the numpy twin, held equal by test/core/test_geometry_twins.py:
- ``euler2mat`` / ``mat2euler``: R = Rz(rz) @ Ry(ry) @ Rx(rx) <-> [rx, ry, rz] (|ry| < pi/2).
- ``pose_vec2mat`` / ``mat2pose_vec``: SfMLearner's pose vector ``[tx, ty, tz, rx, ry, rz]``
  (metres, radians) <-> 4x4 transform.
- ``se3_exp``: twist ``xi = [rho, omega]`` (translation part, axis-angle) -> rigid transform,

      R = I + A [w]x + B [w]x^2,   t = V rho,   V = I + B [w]x + C [w]x^2,
      A = sin(th) / th,  B = (1 - cos th) / th^2,  C = (th - sin th) / th^3,  th = |w|,

  which equals ``torch.linalg.matrix_exp`` of the 4x4 twist matrix. Near th = 0 the coefficients
  switch to their Taylor series, so values and gradients stay finite at 0.
- ``invert_se3``, ``stereo_transform`` (T_right_left of a rectified pair).

Only ops ONNX opset 17 has (Sin, Cos, Sqrt, Where, Asin, Atan2), so exported pose nets may use them.
Shapes: B batch.
"""
from __future__ import annotations

import torch

from vode_ros.core.shapes import check_shape

_SMALL = 1e-4   # th^2 below this: Taylor series (error of the 3-term series ~ th^6 / 9!, < 1e-13)


def euler2mat(angles: torch.Tensor) -> torch.Tensor:
    """(B, 3) [rx, ry, rz] radians -> (B, 3, 3) R = Rz @ Ry @ Rx."""
    check_shape(angles, "B,3", "angles")
    rx, ry, rz = angles[:, 0], angles[:, 1], angles[:, 2]
    zeros = torch.zeros_like(rx)
    ones = torch.ones_like(rx)
    cx, sx = torch.cos(rx), torch.sin(rx)
    cy, sy = torch.cos(ry), torch.sin(ry)
    cz, sz = torch.cos(rz), torch.sin(rz)
    rot_x = torch.stack([ones, zeros, zeros, zeros, cx, -sx, zeros, sx, cx], dim=1).view(-1, 3, 3)
    rot_y = torch.stack([cy, zeros, sy, zeros, ones, zeros, -sy, zeros, cy], dim=1).view(-1, 3, 3)
    rot_z = torch.stack([cz, -sz, zeros, sz, cz, zeros, zeros, zeros, ones], dim=1).view(-1, 3, 3)
    return rot_z @ rot_y @ rot_x


def mat2euler(rot: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) R = Rz @ Ry @ Rx -> (B, 3) [rx, ry, rz] (inverse of euler2mat, |ry| < pi/2)."""
    check_shape(rot, "B,3,3", "rot")
    ry = torch.asin((-rot[:, 2, 0]).clamp(-1.0, 1.0))
    rx = torch.atan2(rot[:, 2, 1], rot[:, 2, 2])
    rz = torch.atan2(rot[:, 1, 0], rot[:, 0, 0])
    return torch.stack([rx, ry, rz], dim=1)


def pose_vec2mat(vec: torch.Tensor) -> torch.Tensor:
    """(B, 6) [t, euler] -> (B, 4, 4) homogeneous transform."""
    check_shape(vec, "B,6", "vec")
    batch = vec.shape[0]
    rot = euler2mat(vec[:, 3:])                               # (B, 3, 3)
    top = torch.cat([rot, vec[:, :3].unsqueeze(-1)], dim=2)   # (B, 3, 4)
    bottom = torch.zeros(batch, 1, 4, dtype=vec.dtype, device=vec.device)
    bottom[:, 0, 3] = 1.0
    return torch.cat([top, bottom], dim=1)                    # (B, 4, 4)


def mat2pose_vec(mat: torch.Tensor) -> torch.Tensor:
    """(B, 4, 4) -> (B, 6) [t, euler] (inverse of pose_vec2mat)."""
    check_shape(mat, "B,4,4", "mat")
    return torch.cat([mat[:, :3, 3], mat2euler(mat[:, :3, :3])], dim=1)


def invert_se3(mat: torch.Tensor) -> torch.Tensor:
    """(B, 4, 4) rigid transform -> its inverse (R^T, -R^T t)."""
    check_shape(mat, "B,4,4", "mat")
    rot_t = mat[:, :3, :3].transpose(1, 2)
    trans = -rot_t @ mat[:, :3, 3:]
    out = torch.zeros_like(mat)
    out[:, :3, :3] = rot_t
    out[:, :3, 3:] = trans
    out[:, 3, 3] = 1.0
    return out


def stereo_transform(baseline: torch.Tensor | float, batch: int = 1,
                     dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """T_right_left (B, 4, 4) for a rectified pair, right camera at +baseline along x.

    X_right = X_left - [b, 0, 0]. ``baseline`` is a float or a (B,) tensor in metres.
    """
    b = torch.as_tensor(baseline, dtype=dtype, device=device).reshape(-1)
    if b.numel() == 1 and batch > 1:
        b = b.expand(batch)
    out = torch.eye(4, dtype=dtype, device=b.device).repeat(b.numel(), 1, 1)
    out[:, 0, 3] = -b
    return out


def skew(w: torch.Tensor) -> torch.Tensor:
    """(B, 3) -> (B, 3, 3) cross-product matrix [w]x."""
    check_shape(w, "B,3", "w")
    zero = torch.zeros_like(w[:, 0])
    return torch.stack([zero, -w[:, 2], w[:, 1],
                        w[:, 2], zero, -w[:, 0],
                        -w[:, 1], w[:, 0], zero], dim=1).view(-1, 3, 3)


def _exp_coefficients(theta2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A, B, C of the exponential map as functions of th^2 (B,), safe at 0."""
    small = theta2 < _SMALL
    t2 = torch.where(small, torch.ones_like(theta2), theta2)     # keeps the exact branch finite
    th = torch.sqrt(t2)
    s, c = torch.sin(th), torch.cos(th)
    a_exact, b_exact, c_exact = s / th, (1 - c) / t2, (th - s) / (t2 * th)
    t4 = theta2 * theta2
    a_taylor = 1 - theta2 / 6 + t4 / 120
    b_taylor = 0.5 - theta2 / 24 + t4 / 720
    c_taylor = 1.0 / 6 - theta2 / 120 + t4 / 5040
    return (torch.where(small, a_taylor, a_exact), torch.where(small, b_taylor, b_exact),
            torch.where(small, c_taylor, c_exact))


def so3_exp(omega: torch.Tensor) -> torch.Tensor:
    """(B, 3) axis-angle (direction = axis, norm = angle in rad) -> (B, 3, 3) rotation (Rodrigues)."""
    check_shape(omega, "B,3", "omega")
    a, b, _ = _exp_coefficients((omega * omega).sum(1))
    wx = skew(omega)
    eye = torch.eye(3, dtype=omega.dtype, device=omega.device).expand_as(wx)
    return eye + a.view(-1, 1, 1) * wx + b.view(-1, 1, 1) * (wx @ wx)


def se3_exp(xi: torch.Tensor) -> torch.Tensor:
    """(B, 6) twist [rho (3), omega (3)] -> (B, 4, 4) rigid transform exp(xi^)."""
    check_shape(xi, "B,6", "xi")
    rho, omega = xi[:, :3], xi[:, 3:]
    a, b, c = _exp_coefficients((omega * omega).sum(1))
    wx = skew(omega)
    wx2 = wx @ wx
    eye = torch.eye(3, dtype=xi.dtype, device=xi.device).expand_as(wx)
    rot = eye + a.view(-1, 1, 1) * wx + b.view(-1, 1, 1) * wx2
    v = eye + b.view(-1, 1, 1) * wx + c.view(-1, 1, 1) * wx2
    trans = v @ rho.unsqueeze(-1)                                   # (B, 3, 1)
    top = torch.cat([rot, trans], dim=2)                            # (B, 3, 4)
    bottom = torch.zeros_like(top[:, :1])                           # (B, 1, 4)
    bottom = torch.cat([bottom[:, :, :3], torch.ones_like(bottom[:, :, 3:])], dim=2)
    return torch.cat([top, bottom], dim=1)


def se3_to_pose_vec(xi: torch.Tensor) -> torch.Tensor:
    """(B, 6) twist -> (B, 6) package pose vector [t, euler] of exp(xi^)."""
    return mat2pose_vec(se3_exp(xi))
