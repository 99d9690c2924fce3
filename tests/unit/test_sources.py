"""Frame sources: a camera that vanishes and comes back, an unreadable frame in a folder."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest

from edge.sources import is_live, open_source
from edge.sources import opencv as opencv_source
from edge.sources.files import FolderSource


class FlakyCapture:
    """A camera that gives 2 frames, then nothing for 3 reads (unplugged), then frames."""

    script: ClassVar[list[bool]] = []

    def __init__(self, source: object, *options: object) -> None:
        self.opened = True

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self.opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        ok = FlakyCapture.script.pop(0) if FlakyCapture.script else True
        return (ok, np.zeros((4, 4, 3), np.uint8) if ok else None)

    def release(self) -> None:
        self.opened = False


def test_a_camera_that_vanishes_is_reopened_and_logged_once(monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    FlakyCapture.script = [True, True, False, False, False, True]
    monkeypatch.setattr(opencv_source.cv2, "VideoCapture", FlakyCapture)
    source = opencv_source.OpenCVSource(0, max_backoff_s=0.01)
    monkeypatch.setattr(source._closed, "wait", lambda timeout: False)  # no real backoff sleep
    with caplog.at_level(logging.WARNING):
        frames = [source.read() for _ in range(4)]
    assert all(f is not None for f in frames) and [f.index for f in frames if f] == [0, 1, 2, 3]
    assert caplog.text.count("gives no frames") == 1 and caplog.text.count("is back") == 1
    source.close()


def test_closing_a_waiting_live_source_returns_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    FlakyCapture.script = [False] * 1000
    monkeypatch.setattr(opencv_source.cv2, "VideoCapture", FlakyCapture)
    source = opencv_source.OpenCVSource("rtsp://camera.invalid/stream", max_backoff_s=30)
    threading.Timer(0.2, source.close).start()
    assert source.read() is None  # woken by close(), not after a 30 s backoff


def test_folder_source_skips_an_unreadable_frame(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cv2.imwrite(str(tmp_path / "001.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "002.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    cv2.imwrite(str(tmp_path / "003.png"), np.full((8, 8, 3), 255, np.uint8))
    source = open_source(str(tmp_path))
    assert isinstance(source, FolderSource) and not is_live(str(tmp_path))
    frames = [source.read(), source.read(), source.read()]
    assert [f.index for f in frames if f] == [0, 2] and frames[2] is None
    assert "skipping unreadable frame" in caplog.text


def test_live_or_recording() -> None:
    assert is_live(0) and is_live("rtsp://cam/1") and not is_live(__file__)


def test_picamera_through_a_fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    class FakePicamera2:
        def create_video_configuration(self, main: dict[str, object]) -> dict[str, object]:
            return {"main": main}

        def configure(self, config: dict[str, object]) -> None:
            self.config = config

        def start(self) -> None:
            self.started = True

        def capture_array(self, stream: str) -> np.ndarray:
            bgr = np.zeros((2, 2, 3), np.uint8)
            bgr[..., 0] = 255  # blue in memory order B, G, R
            return bgr

        def stop(self) -> None: ...

        def close(self) -> None: ...

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FakePicamera2))
    source = open_source("picamera", "door")
    frame = source.read()
    assert (
        frame is not None and frame.camera == "door" and frame.image[0, 0].tolist() == [0, 0, 255]
    )
    assert is_live("picamera")
    source.close()


def test_picamera_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(opencv_source.SourceError, match="apt install python3-picamera2"):
        open_source("picamera")


class AbsentCapture(FlakyCapture):
    """A camera that is not there until ``AbsentCapture.up`` (an IP camera still booting)."""

    up = False

    def __init__(self, source: object, *options: object) -> None:
        self.opened = AbsentCapture.up


def test_a_camera_not_there_at_start_is_retried_by_the_daemon(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    AbsentCapture.up = False
    FlakyCapture.script = []
    monkeypatch.setattr(opencv_source.cv2, "VideoCapture", AbsentCapture)
    url = "http://admin:secret@camera.local/video"
    with pytest.raises(opencv_source.SourceError, match="cannot open"):  # enroll --camera
        open_source(url)
    with caplog.at_level(logging.WARNING):
        source = open_source(url, retry_at_start=True)  # the daemon
        assert source.ok is False  # status: camera_ok false while it retries
        tries = []

        def wait(timeout: float) -> bool:
            tries.append(timeout)
            AbsentCapture.up = len(tries) >= 3  # up at the third try
            return False

        monkeypatch.setattr(source._closed, "wait", wait)
        frame = source.read()
    assert frame is not None and source.ok and tries == [1.0, 2.0, 4.0]
    assert caplog.text.count("not available yet") == 1 and caplog.text.count("is back") == 1
    assert "secret" not in caplog.text and "admin:***@camera.local" in caplog.text
    source.close()


def test_a_missing_video_file_is_an_error_not_a_camera(tmp_path: Path) -> None:
    missing = str(tmp_path / "door.mp4")
    assert not is_live(missing) and is_live("/dev/video9") and is_live("http://cam/x")
    with pytest.raises(opencv_source.SourceError, match="no such video file"):
        open_source(missing, retry_at_start=True)


def test_passwords_never_leave_the_source() -> None:
    from edge.sources import redact

    assert redact("rtsp://admin:s3cr%40t@10.0.0.5:554/live") == "rtsp://admin:***@10.0.0.5:554/live"
    assert redact("http://cam.local/video") == "http://cam.local/video"
    assert redact("http://user@cam.local/v") == "http://user@cam.local/v"  # no password
    assert redact(0) == "0" and redact("/dev/video0") == "/dev/video0"
    assert "pw" not in redact("http://u:pw@[::1")  # malformed: nothing after the scheme


def test_close_never_waits_for_a_stalled_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM while a stream stalls: close() returns at once; the stalled read releases
    the capture when it comes back, and reads no more."""
    reading, release = threading.Event(), threading.Event()

    class StalledCapture(FlakyCapture):
        def read(self) -> tuple[bool, np.ndarray | None]:
            reading.set()
            release.wait(5)
            return True, np.zeros((4, 4, 3), np.uint8)

    monkeypatch.setattr(opencv_source.cv2, "VideoCapture", StalledCapture)
    source = opencv_source.OpenCVSource("rtsp://camera.local/stream")
    results: list[object] = []
    reader = threading.Thread(target=lambda: results.append(source.read()))
    reader.start()
    assert reading.wait(2)
    began = time.monotonic()
    source.close()
    assert time.monotonic() - began < 0.5
    release.set()
    reader.join(2)
    assert results == [None] and source._cap is None


def test_streams_are_opened_with_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[object, ...]] = []

    class Recording(FlakyCapture):
        def __init__(self, source: object, *options: object) -> None:
            seen.append((source, *options))
            self.opened = True

    monkeypatch.setattr(opencv_source.cv2, "VideoCapture", Recording)
    opencv_source.OpenCVSource("rtsp://camera.local/stream").close()
    opencv_source.OpenCVSource(0).close()
    url, device = seen
    assert url[1] == cv2.CAP_FFMPEG and cv2.CAP_PROP_READ_TIMEOUT_MSEC in url[2]  # type: ignore[operator]
    assert device == (0,)


class HangingCapture(FlakyCapture):
    """A local camera (V4L2) whose driver hangs: the first capture opened gives
    ``HangingCapture.good`` frames, then a read that never returns (until the test ends);
    the captures opened after it give frames. Every frame differs (a live sensor's noise),
    unless ``HangingCapture.repeat``: then the first capture gives one frame again and
    again instead of hanging (a stuck driver buffer)."""

    opened_count = 0
    good = 2
    repeat = False
    hang = threading.Event()  # set at the end of a test: the hung read returns

    def __init__(self, source: object, *options: object) -> None:
        self.opened = True
        self.nth = HangingCapture.opened_count
        HangingCapture.opened_count += 1
        self.reads = 0
        self.still = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.reads += 1
        time.sleep(0.005)
        if self.nth == 0 and HangingCapture.repeat:
            return True, self.still
        if self.nth == 0 and self.reads > HangingCapture.good:
            HangingCapture.hang.wait()
        return True, np.random.default_rng().integers(0, 255, (64, 64, 3), np.uint8)


@pytest.fixture
def hanging_camera(monkeypatch: pytest.MonkeyPatch) -> object:
    HangingCapture.opened_count, HangingCapture.repeat = 0, False
    HangingCapture.hang = threading.Event()
    monkeypatch.setattr(opencv_source.cv2, "VideoCapture", HangingCapture)
    yield HangingCapture
    HangingCapture.hang.set()


def read_within(source: opencv_source.OpenCVSource, seconds: float) -> object:
    """source.read() on a thread of its own; fails the test if it has not returned in time."""
    results: list[object] = []
    reader = threading.Thread(target=lambda: results.append(source.read()), daemon=True)
    reader.start()
    reader.join(seconds)
    assert results, f"read() did not return within {seconds} s"
    return results[0]


def test_a_local_camera_whose_read_hangs_is_reported_and_reopened(
    hanging_camera: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The frame-age watchdog: OpenCV has no read timeout for a V4L2 device; a read that
    never returns makes the camera not ok (logged once) and reopened, within the timeout."""
    source = opencv_source.OpenCVSource("/dev/video0", frame_timeout_s=0.3)
    oks: list[bool] = []

    def backoff(timeout: float) -> bool:  # no real sleep; what the status sees meanwhile
        oks.append(source.ok)
        return False

    monkeypatch.setattr(source._closed, "wait", backoff)
    with caplog.at_level(logging.WARNING):
        first = [read_within(source, 2), read_within(source, 2)]
        began = time.monotonic()
        third = read_within(source, 3)  # the hung read is given up, the camera reopened
        took = time.monotonic() - began
    assert oks == [False]  # camera_ok false while it reconnects
    assert all(f is not None for f in [*first, third]) and took < 2
    assert HangingCapture.opened_count == 2 and source.ok
    assert caplog.text.count("gave no new frame for 0.3 s: reconnecting") == 1
    assert caplog.text.count("is back") == 1
    source.close()


def test_a_local_camera_repeating_one_frame_is_reported_and_reopened(
    hanging_camera: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    HangingCapture.repeat = True
    source = opencv_source.OpenCVSource(0, frame_timeout_s=0.3)
    monkeypatch.setattr(source._closed, "wait", lambda timeout: False)
    with caplog.at_level(logging.WARNING):
        began = time.monotonic()
        while HangingCapture.opened_count < 2 and time.monotonic() - began < 3:
            assert read_within(source, 3) is not None
    assert HangingCapture.opened_count == 2, "the camera was not reopened"
    assert caplog.text.count("(the same frame again and again): reconnecting") == 1
    assert caplog.text.count("is back") == 1 and source.ok
    source.close()


def test_a_stream_repeating_one_frame_is_not_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    """An encoder repeats a still scene exactly: only a local camera's repeats count."""
    HangingCapture.opened_count, HangingCapture.repeat = 0, True
    monkeypatch.setattr(opencv_source.cv2, "VideoCapture", HangingCapture)
    source = opencv_source.OpenCVSource("rtsp://camera.local/stream", frame_timeout_s=0.2)
    began = time.monotonic()
    while time.monotonic() - began < 0.5:
        assert read_within(source, 2) is not None
    assert HangingCapture.opened_count == 1 and source.ok
    source.close()


def test_closing_a_local_camera_never_waits_for_a_hung_read(hanging_camera: object) -> None:
    """SIGTERM while a V4L2 read hangs (and before the watchdog gives it up): close()
    returns at once and so does the read; the shutdown is not held up."""
    HangingCapture.good = 0
    source = opencv_source.OpenCVSource(0)  # the default timeout: 10 s
    threading.Timer(0.3, source.close).start()
    began = time.monotonic()
    assert read_within(source, 3) is None
    assert time.monotonic() - began < 1.5
    HangingCapture.good = 2


class FlakyPicamera2:
    """A fake picamera2 camera: ``absent`` instances fail to start, and the first capture
    of a ``hang`` instance blocks until ``release`` is set (a libcamera read that hangs)."""

    made: ClassVar[list[FlakyPicamera2]] = []
    absent = 0  # how many more instances fail to start
    hang = False  # the next instance's first capture hangs
    release = threading.Event()

    def __init__(self) -> None:
        if FlakyPicamera2.absent:
            FlakyPicamera2.absent -= 1
            raise RuntimeError("Camera __init__ sequence did not complete")
        self.hangs, FlakyPicamera2.hang = FlakyPicamera2.hang, False
        self.stopped = False
        FlakyPicamera2.made.append(self)

    def create_video_configuration(self, main: dict[str, object]) -> dict[str, object]:
        return {"main": main}

    def configure(self, config: dict[str, object]) -> None: ...

    def start(self) -> None: ...

    def capture_array(self, stream: str) -> np.ndarray:
        if self.hangs:
            FlakyPicamera2.release.wait()
        return np.full((2, 2, 3), len(FlakyPicamera2.made), np.uint8)

    def stop(self) -> None:
        self.stopped = True

    def close(self) -> None: ...


@pytest.fixture
def flaky_picamera(monkeypatch: pytest.MonkeyPatch) -> type[FlakyPicamera2]:
    import sys
    import types

    FlakyPicamera2.made, FlakyPicamera2.absent, FlakyPicamera2.hang = [], 0, False
    FlakyPicamera2.release = threading.Event()
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=FlakyPicamera2))
    yield FlakyPicamera2
    FlakyPicamera2.release.set()


def test_a_pi_camera_that_hangs_is_given_up_and_started_again(
    flaky_picamera: type[FlakyPicamera2], caplog: pytest.LogCaptureFixture
) -> None:
    from edge.sources.picamera import PiCameraSource

    flaky_picamera.hang = True
    source = PiCameraSource("door", frame_timeout_s=0.2, max_backoff_s=1.0)
    seen: list[bool] = []
    watch = threading.Thread(target=lambda: (time.sleep(0.5), seen.append(source.ok)))
    watch.start()
    frame = source.read()  # the first camera hangs: a second one gives the frame
    watch.join()
    assert seen == [False]  # camera_ok was false meanwhile
    assert frame is not None and source.ok and len(flaky_picamera.made) == 2
    assert "gave no frame for 0.2 s: starting it again" in caplog.text
    assert "camera is back" in caplog.text
    assert not flaky_picamera.made[0].stopped  # its capture still hangs: left alone
    flaky_picamera.release.set()  # the hung capture returns: its camera is stopped
    deadline = time.monotonic() + 2
    while not flaky_picamera.made[0].stopped and time.monotonic() < deadline:
        time.sleep(0.01)
    assert flaky_picamera.made[0].stopped
    source.close()


def test_a_pi_camera_absent_at_start_is_retried_when_asked(
    flaky_picamera: type[FlakyPicamera2],
) -> None:
    flaky_picamera.absent = 1
    with pytest.raises(opencv_source.SourceError, match="cannot start the Raspberry Pi camera"):
        open_source("picamera", "door")
    flaky_picamera.absent = 1
    source = open_source("picamera", "door", retry_at_start=True)
    assert not source.ok
    assert source.read() is not None and source.ok  # after a 1 s backoff
    source.close()


def test_closing_never_waits_for_a_pi_camera_capture(
    flaky_picamera: type[FlakyPicamera2],
) -> None:
    from edge.sources.picamera import PiCameraSource

    flaky_picamera.hang = True
    source = PiCameraSource("door", frame_timeout_s=30.0)
    answers: list[object] = []
    reader = threading.Thread(target=lambda: answers.append(source.read()))
    reader.start()
    time.sleep(0.2)
    began = time.monotonic()
    source.close()
    reader.join(timeout=2.0)
    assert not reader.is_alive() and answers == [None]
    assert time.monotonic() - began < 1.0
