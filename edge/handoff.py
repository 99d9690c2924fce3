"""The hand-off between the capture thread and the pipeline thread.

For a live camera it holds one frame: a new frame replaces one the pipeline has not
taken yet (counted as dropped), so the pipeline always works on the newest frame and
latency never piles up. For a recording every frame is processed in order: the capture
thread waits instead of replacing.
"""

from __future__ import annotations

import threading

from edge.types import Frame


class FrameHandoff:
    def __init__(self, drop_stale: bool) -> None:
        self.drop_stale = drop_stale
        self.dropped = 0
        self._frame: Frame | None = None
        self._ended = False
        self._cond = threading.Condition()

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                if self.drop_stale:
                    self.dropped += 1
                else:
                    self._cond.wait_for(lambda: self._frame is None or self._ended)
            self._frame = frame
            self._cond.notify_all()

    def end(self) -> None:
        """No more frames will come (the file ended, or we are stopping)."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def take(self, timeout: float) -> Frame | None:
        """The newest frame, or None after ``timeout`` seconds (or at the end)."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._ended, timeout)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    @property
    def ended(self) -> bool:
        with self._cond:
            return self._ended and self._frame is None
