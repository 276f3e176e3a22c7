"""Is a frame-to-frame motion's length believable? Against the recent motion and its covariance.

A wrong solution rarely looks wrong in its own residuals: PnP that locked onto a repeated
texture, a pose-net hypothesis that won RANSAC on a few far points, the pose net's driving-sized
translation on a handheld camera. What gives it away is the length: a camera does not go from
0.2 m a frame to 1.5 m in one frame. The recent speed (median of the last ``history`` accepted
motions, metres per second, so a dropped frame or another stride is no surprise) predicts the
length ``v dt``; a motion is implausible where its length differs from that by more than

    max(max_speed_change * v dt, max_accel * dt²) + n_sigma * σ_along

(σ_along: the solution's own standard deviation along its direction of travel). With no history
yet every motion is plausible. The pose net's motion, which has no covariance of its own, is held
to a band both ways (``net_length``): a net trained at another frame rate is short by that factor.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PlausibilityConfig:
    history: int = 5                # accepted motions whose median speed predicts the next
    max_speed_change: float = 1.0   # relative: the speed may double or drop to zero in a frame
    max_accel: float = 3.0          # m/s²: from standing still (a car: 3, a hand: more over longer)
    n_sigma: float = 3.0


@dataclass
class Verdict:
    plausible: bool
    length: float                   # m, of the motion judged
    expected: float | None          # m, v dt (None: no history)
    allowed: float                  # m, the largest |length - expected| taken


class MotionPlausibility:
    def __init__(self, cfg: PlausibilityConfig | None = None):
        self.cfg = cfg or PlausibilityConfig()
        self._speeds: deque[float] = deque(maxlen=self.cfg.history)

    def reset(self) -> None:
        self._speeds.clear()

    def expected_length(self, dt: float) -> float | None:
        if len(self._speeds) < 2 or dt <= 0:
            return None
        return float(np.median(self._speeds)) * dt

    def judge(self, t_prev_cur: np.ndarray, covariance: np.ndarray, dt: float) -> Verdict:
        """T_prev_cur (4, 4) with its (6, 6) covariance (x y z first), dt s since the previous frame."""
        t = np.asarray(t_prev_cur, np.float64)[:3, 3]
        length = float(np.linalg.norm(t))
        expected = self.expected_length(dt)
        if expected is None:
            return Verdict(True, length, None, float("inf"))
        direction = t / length if length > 1e-9 else np.array([0.0, 0.0, 1.0])
        sigma = float(np.sqrt(max(direction @ np.asarray(covariance)[:3, :3] @ direction, 0.0)))
        allowed = (max(self.cfg.max_speed_change * expected, self.cfg.max_accel * dt * dt)
                   + self.cfg.n_sigma * sigma)
        return Verdict(abs(length - expected) <= allowed, length, expected, allowed)

    def net_length(self, net_t_prev_cur: np.ndarray, dt: float) -> float | None:
        """The length to give the pose net's motion: None where its own is plausible, else the
        recent speed's ``v dt``. The net has no covariance of its own and is as wrong when too short
        (a net trained at a higher frame rate, or on slower footage) as when too long, so its length
        must lie within a factor (1 + max_speed_change) of ``v dt``, give or take max_accel dt²."""
        expected = self.expected_length(dt)
        if expected is None:
            return None
        length = float(np.linalg.norm(np.asarray(net_t_prev_cur)[:3, 3]))
        slack = self.cfg.max_accel * dt * dt
        factor = 1.0 + self.cfg.max_speed_change
        if expected / factor - slack <= length <= expected * factor + slack:
            return None
        return expected

    def accept(self, t_prev_cur: np.ndarray, dt: float) -> None:
        """A motion taken as the camera's: its speed joins the history."""
        if dt > 0:
            self._speeds.append(float(np.linalg.norm(np.asarray(t_prev_cur)[:3, 3])) / dt)
