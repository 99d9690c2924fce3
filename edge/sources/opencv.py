"""Frames from OpenCV's VideoCapture: a V4L2 device, a video file, an rtsp/http stream.

A live source (a device number, a /dev/ path or a URL) that fails is reopened with backoff,
logged once when lost and once when back, never per frame; one that is not there at start
(an IP camera that boots slower than the Pi) is retried the same way when the daemon asks
for it. Logs and errors show the source with its password redacted. A file ends the run when it ends; its
frames are stamped with the recording's own clock (the time it was opened plus the frame's
position at the file's frame rate), so a clip read faster or slower than real time is
tracked and scheduled (``edge.schedule``) as it would be live.

The frame-age watchdog: a live source reads through a :class:`~edge.sources.reader.TimedReader`,
so a read that blocks (a V4L2 driver that hangs: OpenCV has no read timeout for those; a
stream's FFmpeg timeout is ``STREAM_TIMEOUT_MS``) is given up once no new frame came for
``frame_timeout_s``; a local camera that keeps returning the very same frame for that long
(a stuck driver buffer) counts as lost too. Either way ``ok`` turns false (the status's
``camera_ok``) and the camera is reopened with backoff; :meth:`OpenCVSource.close` never
waits for a read.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from edge.errors import EdgeError
from edge.sources import is_live, redact
from edge.sources.reader import TimedReader
from edge.types import Frame

logger = logging.getLogger(__name__)

#: the frame rate assumed for a video file that does not give one
DEFAULT_FILE_FPS = 25.0
#: a stream (a URL) that sends nothing for this long counts as lost and is reopened: a
#: stalled read or connect returns instead of blocking (FFmpeg's own default is 30 s)
STREAM_TIMEOUT_MS = 5000
#: a live camera that gives no new frame for this long (a read that does not return, or
#: a local camera's same frame again and again) counts as lost and is reopened
FRAME_TIMEOUT_S = 10.0
#: while this many given-up reads have not returned, no new capture is opened (a V4L2
#: device stays busy with them anyway): threads stuck in a driver do not pile up
MAX_HUNG_READS = 2
#: a local camera's frames are compared on this grid of pixels (a repeated frame is
#: identical on it; a live sensor's noise never is)
REPEAT_STEP = 16

Answer = tuple[bool, np.ndarray | None]


class SourceError(EdgeError):
    """The camera or stream cannot be opened."""


class OpenCVSource:
    def __init__(
        self,
        source: int | str,
        camera: str = "camera",
        max_backoff_s: float = 30.0,
        retry_at_start: bool = False,
        frame_timeout_s: float = FRAME_TIMEOUT_S,
    ) -> None:
        self.source, self.camera = source, camera
        self.shown = redact(source)  # never the password
        self.live = is_live(source)
        self.max_backoff_s, self.frame_timeout_s = max_backoff_s, frame_timeout_s
        self._url = isinstance(source, str) and "://" in source
        if not self.live and not Path(str(source)).is_file():
            raise SourceError(
                f"no such video file {self.shown!r} (check [camera] source: a device number, "
                "a /dev/ path, a video file, a folder of images or an rtsp/http URL)"
            )
        self._closed = threading.Event()
        self._lock = threading.Lock()  # a file: held by a read; live: by an open or a drop
        self._reader: TimedReader[Answer] | None = None
        self._hung: list[TimedReader[Answer]] = []  # given up, their read not returned yet
        self._fresh_at = time.monotonic()  # when the last new frame came (or the open)
        self._sample: np.ndarray | None = None  # the last frame, on the REPEAT_STEP grid
        self._repeating = False  # the last frame was the same as the one before
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
        else:
            self._start_reading(self._cap)
        self._index = 0
        self._opened = time.time()
        fps = self._cap.get(cv2.CAP_PROP_FPS) if self._cap is not None and not self.live else 0.0
        self._period = 1.0 / fps if fps and 0 < fps <= 1000 else 1.0 / DEFAULT_FILE_FPS

    def _open(self) -> cv2.VideoCapture | None:
        if self._url:
            timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                        cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS]  # fmt: skip
            cap = cv2.VideoCapture(self.source, cv2.CAP_FFMPEG, timeouts)
        else:
            cap = cv2.VideoCapture(self.source)
        if cap.isOpened():
            return cap
        cap.release()
        return None

    def _start_reading(self, cap: cv2.VideoCapture) -> None:
        """A live capture is read on a thread of its own (a file is read here)."""
        self._fresh_at, self._sample, self._repeating = time.monotonic(), None, False
        if self.live:
            self._reader = TimedReader(cap.read, cap.release, name=f"{self.camera}-read")

    def read(self) -> Frame | None:
        """The next frame (RGB). For a file: None at its end. For a live source: waits,
        reopening with backoff, until a frame comes or the source is closed."""
        backoff = 1.0
        while not self._closed.is_set():
            bgr, problem = self._grab() if self.live else self._grab_file()
            if self._closed.is_set():
                return None
            if bgr is not None:
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
                    "camera %r %s: reconnecting (backoff up to %.0f s)",
                    self.shown,
                    problem,
                    self.max_backoff_s,
                )
                self.ok = False
            self._drop()
            if self._closed.wait(backoff):
                return None
            backoff = min(backoff * 2, self.max_backoff_s)
            self._reopen()
        return None

    def _grab_file(self) -> tuple[np.ndarray | None, str]:
        with self._lock:
            if self._closed.is_set() or self._cap is None:
                return None, "is closed"
            ok, bgr = self._cap.read()
            if self._closed.is_set():  # closed during the read: release it here
                self._cap.release()
                self._cap = None
                return None, "is closed"
        return (bgr if ok else None), "gives no frames"

    def _grab(self) -> tuple[np.ndarray | None, str]:
        """A live source's next frame, or None and what is wrong: no frame within what is
        left of ``frame_timeout_s`` since the last new one, or only the same one again."""
        reader = self._reader
        if reader is None:
            return None, "gives no frames"
        stale = f"gave no new frame for {self.frame_timeout_s:g} s"
        if self._repeating:
            stale += " (the same frame again and again)"
        left = self._fresh_at + self.frame_timeout_s - time.monotonic()
        try:
            ok, bgr = reader.read(max(0.0, left))
        except TimeoutError:
            return None, stale
        if not ok or bgr is None:
            return None, "gives no frames"
        self._repeating = self._repeated(bgr)
        if not self._repeating:
            self._fresh_at = time.monotonic()
        elif time.monotonic() - self._fresh_at > self.frame_timeout_s:
            return None, stale
        return bgr, ""

    def _repeated(self, bgr: np.ndarray) -> bool:
        """A local camera's frame identical to the one before it (a stream's may be: an
        encoder repeats a still scene; a flat frame, a covered lens, is not judged)."""
        if self._url:
            return False
        sample = np.array(bgr[::REPEAT_STEP, ::REPEAT_STEP])
        last, self._sample = self._sample, sample
        return (
            last is not None
            and last.shape == sample.shape
            and bool(np.array_equal(last, sample))
            and sample.min() != sample.max()
        )

    def _drop(self) -> None:
        """Stop using the capture; a live one is released by its reader's thread, at once
        or when a read that hangs returns."""
        with self._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        if self._reader is not None:
            self._reader.abandon()
            self._hung.append(self._reader)
            self._reader = None
        elif self._cap is not None:
            self._cap.release()
        self._cap = None

    def _reopen(self) -> None:
        with self._lock:
            self._hung = [r for r in self._hung if r.busy]
            if self._closed.is_set() or len(self._hung) >= MAX_HUNG_READS:
                return  # reads that hang still hold the device: after the next backoff
            cap = self._open()
            if cap is None:
                return
            if self._closed.is_set():  # closed while opening
                cap.release()
                return
            self._cap = cap
            self._start_reading(cap)

    def close(self) -> None:
        """Stop reading (safe from another thread). Never waits for a read in progress
        (a stalled camera must not hold up a shutdown), nor for an open: the thread of
        that read, or of that open, releases the capture when it returns."""
        self._closed.set()
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._release_locked()
        finally:
            self._lock.release()
