"""Whether the pose net's translation may be used on this camera: the pose net only where it is in
its domain.

A pose net learns the motions of the footage it was trained on. Trained on driving (about 1 m a
frame forward, little rotation), it answers a handheld indoor camera with driving-sized
translations: seeded into the geometry or taken on a fallback, they make the path several times
too long. Its rotation transfers far better (rotation needs no sense of size). The export records
the training cameras' field of view and domain (vode.train_hfov_deg, vode.train_domain; the same
check as the depth side's, runtime.metric_trust.model_knows_camera); off that domain the net's
translation is replaced by the constant-velocity one, and only its rotation guides the geometry.

Pure Python + numpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vode_ros.runtime.metric_trust import horizontal_fov_deg, model_knows_camera


@dataclass(frozen=True)
class NetTrust:
    translation: bool        # the net's translation may be used
    reason: str              # one line for the log and vode/status


def pose_net_trust(raw_meta: dict[str, str], k: np.ndarray, width: int, domain: str = "") -> NetTrust:
    """From the pose model's metadata and the camera (K (3, 3) at an image ``width`` px wide; ``domain``
    what the user says it sees, '' = not said) -> whether its translation is used."""
    ok, why = model_knows_camera(raw_meta, horizontal_fov_deg(k, width), domain)
    if ok:
        return NetTrust(True, f"pose net in its domain: {why}")
    return NetTrust(False, f"pose net off its domain ({why}): its translation is not used, only its rotation "
                           "guides the geometry (constant velocity for the length)")


class NetDomainGate:
    """Applies :func:`pose_net_trust` per camera (decided again when K, the width or the model change)."""

    def __init__(self, domain: str = ""):
        self.domain = domain
        self.trust: NetTrust | None = None
        self._key = None

    def decide(self, raw_meta: dict[str, str], k: np.ndarray, width: int) -> tuple[NetTrust, bool]:
        """-> (the decision, whether it is new: a first decision or a change)."""
        key = (id(raw_meta), tuple(np.round(np.asarray(k, np.float64).ravel(), 6)), int(width), self.domain)
        if key == self._key and self.trust is not None:
            return self.trust, False
        before = self.trust
        self._key, self.trust = key, pose_net_trust(raw_meta, k, width, self.domain)
        return self.trust, before is None or before != self.trust

    @staticmethod
    def rotation_only(net_t_prev_cur: np.ndarray, last_motion: tuple[np.ndarray, float] | None,
                      dt: float) -> np.ndarray:
        """The net's rotation with the constant-velocity translation of the last motion (T_prev_cur (4, 4)
        over ``last_motion[1]`` s) scaled to ``dt``; no translation without a last motion."""
        out = np.asarray(net_t_prev_cur, np.float64).copy()
        if last_motion is None or last_motion[1] <= 0 or dt <= 0:
            out[:3, 3] = 0.0
        else:
            out[:3, 3] = last_motion[0][:3, 3] * (dt / last_motion[1])
        return out
