"""One stereo match per pair, shared: the depth node's stereo scale and the odometry's geometry
depth read the same SGBM map (core.stereo_depth.pair_depth, preset ``run_time``) of a stamp.

Each node's pipeline holds a StereoDepthShare; `vode run` hands one to both nodes of its process,
so whichever worker reaches a stamp first matches the pair and the other takes the result
(waiting for it while it is being computed). A pipeline alone has its own: it computes every pair.

numpy + OpenCV; thread-safe (the two nodes' workers).
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from vode_ros.core.stereo_depth import pair_depth


class StereoDepthShare:
    """Recent SGBM depth maps by stamp (integer ns). ``capacity`` bounds memory."""

    def __init__(self, capacity: int = 8, preset: str = "run_time"):
        self.capacity = capacity
        self.preset = preset
        self._lock = threading.Lock()
        self._maps: OrderedDict[tuple, threading.Event | np.ndarray | None] = OrderedDict()
        self.computed = 0          # pairs matched here
        self.shared = 0            # requests answered by another caller's match

    def depth(self, stamp_ns: int, left: np.ndarray, right: np.ndarray, fx: float, baseline: float) -> np.ndarray:
        """(H, W) grey (or RGB) uint8 rectified pair of the frame stamped ``stamp_ns``, fx px at (W, H),
        baseline m -> (h, w) metres at about 416 px wide (0 = none). The key includes the image size
        and fx: two callers share a map only for the same pair at the same calibration."""
        key = (int(stamp_ns), left.shape[:2], round(float(fx), 6), round(float(baseline), 9))
        with self._lock:
            entry = self._maps.get(key)
            if entry is None:
                pending = threading.Event()
                self._maps[key] = pending
                while len(self._maps) > self.capacity:
                    self._maps.popitem(last=False)
            else:
                pending = None
        if pending is None:
            if isinstance(entry, threading.Event):
                entry.wait()
                with self._lock:
                    entry = self._maps.get(key)
            if isinstance(entry, np.ndarray):
                self.shared += 1
                return entry
            return self.depth(stamp_ns, left, right, fx, baseline)    # evicted or failed meanwhile: match it
        try:
            depth = pair_depth(left, right, fx, baseline, self.preset)
            depth.setflags(write=False)          # read by both nodes: nobody writes into it
        except BaseException:
            with self._lock:
                self._maps.pop(key, None)
            pending.set()
            raise
        with self._lock:
            if key in self._maps:
                self._maps[key] = depth
            self.computed += 1
        pending.set()
        return depth
