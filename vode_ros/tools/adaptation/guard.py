"""The held-out guard: a new model replaces the old one only when it is better on frames neither
was trained on. One rule for the offline ``vode adapt`` and the online adapter of the depth node.

Scores are dicts of errors (lower is better) on the same held-out frames, e.g.
``{"photometric": 0.121, "depth_abs_rel": 0.18, "pose_ate5": 0.031}``. The candidate must lower
the photometric reprojection error (always measured: it needs no reference), must not raise the
depth error where a reference (stereo, a depth topic) was measured, and must not make the pose
worse than ``pose_tolerance`` (relative), or than the noise of the measurement where that is
larger (the standard error of the ATE-5 difference over the held-out snippets), where the bag
has odometry or ground truth. The depth
error judged is the one of what the node will publish: metric Abs Rel for a candidate with a
scale source (``depth_key="depth_abs_rel_metric"``: a model 17x too far that learns the metres
is better even if its median-scaled shape moved a little), median-scaled Abs Rel otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

PRIMARY = "photometric"        # the error that must fall
DEPTH_KEY = "depth_abs_rel"    # median-scaled; "depth_abs_rel_metric" for a candidate that publishes metres
POSE_KEY = "pose_ate5"
POSE_TOLERANCE = 0.05          # ATE-5 may move within 5 % (frame-to-frame noise of a short held-out stretch)


@dataclass
class Verdict:
    install: bool
    reasons: list[str] = field(default_factory=list)    # why (one line each), for logs and the report

    @property
    def summary(self) -> str:
        return ("install: " if self.install else "keep the old model: ") + "; ".join(self.reasons)


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def judge(before: dict[str, float], after: dict[str, float], pose_tolerance: float = POSE_TOLERANCE,
          depth_tolerance: float = 0.0, depth_key: str = DEPTH_KEY) -> Verdict:
    """Install the candidate (``after``) over the model in use (``before``)? See the module doc."""
    reasons, ok = [], True
    b, a = before.get(PRIMARY), after.get(PRIMARY)
    if not _finite(a):
        return Verdict(False, [f"the candidate's held-out {PRIMARY} error is {a} (not finite)"])
    if not _finite(b):
        return Verdict(False, [f"the old model's held-out {PRIMARY} error is {b}: nothing to compare with"])
    if a < b:
        reasons.append(f"held-out {PRIMARY} error fell {b:.4f} -> {a:.4f} ({(a - b) / b:+.1%})")
    else:
        ok = False
        reasons.append(f"held-out {PRIMARY} error did not fall: {b:.4f} -> {a:.4f} ({(a - b) / b:+.1%})")
    for key, tol, what in ((depth_key, depth_tolerance, "depth"), (POSE_KEY, pose_tolerance, "pose")):
        vb, va = before.get(key), after.get(key)
        if not _finite(vb) or key not in after:
            continue               # not measured on this recording
        allowed, why = vb * tol, f"tolerance {tol:.0%}"
        noise = _pose_noise(before, after) if key == POSE_KEY else 0.0
        if noise > allowed:
            allowed, why = noise, f"within the noise of {before.get('pose_snippets', 0):.0f} snippets, {noise:.4f}"
        if not _finite(va) or va > vb + allowed + 1e-12:
            ok = False
            reasons.append(f"{what} got worse on held-out frames: {key} {vb:.4f} -> {va:.4f} "
                           f"({(va - vb) / max(vb, 1e-12):+.1%}; {why})")
        else:
            reasons.append(f"{key} {vb:.4f} -> {va:.4f} ({(va - vb) / max(vb, 1e-12):+.1%}; {why})")
    return Verdict(ok, reasons)


def _pose_noise(before: dict[str, float], after: dict[str, float]) -> float:
    """The standard error of the ATE-5 difference (snippet spreads ``pose_ate5_std`` over
    ``pose_snippets`` snippets of each): a short held-out stretch has few snippets, and a pose
    that moves less than this has not measurably got worse."""
    n = min(before.get("pose_snippets", 0) or 0, after.get("pose_snippets", 0) or 0)
    sb, sa = before.get("pose_ate5_std"), after.get("pose_ate5_std")
    if n < 2 or not (_finite(sb) and _finite(sa)):
        return 0.0
    return math.sqrt(sb * sb + sa * sa) / math.sqrt(n)
