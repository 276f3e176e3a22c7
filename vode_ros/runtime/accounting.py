"""Where every input frame went: out, dropped by the queue policy, rejected (per reason) or
still pending. Pure Python, shared by the nodes' callbacks and their worker thread.

The invariant, true at any moment (every change happens under one lock):

    frames_in == frames_out + frames_dropped + frames_rejected + frames_pending

and frames_pending is 0 once the node is idle, so then in == out + dropped + rejected.
"""
from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Snapshot:
    frames_in: int
    frames_out: int
    frames_dropped: int
    frames_pending: int
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def frames_rejected(self) -> int:
        return sum(self.rejected.values())

    def balanced(self) -> bool:
        return self.frames_in == self.frames_out + self.frames_dropped + self.frames_rejected + self.frames_pending


class FrameAccounts:
    """Counters of one node. A frame is `received` once, then finished exactly once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in = self._out = self._dropped = self._pending = 0
        self._rejected: Counter[str] = Counter()

    def received(self) -> None:
        with self._lock:
            self._in += 1
            self._pending += 1

    def published(self) -> None:
        self._finish("out")

    def dropped(self) -> None:
        self._finish("dropped")

    def rejected(self, reason: str) -> None:
        self._finish("rejected", reason)

    def _finish(self, outcome: str, reason: str = "") -> None:
        with self._lock:
            if self._pending <= 0:
                # A frame finished twice would break the invariant silently: fail loudly in tests.
                raise RuntimeError(f"frame accounting: '{outcome}' with no frame pending")
            self._pending -= 1
            if outcome == "out":
                self._out += 1
            elif outcome == "dropped":
                self._dropped += 1
            else:
                self._rejected[reason] += 1

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(self._in, self._out, self._dropped, self._pending, dict(self._rejected))

    @property
    def frames_in(self) -> int:
        return self._in

    @property
    def frames_out(self) -> int:
        return self._out

    @property
    def frames_dropped(self) -> int:
        return self._dropped

    @property
    def frames_rejected(self) -> int:
        with self._lock:
            return sum(self._rejected.values())

    @property
    def frames_pending(self) -> int:
        return self._pending
