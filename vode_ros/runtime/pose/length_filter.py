"""The speed of a monocular camera through an alpha-beta filter (PoseEstimatorConfig.length_smoothing).

The length of each geometric motion comes from the depth net's depth of one frame, whose scale
wobbles from frame to frame. The filter keeps the speed and its rate of change (gain
alpha = 1 - a, beta = alpha^2 / (2 - alpha), Benedict-Bordner); each motion keeps its direction
and rotation with the filtered length. numpy only.
"""
from __future__ import annotations

import numpy as np


class SpeedFilter:
    """Filtered speed (m/s) and its rate (m/s^2); ``a`` in [0, 1) is the weight of the prediction."""

    def __init__(self, a: float, dt_ref: float = 0.0):
        self.a = float(a)
        self.dt_ref = float(dt_ref)       # s: the frame interval ``a`` is meant for; 0 = every frame alike
        self.reset()

    def reset(self) -> None:
        self.speed: float | None = None
        self.rate = 0.0

    def filter_length(self, t_prev_cur: np.ndarray, dt: float) -> float | None:
        """Rescale the translation of ``t_prev_cur`` (4, 4), in place, to the filtered speed x dt.

        -> the measured length (m), or None where nothing was filtered (no time, no motion)."""
        if self.a <= 0 or dt <= 0:
            return None
        t = t_prev_cur[:3, 3]
        length = float(np.linalg.norm(t))
        if length < 1e-9:
            return None
        measured = length / dt
        if self.speed is None:
            self.speed, self.rate = measured, 0.0
        else:
            # A frame further on (a lower frame rate, dropped frames) makes the prediction older:
            # the speed may have changed more since, while one measurement is as good as ever.
            a = self.a ** (dt / self.dt_ref) if self.dt_ref > 0 else self.a
            alpha = 1.0 - a
            beta = alpha * alpha / (2.0 - alpha)
            predicted = self.speed + self.rate * dt
            residual = measured - predicted
            self.speed = predicted + alpha * residual
            self.rate += beta * residual / dt
            if self.speed < 0.0:                  # braked to a stop: no speed below zero, no rate left
                self.speed, self.rate = 0.0, 0.0
        t_prev_cur[:3, 3] = t * (self.speed * dt / length)
        return length
