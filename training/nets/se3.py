"""se(3) exponential map and rotation-matrix -> Euler conversion (torch, batched, ONNX-exportable).

Deep-VO-Feat's odometry CNN outputs a twist ``xi = [rho, omega]`` (6-vector: translation part and
axis-angle rotation, Lie algebra se(3)); ``se3_exp`` turns it into the rigid transform

    R = I + A [w]x + B [w]x^2,   t = V rho,   V = I + B [w]x + C [w]x^2,
    A = sin(th) / th,  B = (1 - cos th) / th^2,  C = (th - sin th) / th^3,  th = |w|,

which equals ``torch.linalg.matrix_exp`` of the 4x4 twist matrix [[ [w]x, rho ], [0, 0]]. Near
th = 0 the coefficients switch to their Taylor series, so values and gradients stay finite at 0.

``mat2euler`` / ``mat_to_pose_vec`` convert back to the package's pose vector ``[t, euler]`` with
R = Rz @ Ry @ Rx (vode_ros.core.geometry.matrix_to_euler, valid for |ry| < pi/2); exported pose nets
must output that vector, so a method whose net predicts se(3) converts in its export wrapper.
Uses only ops ONNX opset 17 has (Sin, Cos, Sqrt, Where, Asin, Atan via torch's atan2 symbolic).
"""
from __future__ import annotations

import torch

_SMALL = 1e-4   # th^2 below this: Taylor series (error of the 3-term series ~ th^6 / 9!, < 1e-13)


def skew(w: torch.Tensor) -> torch.Tensor:
    """(B, 3) -> (B, 3, 3) cross-product matrix [w]x."""
    zero = torch.zeros_like(w[:, 0])
    return torch.stack([zero, -w[:, 2], w[:, 1],
                        w[:, 2], zero, -w[:, 0],
                        -w[:, 1], w[:, 0], zero], dim=1).view(-1, 3, 3)


def _coefficients(theta2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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
    a, b, _ = _coefficients((omega * omega).sum(1))
    wx = skew(omega)
    eye = torch.eye(3, dtype=omega.dtype, device=omega.device).expand_as(wx)
    return eye + a.view(-1, 1, 1) * wx + b.view(-1, 1, 1) * (wx @ wx)


def se3_exp(xi: torch.Tensor) -> torch.Tensor:
    """(B, 6) twist [rho (3), omega (3)] -> (B, 4, 4) rigid transform exp(xi^)."""
    rho, omega = xi[:, :3], xi[:, 3:]
    a, b, c = _coefficients((omega * omega).sum(1))
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


def mat2euler(rot: torch.Tensor) -> torch.Tensor:
    """(B, 3, 3) R = Rz @ Ry @ Rx -> (B, 3) [rx, ry, rz] (inverse of geometry.euler2mat, |ry| < pi/2)."""
    ry = torch.asin((-rot[:, 2, 0]).clamp(-1.0, 1.0))
    rx = torch.atan2(rot[:, 2, 1], rot[:, 2, 2])
    rz = torch.atan2(rot[:, 1, 0], rot[:, 0, 0])
    return torch.stack([rx, ry, rz], dim=1)


def mat_to_pose_vec(mat: torch.Tensor) -> torch.Tensor:
    """(B, 4, 4) -> (B, 6) [t, euler] (inverse of geometry.pose_vec2mat)."""
    return torch.cat([mat[:, :3, 3], mat2euler(mat[:, :3, :3])], dim=1)


def se3_to_pose_vec(xi: torch.Tensor) -> torch.Tensor:
    """(B, 6) twist -> (B, 6) package pose vector [t, euler] of exp(xi^)."""
    return mat_to_pose_vec(se3_exp(xi))
