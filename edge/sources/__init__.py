"""Frame sources, chosen from ``[camera] source``: a V4L2 device number, a video file or
stream URL (OpenCV), a folder of images, or ``picamera`` (the Raspberry Pi camera)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from edge.ports import FrameSource


def is_live(source: int | str) -> bool:
    """A camera or a stream (reconnect, drop stale frames), not a recording (a file or a
    folder on disk: every frame in order, the run ends with it). A path that does not
    exist is a recording that is missing, not a camera: only device numbers, ``/dev/``
    paths, ``picamera`` and URLs are live."""
    if isinstance(source, int) or source == "picamera":
        return True
    return "://" in source or source.startswith("/dev/")


def redact(source: int | str) -> str:
    """The source as logs and messages may show it: a URL's password replaced by ``***``
    (``rtsp://admin:secret@cam/stream`` -> ``rtsp://admin:***@cam/stream``)."""
    text = str(source)
    if "://" not in text:
        return text
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:  # a malformed URL: show nothing after the scheme's user part
        return text.split("://", 1)[0] + "://***"
    if not password:
        return text
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def open_source(
    source: int | str, camera: str = "camera", retry_at_start: bool = False
) -> FrameSource:
    """The source; ``retry_at_start``: a live camera that cannot be opened yet is retried
    with backoff by ``read`` (the daemon) instead of being an error (enroll --camera)."""
    if source == "picamera":
        from edge.sources.picamera import PiCameraSource

        return PiCameraSource(camera, retry_at_start=retry_at_start)
    if isinstance(source, str) and Path(source).is_dir():
        from edge.sources.files import FolderSource

        return FolderSource(Path(source), camera)
    from edge.sources.opencv import OpenCVSource

    return OpenCVSource(source, camera, retry_at_start=retry_at_start)
