"""A camera read that can be given up: the read runs in a thread of its own.

OpenCV gives a V4L2 device (and picamera2 its camera) no read timeout: a driver that hangs
blocks ``read()`` for ever, and with it whoever called it. :class:`TimedReader` calls the
read on its own thread; :meth:`TimedReader.read` waits at most ``timeout`` seconds for the
answer. A reader that did not answer in time (or whose source is closed) is abandoned
(:meth:`TimedReader.abandon`): its thread releases the capture once the read returns, if it
ever does, and reads no more; the caller opens a new capture meanwhile. The thread is a
daemon thread, so a read that never returns never holds up the process's exit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


class TimedReader(Generic[T]):
    """``read`` and, at the end, ``release``, on one thread of their own (the only one
    that touches the capture); one read at a time, asked for by :meth:`read`."""

    def __init__(
        self, read: Callable[[], T], release: Callable[[], object], name: str = "camera-read"
    ) -> None:
        self._read, self._release = read, release
        self._want = threading.Event()  # a read is asked for (or the reader is abandoned)
        self._done = threading.Event()  # its answer is there (or the reader is abandoned)
        self._answer: tuple[T | None, Exception | None] = (None, None)
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def read(self, timeout: float) -> T:
        """The next answer of ``read`` (its exception raised here); TimeoutError when none
        came within ``timeout`` seconds or the reader was abandoned meanwhile."""
        if self._abandoned:
            raise TimeoutError("the reader was abandoned")
        self._done.clear()
        self._want.set()
        if not self._done.wait(timeout) or self._abandoned:
            raise TimeoutError(f"no answer within {timeout:.1f} s")
        value, error = self._answer
        if error is not None:
            raise error
        return value  # type: ignore[return-value]  # set with error None: a T

    def abandon(self) -> None:
        """Read no more; a read in progress is left to return on its own (never waited
        for), and the capture is released on the reader's thread when it does."""
        self._abandoned = True
        self._want.set()  # an idle thread: wakes up, releases, ends
        self._done.set()  # a caller waiting in read(): returns at once

    @property
    def busy(self) -> bool:
        """The thread still runs (after :meth:`abandon`: a read that has not returned)."""
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            while True:
                self._want.wait()
                self._want.clear()
                if self._abandoned:
                    return
                try:
                    self._answer = (self._read(), None)
                except Exception as exc:  # handed to the caller
                    self._answer = (None, exc)
                if self._abandoned:
                    return
                self._done.set()
        finally:
            try:
                self._release()
            except Exception:
                logger.debug("releasing an abandoned capture failed", exc_info=True)
