"""The Raspberry Pi camera through picamera2 (``[camera] source = "picamera"``).

picamera2 comes from Raspberry Pi OS's apt (``sudo apt install python3-picamera2``), not
from PyPI: the venv must see the system's packages (``python3 -m venv
--system-site-packages``; systemd/install.sh does this). It is imported only here, only
when chosen.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from edge.sources.opencv import SourceError
from edge.types import Frame

logger = logging.getLogger(__name__)
INSTALL = (
    "the Raspberry Pi camera needs picamera2: sudo apt install python3-picamera2, and a venv "
    "created with --system-site-packages (systemd/install.sh does both)"
)


class PiCameraSource:
    def __init__(self, camera: str = "camera", size: tuple[int, int] = (1280, 720)) -> None:
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
        except ImportError as exc:
            raise SourceError(INSTALL) from exc
        self.camera = camera
        self.ok = True
        try:
            self._cam: Any = Picamera2()
            # "RGB888" is stored B, G, R in memory (libcamera names formats little-endian)
            self._cam.configure(
                self._cam.create_video_configuration(main={"size": size, "format": "RGB888"})
            )
            self._cam.start()
        except Exception as exc:  # picamera2 raises many kinds; all mean "no camera"
            raise SourceError(f"cannot start the Raspberry Pi camera: {exc}") from exc
        self._index = 0

    def read(self) -> Frame | None:
        try:
            bgr = self._cam.capture_array("main")
        except Exception:
            if self.ok:
                logger.exception("the Raspberry Pi camera failed")
                self.ok = False
            return None
        self.ok = True
        self._index += 1
        rgb = np.ascontiguousarray(bgr[:, :, 2::-1])
        return Frame(rgb, self._index - 1, time.time(), self.camera)

    def close(self) -> None:
        try:
            self._cam.stop()
            self._cam.close()
        except Exception:
            logger.debug("closing the Pi camera", exc_info=True)
