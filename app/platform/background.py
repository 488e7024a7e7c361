"""Background loops of the API process (sequencers, webhook delivery, deadline jobs, the LISTEN thread):
each a daemon thread started and stopped by the app's lifespan."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)


class BackgroundLoop:
    """Runs `run_pass` until stopped, waiting between passes as long as each pass asks; `wake()` cuts a
    wait short, and `stop()` lets the running pass finish (its transaction commits or rolls back whole).

    A pass that raises is logged and retried after `retry_seconds`: a lost connection or a restarting
    database delays the work, and nothing is lost, since every pass picks up whatever is still due.
    """

    name: str
    retry_seconds: float = 5.0
    stop_timeout: float = 10.0
    # Seconds before the first pass (0: at start).
    first_wait: float = 0.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def run_pass(self) -> float:
        """One pass; the seconds to wait before the next (0: at once)."""
        raise NotImplementedError

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.stop_timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """The loop, on the calling thread (`start` runs it on a thread of its own)."""
        if self.first_wait and self._stop.wait(self.first_wait):
            return
        while not self._stop.is_set():
            self._wake.clear()
            try:
                wait = self.run_pass()
            except Exception:
                logger.exception("%s: a pass failed; retrying in %s s", self.name, self.retry_seconds)
                self._stop.wait(self.retry_seconds)
                continue
            if wait > 0:
                self._wake.wait(wait)
