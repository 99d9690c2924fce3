"""Frames from OpenCV's VideoCapture: a V4L2 device, a video file, an rtsp/http stream.

A live source (a device number, a /dev/ path or a URL) that fails is reopened with backoff,
logged once when lost and once when back, never per frame; one that is not there at start
(an IP camera that boots slower than the Pi) is retried the same way when the daemon asks
for it. Logs and errors show the source with its password redacted. A file ends the run when it ends; its
frames are stamped with the recording's own clock (the time it was opened plus the frame's
position at the file's frame rate), so a clip read faster or slower than real time is
tracked and scheduled (``edge.schedule``) as it would be live.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2

from edge.errors import EdgeError
from edge.sources import is_live, redact
from edge.types import Frame

logger = logging.getLogger(__name__)

#: the frame rate assumed for a video file that does not give one
DEFAULT_FILE_FPS = 25.0
#: a stream (a URL) that sends nothing for this long counts as lost and is reopened: a
#: stalled read or connect returns instead of blocking (FFmpeg's own default is 30 s)
STREAM_TIMEOUT_MS = 5000


class SourceError(EdgeError):
    """The camera or stream cannot be opened."""


class OpenCVSource:
    def __init__(
        self,
        source: int | str,
        camera: str = "camera",
        max_backoff_s: float = 30.0,
        retry_at_start: bool = False,
    ) -> None:
        self.source, self.camera = source, camera
        self.shown = redact(source)  # never the password
        self.live = is_live(source)
        self.max_backoff_s = max_backoff_s
        if not self.live and not Path(str(source)).is_file():
            raise SourceError(
                f"no such video file {self.shown!r} (check [camera] source: a device number, "
                "a /dev/ path, a video file, a folder of images or an rtsp/http URL)"
            )
        self._cap = self._open()
        self.ok = self._cap is not None
        if self._cap is None and not (self.live and retry_at_start):
            raise SourceError(
                f"cannot open camera source {self.shown!r} (check [camera] source and the device)"
            )
        if self._cap is None:
            logger.error(
                "camera %r is not available yet: retrying (backoff up to %.0f s)",
                self.shown,
                max_backoff_s,
            )
        self._index = 0
        self._opened = time.time()
        fps = self._cap.get(cv2.CAP_PROP_FPS) if self._cap is not None and not self.live else 0.0
        self._period = 1.0 / fps if fps and 0 < fps <= 1000 else 1.0 / DEFAULT_FILE_FPS
        self._closed = threading.Event()
        self._lock = threading.Lock()  # close() from another thread waits for a read in progress

    def _open(self) -> cv2.VideoCapture | None:
        if isinstance(self.source, str) and "://" in self.source:
            timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                        cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS]  # fmt: skip
            cap = cv2.VideoCapture(self.source, cv2.CAP_FFMPEG, timeouts)
        else:
            cap = cv2.VideoCapture(self.source)
        if cap.isOpened():
            return cap
        cap.release()
        return None

    def read(self) -> Frame | None:
        """The next frame (RGB). For a file: None at its end. For a live source: waits,
        reopening with backoff, until a frame comes or the source is closed."""
        backoff = 1.0
        while not self._closed.is_set():
            with self._lock:
                if self._closed.is_set():
                    return None
                ok, bgr = self._cap.read() if self._cap is not None else (False, None)
                if self._closed.is_set():  # closed during the read: release it here
                    if self._cap is not None:
                        self._cap.release()
                        self._cap = None
                    return None
            if ok and bgr is not None:
                if not self.ok:
                    logger.warning("camera %r is back", self.shown)
                    self.ok = True
                self._index += 1
                stamp = (
                    time.time() if self.live else self._opened + (self._index - 1) * self._period
                )
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                return Frame(rgb, self._index - 1, stamp, self.camera)
            if not self.live:
                return None
            if self.ok:
                logger.error(
                    "camera %r gives no frames: reconnecting (backoff up to %.0f s)",
                    self.shown,
                    self.max_backoff_s,
                )
                self.ok = False
            with self._lock:
                if self._cap is not None:
                    self._cap.release()
                    self._cap = None
            if self._closed.wait(backoff):
                return None
            backoff = min(backoff * 2, self.max_backoff_s)
            with self._lock:
                self._cap = None if self._closed.is_set() else self._open()
        return None

    def close(self) -> None:
        """Stop reading (safe from another thread). Never waits for a read in progress
        (a stalled stream must not hold up a shutdown): that read's thread releases the
        capture when it returns."""
        self._closed.set()
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._cap is not None:
                self._cap.release()
                self._cap = None
        finally:
            self._lock.release()
