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
    has moved past it by more than the slop, or its queue overflowed) is given up and counted
    as out of sync. Given-up left items are kept for the caller (:meth:`take_unpaired_left`),
    which accounts for them: a left image is an input frame, a right image only its partner.
    """

    def __init__(self, slop: float = 0.02, queue_size: int = 5):
        self.slop = slop
        self.queue_size = queue_size
        self.left: deque[tuple[float, Any]] = deque()
        self.right: deque[tuple[float, Any]] = deque()
        self.unpaired = 0            # left and right items given up
        self._given_up_left: list[Any] = []

    def add_left(self, stamp: float, item: Any) -> tuple[Any, Any] | None:
        self.left.append((stamp, item))
        if len(self.left) > self.queue_size:
            self._give_up_left(self.left.popleft()[1])
        return self._match()

    def add_right(self, stamp: float, item: Any) -> tuple[Any, Any] | None:
        self.right.append((stamp, item))
        if len(self.right) > self.queue_size:
            self.right.popleft()
            self.unpaired += 1
        return self._match()

    def take_unpaired_left(self) -> list[Any]:
        """Left items given up since the last call (each returned once)."""
        out, self._given_up_left = self._given_up_left, []
        return out

    def flush_left(self) -> list[Any]:
        """Give up every waiting left item (the right camera has gone silent); returns them."""
        while self.left:
            self._give_up_left(self.left.popleft()[1])
        return self.take_unpaired_left()

    def drop_right_before(self, stamp: float) -> int:
        """Give up right items too old to pair with a left image at `stamp`; returns how many."""
        n = 0
        while self.right and self.right[0][0] < stamp - self.slop:
            self.right.popleft()
            n += 1
        self.unpaired += n
        return n

    def _give_up_left(self, item: Any) -> None:
        self.unpaired += 1
        self._given_up_left.append(item)

    def _match(self) -> tuple[Any, Any] | None:
        while self.left and self.right:
            (tl, il), (tr, ir) = self.left[0], self.right[0]
            if abs(tl - tr) <= self.slop:
                self.left.popleft()
                self.right.popleft()
                return il, ir
            # The older head cannot pair with anything newer on the other side: give it up.
            if tl < tr:
                self._give_up_left(self.left.popleft()[1])
            else:
                self.right.popleft()
                self.unpaired += 1
        return None
