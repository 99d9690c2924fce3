"""Frame sources, chosen from ``[camera] source``: a V4L2 device number, a video file or
stream URL (OpenCV), a folder of images, or ``picamera`` (the Raspberry Pi camera)."""

from __future__ import annotations

from pathlib import Path

from edge.ports import FrameSource


def is_live(source: int | str) -> bool:
    """A camera or a stream (reconnect, drop stale frames), not a recording (a file or a
    folder on disk: every frame in order, the run ends with it)."""
    return isinstance(source, int) or source == "picamera" or not Path(source).exists()


def open_source(source: int | str, camera: str = "camera") -> FrameSource:
    if source == "picamera":
        from edge.sources.picamera import PiCameraSource

        return PiCameraSource(camera)
    if isinstance(source, str) and Path(source).is_dir():
        from edge.sources.files import FolderSource

        return FolderSource(Path(source), camera)
    from edge.sources.opencv import OpenCVSource

    return OpenCVSource(source, camera)
