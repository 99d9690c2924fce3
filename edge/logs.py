"""Logging set-up: journald-friendly (no timestamps when ``JOURNAL_STREAM`` is set).

The daemon logs at ``[logging] level`` (INFO by default); the other CLI verbs print their
result and only warnings and errors (``-v``: INFO, ``-vv``: DEBUG, or ``--log-level``).
Below DEBUG, OpenCV's own ``[ WARN ]`` lines (before an error edge-face explains itself)
are kept off stderr; in the CLI verbs, LiteRT's delegate notice too (``edge.tflite``).
"""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(level: str = "INFO") -> None:
    if os.environ.get("JOURNAL_STREAM"):
        fmt = "%(levelname)s %(name)s: %(message)s"  # journald adds the time
    else:
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level.upper(), format=fmt, stream=sys.stderr, force=True)
    quiet_libraries(level.upper() != "DEBUG")


def quiet_libraries(quiet: bool) -> None:
    """OpenCV's log level: errors only when ``quiet`` (read at import, set after too)."""
    os.environ["OPENCV_LOG_LEVEL"] = "ERROR" if quiet else "INFO"
    cv2 = sys.modules.get("cv2")
    if cv2 is None:
        return
    logging_module = getattr(getattr(cv2, "utils", None), "logging", None)
    set_level = getattr(logging_module, "setLogLevel", None) or getattr(cv2, "setLogLevel", None)
    if set_level is not None:  # OpenCV 4.11 (numpy<2, tflite-runtime) has only cv2.setLogLevel
        set_level(2 if quiet else 4)  # 2 = ERROR, 4 = INFO
