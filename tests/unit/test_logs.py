"""Logging set-up (edge/logs.py): OpenCV's own log is quietened through whichever call this
OpenCV has (4.11, which the tflite-runtime extra's numpy<2 brings, lacks cv2.utils.logging)."""

from __future__ import annotations

import sys
import types

import pytest

from edge.logs import quiet_libraries


def test_opencv_without_utils_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    old_cv2 = types.SimpleNamespace(setLogLevel=calls.append, utils=types.SimpleNamespace())
    monkeypatch.setitem(sys.modules, "cv2", old_cv2)
    quiet_libraries(True)
    quiet_libraries(False)
    assert calls == [2, 4]


def test_opencv_with_utils_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    logging_ns = types.SimpleNamespace(setLogLevel=calls.append)
    new_cv2 = types.SimpleNamespace(utils=types.SimpleNamespace(logging=logging_ns))
    monkeypatch.setitem(sys.modules, "cv2", new_cv2)
    quiet_libraries(True)
    assert calls == [2]
    monkeypatch.setitem(sys.modules, "cv2", types.SimpleNamespace())  # neither: no error
    quiet_libraries(True)
