"""A topic that has publishers but delivers nothing, noticed (pure Python; the node asks once a second).

A subscriber cannot see a message that never arrives, but it can see that the topic has publishers
and that its count of received messages stands still. Large images on a best-effort input are the
usual cause: DDS splits a sample of hundreds of kilobytes into many UDP fragments and drops the whole
sample when one fragment is lost, which with best effort is never resent. An incompatible QoS (a
best-effort publisher and a reliable subscription) looks the same from here.
"""
from __future__ import annotations

GRACE_S = 5.0      # publishers seen and nothing received for this long: say so


class ArrivalWatch:
    """One topic. :meth:`update` returns True once per silence: when the topic has had publishers for
    `grace_s` without one message received; a message resets it (a later silence is reported again)."""

    def __init__(self, grace_s: float = GRACE_S):
        self.grace_s = grace_s
        self._since: float | None = None      # when publishers were seen with this received count
        self._received = -1
        self.silent = False                   # reported and still silent

    def update(self, publishers: int, received: int, now: float) -> bool:
        if received != self._received or publishers == 0:
            self._received, self.silent = received, False
            self._since = now if publishers else None
            return False
        if self._since is None:
            self._since = now
        if not self.silent and now - self._since >= self.grace_s:
            self.silent = True
            return True
        return False
