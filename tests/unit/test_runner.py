"""The watchdog is fed by the processing loop: a hung pipeline stops the pings."""

from __future__ import annotations

import threading
import time

import numpy as np

from edge.runner import Runner
from edge.types import Frame


class Source:
    def __init__(self) -> None:
        self.i = 0

    def read(self) -> Frame | None:
        time.sleep(0.01)
        self.i += 1
        return Frame(np.zeros((2, 2, 3), np.uint8), self.i, time.time())

    def close(self) -> None: ...


class HangingPipeline:
    def __init__(self, hang_after: int, release: threading.Event) -> None:
        self.frames, self.hang_after, self.release = 0, hang_after, release

    def process(self, frame: Frame) -> None:
        self.frames += 1
        if self.frames == self.hang_after:
            self.release.wait()


def test_a_hung_pipeline_stops_the_watchdog_pings() -> None:
    stop, release = threading.Event(), threading.Event()
    pings: list[float] = []
    pipeline = HangingPipeline(hang_after=5, release=release)
    runner = Runner(
        Source(), pipeline, live=True, stop=stop, watchdog=lambda: pings.append(time.monotonic())
    )  # type: ignore[arg-type]
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    time.sleep(0.5)
    hung_at = len(pings)
    time.sleep(1.0)
    assert len(pings) == hung_at  # no ping while process() hangs
    release.set()
    time.sleep(0.3)
    assert len(pings) > hung_at  # pings again once it returns
    stop.set()
    thread.join(3)
    assert not thread.is_alive()


class CountingPipeline:
    def process(self, frame: Frame) -> None: ...


def test_the_status_goes_out_at_once_when_the_camera_is_lost_or_back() -> None:
    """camera_ok changes show in the status within a turn of the loop, not after tick_s."""
    stop = threading.Event()
    source = Source()
    source.ok = True  # type: ignore[attr-defined]
    ticks: list[bool] = []
    runner = Runner(source, CountingPipeline(), live=True, stop=stop, tick_s=60,
                    on_tick=lambda: ticks.append(source.ok))  # type: ignore[arg-type,attr-defined]  # fmt: skip
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    time.sleep(0.3)
    assert ticks == []
    source.ok = False  # type: ignore[attr-defined]
    deadline = time.monotonic() + 2
    while ticks != [False] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ticks == [False]
    source.ok = True  # type: ignore[attr-defined]
    while ticks != [False, True] and time.monotonic() < deadline + 2:
        time.sleep(0.01)
    assert ticks == [False, True]
    runner.tick_soon()  # the broker has just connected: the status, now
    while len(ticks) < 3 and time.monotonic() < deadline + 4:
        time.sleep(0.01)
    assert len(ticks) == 3
    stop.set()
    thread.join(3)
