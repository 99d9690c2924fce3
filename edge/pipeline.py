"""One frame through the system: detect, skip small faces, align, embed, match, decide,
track, and hand the events to the sink. Also keeps the per-stage latency figures and
re-reads the gallery when the enrollment CLI changes it (or on SIGHUP)."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Protocol

import cv2
import numpy as np

from edge.bundle import Bundle
from edge.config import RecognitionConfig
from edge.engine import FaceEngine
from edge.gallery import Gallery, GalleryMatrix
from edge.recognize import decide, rule_for
from edge.tracker import Tracker
from edge.types import Frame, RecognitionEvent

logger = logging.getLogger(__name__)
STAGES = ("detect", "align", "embed", "match", "total")


class EventSink(Protocol):
    def publish(self, event: RecognitionEvent) -> None: ...


@dataclass
class Stats:
    """Rolling figures for the status message (the last 300 frames)."""

    started: float = field(default_factory=time.monotonic)
    frames: int = 0
    faces_seen: int = 0
    frame_times: deque[float] = field(default_factory=lambda: deque(maxlen=300))
    latency: dict[str, deque[float]] = field(
        default_factory=lambda: {s: deque(maxlen=300) for s in STAGES}
    )

    def fps(self) -> float:
        t = self.frame_times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    def percentiles(self) -> dict[str, tuple[float, float]]:
        return {
            stage: (float(np.percentile(v, 50)), float(np.percentile(v, 95)))
            for stage, v in self.latency.items()
            if v
        }


class Pipeline:
    def __init__(
        self,
        engine: FaceEngine,
        bundle: Bundle,
        gallery: Gallery,
        recognition: RecognitionConfig,
        tracker: Tracker,
        sink: EventSink,
        min_face: int,
        include_crop: bool = False,
    ) -> None:
        self.engine, self.bundle, self.gallery = engine, bundle, gallery
        self.recognition, self.tracker, self.sink = recognition, tracker, sink
        self.min_face, self.include_crop = min_face, include_crop
        self.metric = bundle.manifest.encoder.metric
        self.stats = Stats()
        self._reload = threading.Event()
        self._version = -1
        self.matrix: GalleryMatrix = GalleryMatrix(
            [], np.zeros(0, np.intp), np.zeros((0, 0), np.float32), None, 0
        )
        self.load_gallery()

    def request_reload(self) -> None:
        """Re-read the gallery before the next frame (SIGHUP)."""
        self._reload.set()

    def load_gallery(self) -> None:
        self.matrix = self.gallery.matrix(self.bundle.manifest.encoder_id)
        self.rule = rule_for(self.bundle, self.matrix, self.recognition)
        self._version = self.gallery.data_version()
        logger.info(
            "gallery: %d people, %d embeddings; tau %.3f, margin %.3f",
            len(self.matrix.names), len(self.matrix.vectors), self.rule.tau, self.rule.margin,
        )  # fmt: skip

    def _maybe_reload(self) -> None:
        if self._reload.is_set() or self.gallery.data_version() != self._version:
            self._reload.clear()
            try:
                self.load_gallery()
            except Exception:  # a broken gallery keeps the last good one
                logger.exception("could not re-read the gallery; keeping the previous one")

    def process(self, frame: Frame) -> list[RecognitionEvent]:
        self._maybe_reload()
        t0 = time.perf_counter()
        dets = [
            d
            for d in self.engine.detect(frame.image)
            if min(d.box.width, d.box.height) >= self.min_face
        ]
        t1 = time.perf_counter()
        faces = [self.engine.align(frame.image, d) for d in dets]
        t2 = time.perf_counter()
        embeddings = self.engine.embed(faces)
        t3 = time.perf_counter()
        observed = []
        for face, emb in zip(faces, embeddings, strict=True):
            match = decide(
                self.rule,
                self.matrix,
                self.metric,
                face,
                emb.vector,
                self.recognition.min_sharpness,
            )
            observed.append((face.detection.box, match))
        t4 = time.perf_counter()
        events = self.tracker.update(observed, frame.timestamp)
        for event in events:
            if self.include_crop:
                event = replace(event, crop_jpeg=self._crop(frame, event))
            self.sink.publish(event)  # the tracker has logged it
        self._record(frame, len(dets), (t0, t1, t2, t3, t4, time.perf_counter()))
        return events

    def _record(self, frame: Frame, faces: int, t: tuple[float, ...]) -> None:
        s = self.stats
        s.frames += 1
        s.faces_seen += faces
        s.frame_times.append(time.monotonic())
        for stage, (a, b) in zip(STAGES[:4], list(itertools.pairwise(t))[:4], strict=True):
            s.latency[stage].append((b - a) * 1000)
        s.latency["total"].append((t[-1] - t[0]) * 1000)

    @staticmethod
    def _crop(frame: Frame, event: RecognitionEvent) -> bytes | None:
        h, w = frame.image.shape[:2]
        b = event.box
        x1, y1 = max(0, int(b.x1)), max(0, int(b.y1))
        x2, y2 = min(w, int(b.x2)), min(h, int(b.y2))
        if x2 <= x1 or y2 <= y1:
            return None
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame.image[y1:y2, x1:x2], cv2.COLOR_RGB2BGR))
        return jpeg.tobytes() if ok else None
