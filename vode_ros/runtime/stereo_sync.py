"""Approximate-time pairing of left and right images (what message_filters'
ApproximateTimeSynchronizer does for two topics), pure Python so it runs without ROS.

message_filters is not on PyPI; on a ROS install the nodes could use it, but a two-topic
pairing with a slop is small enough to own and test here.
"""
from __future__ import annotations

from collections import deque
from typing import Any


class StereoPairer:
    """Pairs left/right items whose stamps differ by at most `slop` seconds.

    Each side keeps a short queue; an item that can no longer find a partner (the other side
    has moved past it by more than the slop) is dropped and counted as out of sync.
    """

    def __init__(self, slop: float = 0.02, queue_size: int = 5):
        self.slop = slop
        self.left: deque[tuple[float, Any]] = deque(maxlen=queue_size)
        self.right: deque[tuple[float, Any]] = deque(maxlen=queue_size)
        self.unpaired = 0

    def add_left(self, stamp: float, item: Any) -> tuple[Any, Any] | None:
        self.left.append((stamp, item))
        return self._match()

    def add_right(self, stamp: float, item: Any) -> tuple[Any, Any] | None:
        self.right.append((stamp, item))
        return self._match()

    def _match(self) -> tuple[Any, Any] | None:
        while self.left and self.right:
            (tl, il), (tr, ir) = self.left[0], self.right[0]
            if abs(tl - tr) <= self.slop:
                self.left.popleft()
                self.right.popleft()
                return il, ir
            # The older head cannot pair with anything newer on the other side: drop it.
            if tl < tr:
                self.left.popleft()
            else:
                self.right.popleft()
            self.unpaired += 1
        return None
