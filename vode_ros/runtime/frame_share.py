"""What the pipelines of one process compute once per camera frame and share: the stereo pair's SGBM
map (core.stereo_depth.pair_depth, preset ``run_time``: the depth node's stereo scale and the
odometry's geometry depth) and a net input (OnnxModel.preprocess: the depth and pose nets exported
from one checkpoint take the same input).

Each node's pipeline holds a FrameShare; `vode run` hands one to both nodes of its process, so
whichever worker reaches a frame first computes and the other takes the result (waiting for it
while it is being computed). A pipeline alone has its own and computes everything itself.
The arrays handed out are shared: nobody writes into them (the SGBM map is made read-only).

numpy + OpenCV; thread-safe (the two nodes' workers).
"""
from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from typing import Any, Callable

import numpy as np

from vode_ros.core.stereo_depth import pair_depth


class FrameShare:
    """Recent per-frame results by key (the frame's stamp in integer ns first). ``capacity`` bounds memory."""

    def __init__(self, capacity: int = 8, preset: str = "run_time"):
        self.capacity = capacity
        self.preset = preset
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple, threading.Event | Any] = OrderedDict()
        self.computed: Counter[str] = Counter()   # results computed, by kind ("sgbm", "net_input")
        self.shared: Counter[str] = Counter()     # requests answered by another caller's result, by kind

    def depth(self, stamp_ns: int, left: np.ndarray, right: np.ndarray, fx: float, baseline: float) -> np.ndarray:
        """(H, W) grey (or RGB) uint8 rectified pair of the frame stamped ``stamp_ns``, fx px at (W, H),
        baseline m -> (h, w) metres at about 416 px wide (0 = none), read-only. Two callers share a map
        only for the same pair at the same calibration (size, fx and baseline are in the key)."""
        key = ("sgbm", int(stamp_ns), left.shape[:2], round(float(fx), 6), round(float(baseline), 9))

        def match() -> np.ndarray:
            d = pair_depth(left, right, fx, baseline, self.preset)
            d.setflags(write=False)
            return d

        return self.once(key, match)

    def net_input(self, stamp_ns: int, model, image: np.ndarray, encoding: str) -> np.ndarray:
        """``model.preprocess(image, encoding)`` (C, h, w) of the frame stamped ``stamp_ns``, shared by
        models that preprocess alike (input size, colour, normalisation)."""
        m = model.meta
        key = ("net_input", int(stamp_ns), image.shape, encoding, m.width, m.height, m.color, tuple(m.mean),
               tuple(m.std))
        return self.once(key, lambda: model.preprocess(image, encoding))

    def once(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """compute() for ``key`` (its first item names the kind) once: the first caller computes, the
        others wait for its result."""
        while True:
            with self._lock:
                entry = self._items.get(key)
                if entry is None:
                    pending = threading.Event()
                    self._items[key] = pending
                    while len(self._items) > self.capacity:
                        self._items.popitem(last=False)
                    break
            if isinstance(entry, threading.Event):
                entry.wait()
                with self._lock:
                    entry = self._items.get(key)
            if entry is not None and not isinstance(entry, threading.Event):
                with self._lock:
                    self.shared[key[0]] += 1
                return entry
            # evicted, or the computing caller failed: compute it here
        try:
            result = compute()
        except BaseException:
            with self._lock:
                self._items.pop(key, None)
            pending.set()
            raise
        with self._lock:
            if self._items.get(key) is pending:
                self._items[key] = result
            self.computed[key[0]] += 1
        pending.set()
        return result
