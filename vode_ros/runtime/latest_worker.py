"""A one-slot mailbox with a worker thread: newest frame wins.

Subscription callbacks hand frames over and return at once; the worker runs inference on
the newest frame only, so a slow model drops (and counts) frames instead of queueing them.
"""
from __future__ import annotations

import threading
from typing import Any, Callable


class LatestFrameWorker:
    def __init__(self, handler: Callable[[Any], None], name: str = "vode-worker"):
        self._handler = handler
        self._cond = threading.Condition()
        self._item: Any = None
        self._has_item = False
        self._busy = False
        self._stop = False
        self.dropped = 0
        self.processed = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> None:
        with self._cond:
            if self._has_item:
                self.dropped += 1          # the waiting frame is replaced by a newer one
            self._item, self._has_item = item, True
            self._cond.notify()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once nothing is queued or running (for tests and clean shutdown)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._has_item and not self._busy, timeout)

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=5.0)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._has_item or self._stop)
                if self._stop:
                    return
                item, self._item, self._has_item = self._item, None, False
                self._busy = True
            try:
                self._handler(item)
            finally:
                with self._cond:
                    self._busy = False
                    self.processed += 1
                    self._cond.notify_all()
