from __future__ import annotations

import threading
import time

import numpy as np

from edge.handoff import FrameHandoff
from edge.types import Frame


def frame(i: int) -> Frame:
    return Frame(np.zeros((2, 2, 3), np.uint8), i, time.time())


def test_live_keeps_only_the_newest_frame() -> None:
    h = FrameHandoff(drop_stale=True)
    for i in range(5):
        h.put(frame(i))
    got = h.take(0.1)
    assert got is not None and got.index == 4 and h.dropped == 4
    assert h.take(0.05) is None


def test_recording_gives_every_frame_in_order() -> None:
    h = FrameHandoff(drop_stale=False)

    def produce() -> None:
        for i in range(20):
            h.put(frame(i))
        h.end()

    threading.Thread(target=produce, daemon=True).start()
    seen = []
    while not h.ended:
        f = h.take(1.0)
        if f is not None:
            seen.append(f.index)
    assert seen == list(range(20)) and h.dropped == 0
