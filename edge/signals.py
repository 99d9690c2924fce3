"""Signal handlers that cannot deadlock the daemon.

Python runs a signal handler in the main thread between two bytecodes of whatever it was
doing, possibly inside a ``with lock:`` of that code. A handler that takes the same lock
never returns: ``stop.set()`` on SIGTERM while the main thread is inside ``stop.wait()``
(the frame-rate throttle) or ``Event.clear()``, or a reload request while the pipeline
clears its own, hangs the daemon for good (reproduced in tests/unit/test_signals.py). So
the handler only writes the signal's number to a pipe (a system call, no lock), and a
thread of its own reads it and runs the action (``stop.set``, the gallery reload) there,
where taking a lock is safe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from types import FrameType

logger = logging.getLogger(__name__)


class SignalRelay:
    """Install handlers for ``actions`` (signal number -> what to do) that hand each
    signal to the relay thread. Main thread only (as ``signal.signal`` requires)."""

    def __init__(self, actions: Mapping[int, Callable[[], None]]) -> None:
        self.actions = dict(actions)
        self._previous = {signum: signal.getsignal(signum) for signum in self.actions}
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._thread = threading.Thread(target=self._relay, name="signals", daemon=True)
        self._thread.start()
        for signum in self.actions:
            signal.signal(signum, self._handler)

    def close(self) -> None:
        """The handlers there were before, and the relay thread ends (signals already
        relayed are acted on first)."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        os.close(self._write)
        self._thread.join(timeout=2.0)
        os.close(self._read)

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # a full pipe: 64 KiB pending
            os.write(self._write, bytes([signum]))

    def _relay(self) -> None:
        while True:
            try:
                data = os.read(self._read, 256)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                try:
                    self.actions[signum]()
                except Exception:
                    logger.exception("handling signal %d failed", signum)
