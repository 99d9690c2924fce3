"""One frame through the system: the per-face path (``edge.recognize``: detect, skip small
faces, align, embed, decide), the tracker, and the events to the sink. Keeps the
per-stage latency figures and re-reads the gallery when the enrollment CLI changes it
(checked at most once every ``reload_check_s``) or on request (SIGHUP).

Everything it talks to is a port (``edge.ports``), so ``tests/unit/test_pipeline.py``
runs it on in-memory fakes (``tests/fakes.py``) and the daemon on the real parts.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

from edge.decision import Decider, Policy
from edge.images import encode_crop
from edge.ports import Clock, Engine, EventSink, FaceTracker, GalleryReader, SystemClock
from edge.recognize import Recognizer
from edge.stats import Stats, Stopwatch
from edge.types import Frame, GalleryMatrix, RecognitionEvent

logger = logging.getLogger(__name__)

#: how often (seconds) the gallery file is asked whether another process changed it
RELOAD_CHECK_S = 1.0


class Pipeline:
    decider: Decider  # the gallery snapshot and its rule
    _version: int  # the gallery's data_version when last read (or tried)
    _checked: float  # when the gallery was last asked (clock seconds)

    def __init__(
        self,
        engine: Engine,
        gallery: GalleryReader,
        policy: Policy,
        encoder_id: str,
        tracker: FaceTracker,
        sink: EventSink,
        *,
        include_crop: bool = False,
        clock: Clock | None = None,
        reload_check_s: float = RELOAD_CHECK_S,
    ) -> None:
        self.engine, self.gallery, self.policy = engine, gallery, policy
        self.encoder_id, self.tracker, self.sink = encoder_id, tracker, sink
        self.include_crop = include_crop
        self.clock = clock or SystemClock()
        self.reload_check_s = reload_check_s
        self.stats = Stats(started=self.clock.monotonic())
        self._reload = threading.Event()
        self.load_gallery()

    @property
    def matrix(self) -> GalleryMatrix:
        """The gallery snapshot faces are matched against now."""
        return self.decider.gallery

    def request_reload(self) -> None:
        """Re-read the gallery before the next frame (SIGHUP)."""
        self._reload.set()

    def load_gallery(self) -> None:
        # the version is read first: a commit in between means one more read later,
        # never a missed one
        self._version, self._checked = self.gallery.data_version(), self.clock.monotonic()
        self.decider = self.policy.for_gallery(self.gallery.matrix(self.encoder_id))
        rule = self.decider.rule
        logger.info(
            "gallery: %d people, %d embeddings; tau %.3f, margin %.3f",
            len(self.matrix.names), len(self.matrix.vectors), rule.tau, rule.margin,
        )  # fmt: skip

    def _maybe_reload(self) -> None:
        now = self.clock.monotonic()
        if not self._reload.is_set() and now - self._checked < self.reload_check_s:
            return
        self._checked = now
        version = self.gallery.data_version()
        if not self._reload.is_set() and version == self._version:
            return
        self._reload.clear()
        try:  # load_gallery notes the version first: a version that fails is not retried
            self.load_gallery()
        except Exception:  # a broken gallery keeps the last good one
            logger.exception("could not re-read the gallery; keeping the previous one")

    def process(self, frame: Frame) -> list[RecognitionEvent]:
        self._maybe_reload()
        watch = Stopwatch()
        faces = Recognizer(self.engine, self.decider).faces(frame.image, watch)
        observed = [(f.face.detection.box, f.match) for f in faces]
        events = self.tracker.update(observed, frame.timestamp)
        for event in events:
            if self.include_crop:
                event = replace(event, crop_jpeg=encode_crop(frame.image, event.box))
            self.sink.publish(event)  # the tracker has logged it
        self.stats.record(self.clock.monotonic(), len(faces), watch)
        return events
