"""Where the pose estimator's depth comes from at run time: SGBM of the stereo pair
(core.stereo_depth.pair_depth, shared through runtime.frame_share), or the depth node's published
depth paired with the camera images by exact stamp, and the parameters that choose between them.

- :class:`DepthCache`: depth maps keyed by their image's stamp (integer nanoseconds, copied from
  the input header by the depth node, so equality is exact). The odometry node asks for the depth
  of the frame it stepped last; the depth node (over DDS, or directly when both nodes share a
  process) puts. Whatever never pairs is counted: images whose depth did not come, depth maps no
  image asked for.

numpy + OpenCV, thread-safe (the depth node's worker puts, the odometry node's worker takes).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

GEOMETRY_DEPTHS = ("auto", "depth_topic", "stereo")


def resolve_geometry_depth(choice: str, mode: str, pose_source: str) -> str:
    """Parameter ``geometry_depth`` -> what the odometry node uses: 'none' | 'stereo' | 'depth_topic'.

    'auto' is SGBM in mode stereo (metric, no net), else the depth node's depth. The pose net
    alone (pose_source 'net') needs no depth."""
    if choice not in GEOMETRY_DEPTHS:
        raise ValueError(f"geometry_depth must be one of {', '.join(GEOMETRY_DEPTHS)}, got {choice!r}")
    if pose_source == "net":
        return "none"
    if choice == "auto":
        return "stereo" if mode == "stereo" else "depth_topic"
    if choice == "stereo" and mode != "stereo":
        raise ValueError("geometry_depth 'stereo' needs mode stereo (the right camera); use depth_topic or auto")
    return choice


ESSENTIAL_CHOICES = ("auto", "on", "off")


def use_essential(choice: str, geometry: str) -> bool:
    """Parameter ``essential`` -> whether the estimator takes rotation and direction from the
    essential matrix (PoseEstimatorConfig.essential). 'auto': where the geometry's depth is the
    depth net's ('depth_topic' in the node, 'mono' offline), whose shape errors mislead PnP; with
    stereo or sensor depth PnP is better (KITTI 06 stereo ATE-5 0.0095 m vs 0.0216 with it)."""
    if choice not in ESSENTIAL_CHOICES:
        raise ValueError(f"essential must be one of {', '.join(ESSENTIAL_CHOICES)}, got {choice!r}")
    if choice == "auto":
        return geometry in ("depth_topic", "mono")
    return choice == "on"


# length_smoothing with the depth net's depth (auto). Chosen on the model's training sequences,
# mono hybrid + essential, ATE-5 / Sim(3) ATE with 0 and 0.7: KITTI 07 0.0198 / 0.360 and
# 0.0183 / 0.433 m, 00 100-199 0.0251 / 0.417 and 0.0236 / 0.383, 00 14-99 0.0278 / 0.163 and
# 0.0276 / 0.172 (0.5: less of the ATE-5 gain, 07 0.0188).
MONO_LENGTH_SMOOTHING = 0.7


def resolve_length_smoothing(value: float, geometry: str) -> float:
    """Parameter ``length_smoothing`` -> PoseEstimatorConfig.length_smoothing. Negative = auto:
    MONO_LENGTH_SMOOTHING where the geometry's depth is the depth net's (as ``use_essential``),
    0 with stereo or sensor depth, whose lengths need no averaging."""
    value = float(value)
    if value >= 1.0:
        raise ValueError(f"length_smoothing must be < 1 (negative = auto), got {value}")
    if value < 0:
        return MONO_LENGTH_SMOOTHING if geometry in ("depth_topic", "mono") else 0.0
    return value


@dataclass(frozen=True)
class PairingCounts:
    paired: int              # frames that got their depth
    frames_without_depth: int   # frames whose depth never came (dropped by the depth node, late, silent)
    depth_unpaired: int      # depth maps no frame asked for (evicted or arrived too late)
    waits: int               # frames that had to wait for their depth
    wait_ms_total: float


class DepthCache:
    """Recent depth maps by stamp (ns); see the module docstring. ``capacity`` bounds memory."""

    def __init__(self, capacity: int = 30):
        self.capacity = capacity
        self._cond = threading.Condition()
        self._depth: OrderedDict[int, np.ndarray] = OrderedDict()
        self._newest: int | None = None         # newest stamp ever put (the depth node works in order)
        self._asked: int | None = None          # newest stamp asked for: older depth comes too late
        self._last_put = 0.0                    # monotonic time of the last put
        self._silent = False                    # the last wait timed out with nothing arriving since
        self._paired = self._missing = self._unpaired = self._waits = 0
        self._wait_ms = 0.0

    def put(self, stamp_ns: int, depth: np.ndarray) -> None:
        """Depth (H, W) metres of the image stamped ``stamp_ns``."""
        with self._cond:
            self._last_put, self._silent = time.monotonic(), False     # late or not: the source is alive
            if self._asked is not None and int(stamp_ns) <= self._asked:
                self._unpaired += 1             # its frame has been stepped (or given up) already
                return
            self._depth[int(stamp_ns)] = depth
            self._depth.move_to_end(int(stamp_ns))
            while len(self._depth) > self.capacity:
                self._depth.popitem(last=False)
                self._unpaired += 1
            self._newest = int(stamp_ns) if self._newest is None else max(self._newest, int(stamp_ns))
            self._cond.notify_all()

    def take(self, stamp_ns: int, timeout: float = 0.0) -> np.ndarray | None:
        """The depth of ``stamp_ns``, waiting up to ``timeout`` s; None (counted) if it does not come.

        Does not wait when a newer depth is already here (this one was skipped: the depth node
        works in order) or when the source has been silent since the last wait timed out (a
        stopped depth node costs one timeout, not one per frame). Older entries are dropped
        (counted as unpaired): frames are asked for in order."""
        stamp_ns = int(stamp_ns)
        t0 = time.monotonic()
        with self._cond:
            def ready() -> bool:
                return stamp_ns in self._depth or (self._newest is not None and self._newest > stamp_ns)

            if not ready() and timeout > 0 and not self._silent:
                self._waits += 1
                if not self._cond.wait_for(ready, timeout):
                    self._silent = True
                self._wait_ms += (time.monotonic() - t0) * 1e3
            self._asked = stamp_ns if self._asked is None else max(self._asked, stamp_ns)
            depth = self._depth.pop(stamp_ns, None)
            for old in [s for s in self._depth if s < stamp_ns]:
                del self._depth[old]
                self._unpaired += 1
            if depth is None:
                self._missing += 1
            else:
                self._paired += 1
            return depth

    def clear(self) -> None:
        """A new sequence (time jumped back): forget what is held (not counted)."""
        with self._cond:
            self._depth.clear()
            self._newest = self._asked = None

    def counts(self) -> PairingCounts:
        with self._cond:
            return PairingCounts(self._paired, self._missing, self._unpaired, self._waits, self._wait_ms)
