"""The time split of a recording for offline adaptation: the first part trains, the last part
judges. A split in time (not every n-th frame) keeps the judged frames unseen *and* away from the
training frames' neighbours: what a model learns on the first minutes must hold on the next."""
from __future__ import annotations

import numpy as np


def time_split(n_frames: int, holdout: float = 0.2, min_heldout: int = 3, min_train: int = 3
               ) -> tuple[list[int], list[int]]:
    """(training frame positions, held-out frame positions) of a stream of ``n_frames``: the last
    ``holdout`` share (at least ``min_heldout`` frames) is held out. Raises ValueError when the
    stream is too short for both parts."""
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"the held-out share must lie between 0 and 1, got {holdout}")
    n_held = max(int(min_heldout), int(round(n_frames * holdout)))
    if n_frames - n_held < min_train:
        raise ValueError(f"{n_frames} frames: too few to train on {min_train}+ and hold out {n_held} "
                         "(record a longer bag)")
    cut = n_frames - n_held
    return list(range(cut)), list(range(cut, n_frames))


def nearest_stamps(frame_ns: np.ndarray, other_ns: np.ndarray, tolerance_ns: int) -> np.ndarray:
    """For each frame stamp (N,) the index into ``other_ns`` (sorted, M) of the nearest stamp
    within ``tolerance_ns``, else -1."""
    frame_ns = np.asarray(frame_ns, np.int64)
    other_ns = np.asarray(other_ns, np.int64)
    out = np.full(len(frame_ns), -1, np.int64)
    if len(other_ns) == 0:
        return out
    idx = np.clip(np.searchsorted(other_ns, frame_ns), 0, len(other_ns) - 1)
    prev = np.clip(idx - 1, 0, len(other_ns) - 1)
    best = np.where(np.abs(other_ns[prev] - frame_ns) <= np.abs(other_ns[idx] - frame_ns), prev, idx)
    ok = np.abs(other_ns[best] - frame_ns) <= tolerance_ns
    out[ok] = best[ok]
    return out
