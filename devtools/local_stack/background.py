"""`BackgroundPolling`: the thread both local pollers (SQS, DynamoDB stream) run their `poll_once`
in, as Lambda's event source mappings poll: again at once while there is work, after `idle_wait`
seconds when there was none, after a second when a poll failed (logged, never fatal)."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("devtools.local_stack")


class BackgroundPolling:
    idle_wait = 0.05  # seconds between polls that found nothing
    thread_name = "poller"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> int:
        raise NotImplementedError

    def describe(self) -> str:
        """What is polled, for the log and errors."""
        raise NotImplementedError

    def start(self) -> None:
        """Poll in a background thread until stop()."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=self.thread_name)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.poll_once() == 0:
                    self._stop.wait(self.idle_wait)
            except Exception:
                log.exception("polling %s failed", self.describe())
                self._stop.wait(1.0)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"the poller of {self.describe()} did not stop within {timeout} s")
            self._thread = None
