"""Frames from OpenCV's VideoCapture: a V4L2 device, a video file, an rtsp/http stream."""

from __future__ import annotations

import logging
import time

import cv2

from edge.errors import EdgeError
from edge.types import Frame

logger = logging.getLogger(__name__)


class SourceError(EdgeError):
    """The camera or stream cannot be opened."""


class OpenCVSource:
    def __init__(self, source: int | str, camera: str = "camera") -> None:
        self.source, self.camera = source, camera
        self._cap = cv2.VideoCapture(source)
        if not self._cap.isOpened():
            raise SourceError(
                f"cannot open camera source {source!r} (check [camera] source and the device)"
            )
        self._index = 0

    def read(self) -> Frame | None:
        """The next frame (RGB), or None when the source gave none (end or failure)."""
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        self._index += 1
        return Frame(
            cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self._index - 1, time.time(), self.camera
        )

    def close(self) -> None:
        self._cap.release()
