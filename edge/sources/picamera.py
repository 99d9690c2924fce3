"""The Raspberry Pi camera through picamera2 (``[camera] source = "picamera"``).

picamera2 comes from Raspberry Pi OS's apt (``sudo apt install python3-picamera2``), not
from PyPI: the venv must see the system's packages (``python3 -m venv
--system-site-packages``; systemd/install.sh does this). It is imported only here, only
when chosen.

Like :class:`~edge.sources.opencv.OpenCVSource`, a camera that fails is not the end of
the run: ``capture_array`` runs on a :class:`~edge.sources.reader.TimedReader`, so a
capture that raises, or gives no frame for ``frame_timeout_s`` (libcamera has no read
timeout), turns ``ok`` false (the status's ``camera_ok``), is logged once, and the camera
is started again with backoff; a camera not there at start is retried the same way when
the daemon asks for it. :meth:`PiCameraSource.close` never waits for a capture.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edge.sources.opencv import FRAME_TIMEOUT_S, SourceError
from edge.sources.reader import TimedReader
from edge.types import Frame

logger = logging.getLogger(__name__)
INSTALL = (
    "the Raspberry Pi camera needs picamera2: sudo apt install python3-picamera2, and a venv "
    "created with --system-site-packages (systemd/install.sh does both)"
)


def _stop(cam: Any) -> None:
    try:
        cam.stop()
        cam.close()
    except Exception:
        logger.debug("closing the Pi camera", exc_info=True)


class PiCameraSource:
    def __init__(
        self,
        camera: str = "camera",
        size: tuple[int, int] = (1280, 720),
        retry_at_start: bool = False,
        frame_timeout_s: float = FRAME_TIMEOUT_S,
        max_backoff_s: float = 30.0,
    ) -> None:
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError as exc:
            raise SourceError(INSTALL) from exc
        self._make: Callable[[], Any] = Picamera2
        self.camera, self.size = camera, size
        self.frame_timeout_s, self.max_backoff_s = frame_timeout_s, max_backoff_s
        self._closed = threading.Event()
        self._lock = threading.Lock()  # held by a start and a drop
        self._reader: TimedReader[np.ndarray] | None = None
        self._index = 0
        try:
            self._start()
        except Exception as exc:  # picamera2 raises many kinds; all mean "no camera"
            if not retry_at_start:
                raise SourceError(f"cannot start the Raspberry Pi camera: {exc}") from exc
            logger.error(
                "the Raspberry Pi camera is not available yet (%s): retrying (backoff up to"
                " %.0f s)",
                exc,
                max_backoff_s,
            )
        self.ok = self._reader is not None

    def _start(self) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            cam = self._make()
            try:
                # "RGB888" is stored B, G, R in memory (libcamera names formats little-endian)
                config = cam.create_video_configuration(
                    main={"size": self.size, "format": "RGB888"}
                )
                cam.configure(config)
                cam.start()
            except Exception:
                _stop(cam)
                raise
            if self._closed.is_set():  # closed while starting
                _stop(cam)
                return
            self._reader = TimedReader(
                lambda: cam.capture_array("main"), lambda: _stop(cam), f"{self.camera}-read"
            )

    def _grab(self) -> tuple[np.ndarray | None, str]:
        reader = self._reader
        if reader is None:
            return None, "is not started"
        try:
            return reader.read(self.frame_timeout_s), ""
        except TimeoutError:
            return None, f"gave no frame for {self.frame_timeout_s:g} s"
        except Exception as exc:
            return None, f"failed ({type(exc).__name__}: {exc})"

    def _drop(self) -> None:
        """Stop using the camera: its reader's thread stops and closes it, at once or when
        a capture that hangs returns."""
        with self._lock:
            if self._reader is not None:
                self._reader.abandon()
                self._reader = None

    def read(self) -> Frame | None:
        """The next frame (RGB); waits, starting the camera again with backoff, until one
        comes or the source is closed (None)."""
        backoff = 1.0
        while not self._closed.is_set():
            bgr, problem = self._grab()
            if self._closed.is_set():
                return None
            if bgr is not None:
                if not self.ok:
                    logger.warning("the Raspberry Pi camera is back")
                    self.ok = True
                self._index += 1
                rgb = np.ascontiguousarray(bgr[:, :, 2::-1])
                return Frame(rgb, self._index - 1, time.time(), self.camera)
            if self.ok:
                logger.error(
                    "the Raspberry Pi camera %s: starting it again (backoff up to %.0f s)",
                    problem,
                    self.max_backoff_s,
                )
                self.ok = False
            self._drop()
            if self._closed.wait(backoff):
                return None
            backoff = min(backoff * 2, self.max_backoff_s)
            try:
                self._start()
            except Exception as exc:
                logger.debug("the Raspberry Pi camera does not start yet: %s", exc)
        return None

    def close(self) -> None:
        """Stop reading (safe from another thread); never waits for a capture."""
        self._closed.set()
        if self._lock.acquire(blocking=False):
            try:
                if self._reader is not None:
                    self._reader.abandon()
                    self._reader = None
            finally:
                self._lock.release()
