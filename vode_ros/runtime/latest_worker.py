"""A bounded mailbox with a worker thread.

Default (live cameras, REP-2003 sensor data): one slot, newest frame wins. Subscription
callbacks hand frames over and return at once; a slow model drops (and counts) frames
instead of queueing them.

Blocking (lossless replay, ``blocking=True``): up to ``capacity`` frames wait and ``submit``
blocks while the queue is full, so the back-pressure reaches the reliable DDS reader and
every frame is processed.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable


class LatestFrameWorker:
    def __init__(self, handler: Callable[[Any], None], name: str = "vode-worker", capacity: int = 1,
                 blocking: bool = False, on_drop: Callable[[Any], None] | None = None):
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self._handler = handler
        self._on_drop = on_drop
        self._cond = threading.Condition()
        self._queue: deque[Any] = deque()
        self.capacity, self.blocking = capacity, blocking
        self._busy = False
        self._stop = False
        self.dropped = 0
        self.processed = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> bool:
        """Queue `item`; False if the worker has stopped (the item is then neither run nor dropped)."""
        dropped = None
        with self._cond:
            if self.blocking:
                self._cond.wait_for(lambda: len(self._queue) < self.capacity or self._stop)
            if self._stop:
                return False
            if len(self._queue) >= self.capacity:
                dropped = self._queue.popleft()      # the oldest waiting frame makes room for the newest
                self.dropped += 1
            self._queue.append(item)
            self._cond.notify_all()
        if dropped is not None and self._on_drop is not None:
            self._on_drop(dropped)
        return True

    @property
    def pending(self) -> int:
        """Frames queued or being processed."""
        with self._cond:
            return len(self._queue) + int(self._busy)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once nothing is queued or running (for tests and clean shutdown)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def stop(self, timeout: float = 5.0) -> list[Any]:
        """Stop the thread; returns the frames that were still queued (never run)."""
        with self._cond:
            self._stop = True
            left, self._queue = list(self._queue), deque()
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)
        return left

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._stop)
                if self._stop:
                    return
                item = self._queue.popleft()
                self._busy = True
                self._cond.notify_all()            # a blocked submit may go on
            try:
                self._handler(item)
            except Exception:  # noqa: BLE001 - the handler reports its own errors; the thread must live on
                pass
            finally:
                with self._cond:
                    self._busy = False
                    self.processed += 1
                    self._cond.notify_all()
