"""The daemon's rolling figures for the status message: frame rate, faces seen and the
latency of each stage of the face path (p50/p95 over the last 300 frames)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

STAGES = ("detect", "align", "embed", "match", "total")
WINDOW = 300


class Stopwatch:
    """Laps of one frame: ``lap("detect")`` records the time since the previous lap."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.start = self.last = clock()
        self.laps: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = self.clock()
        self.laps[stage] = self.laps.get(stage, 0.0) + (now - self.last)
        self.last = now

    def total(self) -> float:
        return self.clock() - self.start


@dataclass
class Stats:
    """Rolling figures for the status message (the last ``WINDOW`` frames)."""

    started: float = field(default_factory=time.monotonic)
    frames: int = 0
    faces_seen: int = 0
    detector_runs: int = 0  # frames the face detector ran on
    skipped: int = 0  # frames the detector did not run on (motion gate, detect_fps)
    embeddings: int = 0  # encoder calls (one per face embedded)
    frame_times: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    latency: dict[str, deque[float]] = field(
        default_factory=lambda: {s: deque(maxlen=WINDOW) for s in STAGES}
    )

    def record(self, now: float, faces: int, watch: Stopwatch) -> None:
        """One processed frame: its time (monotonic), its faces and its stage laps."""
        self.frames += 1
        self.faces_seen += faces
        self.frame_times.append(now)
        for stage in STAGES[:-1]:
            self.latency[stage].append(watch.laps.get(stage, 0.0) * 1000)
        self.latency["total"].append(watch.total() * 1000)

    def fps(self) -> float:
        t = self.frame_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    def percentiles(self) -> dict[str, tuple[float, float]]:
        return {
            stage: (float(np.percentile(v, 50)), float(np.percentile(v, 95)))
            for stage, v in self.latency.items()
            if v
        }
