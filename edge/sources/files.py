"""Frames from a folder of images, in name order (a recording, or a test), stamped as a
recording at ``FOLDER_FPS`` frames a second from the time the folder was opened."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from edge.images import ImageError, read_image
from edge.types import Frame

logger = logging.getLogger(__name__)
SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
FOLDER_FPS = 10.0


class FolderSource:
    def __init__(self, folder: Path, camera: str = "camera") -> None:
        self.camera = camera
        self._files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
        self._next = 0
        self._opened = time.time()

    def read(self) -> Frame | None:
        while self._next < len(self._files):
            path = self._files[self._next]
            self._next += 1
            try:
                stamp = self._opened + (self._next - 1) / FOLDER_FPS
                return Frame(read_image(path), self._next - 1, stamp, self.camera)
            except ImageError as exc:
                logger.warning("skipping unreadable frame: %s", exc)
        return None

    def close(self) -> None:
        self._next = len(self._files)
