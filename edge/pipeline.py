"""One frame through the system: the motion gate (``edge.motion``: no detector while
nothing moves and no track is alive; a scene cut ends every track), detection at most
``detect_fps`` times a second of frame time (faces too small or outside the zones are
dropped; the frames between keep their tracks as they are), the tracker's ``follow``, alignment and quality,
the encoder for the faces the schedule picks (``edge.schedule``), the decision
(``edge.decision``), the tracker's ``vote`` and the events to the sink. Keeps the
per-stage latency figures and the counts of detector and encoder calls, and re-reads the
gallery when the enrollment CLI changes it (checked at most once every
``reload_check_s``) or on request (SIGHUP).

Everything it talks to is a port (``edge.ports``), so ``tests/unit/test_pipeline.py``
runs it on in-memory fakes (``tests/fakes.py``) and the daemon on the real parts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import replace

import cv2
import numpy as np

from edge.best_face import BestFaces
from edge.decision import Decider, Policy
from edge.images import encode_crop
from edge.motion import MotionGate, MotionSettings
from edge.ports import (
    Clock,
    Engine,
    EventSink,
    FaceTracker,
    GalleryReader,
    SightingRecorder,
    SystemClock,
)
from edge.quality import measure
from edge.schedule import EmbedSchedule, ScheduleSettings, View
from edge.stats import Stats, Stopwatch
from edge.types import BBox, Detection, Frame, GalleryMatrix, RecognitionEvent, RGBImage
from edge.zones import Polygon, in_zones

logger = logging.getLogger(__name__)

#: how often (seconds) the gallery file is asked whether another process changed it
RELOAD_CHECK_S = 1.0
#: the face size (pixels) the detector still finds as often as at full size: 99.7% of
#: calibrate faces at 32 px, 98.3% at 24, 93.7% at 20 (bench/detect_scale.py). Frames are
#: detected at the scale that brings a face of [camera] min_face pixels to this size.
DETECT_FACE_PX = 32
#: frame-time slack when comparing with the detection interval (a 30 fps camera's stamps
#: jitter: a frame 0.099 s after the last detection counts as 0.1)
DETECT_SLACK_S = 5e-3


def detection_scale(min_face: float) -> float:
    """The scale frames are detected at (1: full size)."""
    return min(1.0, DETECT_FACE_PX / min_face) if min_face > 0 else 1.0


def detect_scaled(engine: Engine, image: RGBImage, scale: float) -> list[Detection]:
    """The detector on a copy of the image scaled by ``scale``, its boxes and landmarks
    mapped back to the image's pixels (where the faces are then aligned)."""
    if scale >= 1.0:
        return engine.detect(image)
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    sx, sy = w / size[0], h / size[1]
    return [
        Detection(BBox(d.box.x1 * sx, d.box.y1 * sy, d.box.x2 * sx, d.box.y2 * sy), d.score,
                  (np.asarray(d.landmarks, np.float32) * np.array([sx, sy], np.float32)))
        for d in engine.detect(small)
    ]  # fmt: skip


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
        schedule: ScheduleSettings | None = None,
        motion: MotionSettings | None = None,
        zones: Sequence[Polygon] = (),
        detect_scale: float = 1.0,
        detect_fps: float = 0.0,
        sightings: SightingRecorder | None = None,
    ) -> None:
        """``schedule``: None embeds every face of every frame (the old loop); ``motion``:
        None runs the detector on every frame; ``zones``: where faces count
        (``edge.zones``); ``detect_scale``: the scale frames are detected at
        (:func:`detection_scale`); ``detect_fps``: at most this many detections a second
        of frame time (0: every frame), the frames between keep their tracks as they are;
        ``sightings``: where each decided track's face, embedding and verdict are kept."""
        self.engine, self.gallery, self.policy = engine, gallery, policy
        self.encoder_id, self.tracker, self.sink = encoder_id, tracker, sink
        self.include_crop, self.sightings = include_crop, sightings
        self.clock = clock or SystemClock()
        self.reload_check_s = reload_check_s
        self.schedule = EmbedSchedule(schedule or ScheduleSettings(enabled=False))
        self.motion = MotionGate(motion) if motion is not None else None
        self.zones = list(zones)
        self.detect_scale = detect_scale
        self.detect_interval = 1.0 / detect_fps if detect_fps > 0 else 0.0
        self._detected_at = -np.inf  # frame time of the last detection
        self.stats = Stats(started=self.clock.monotonic())
        self._reload = threading.Event()
        self.best = BestFaces(policy.max_yaw)  # each track's best face, for its sighting
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
            "gallery: %d person(s), %d embedding(s); tau %.3f%s, margin %.3f",
            len(self.matrix.names), len(self.matrix.vectors), rule.tau, self._own_taus(), rule.margin,
        )  # fmt: skip

    def _own_taus(self) -> str:
        """The bundle's domains' own taus for this gallery, as the log shows them after
        the averaged tau ('' for a rule of one tau)."""
        per, cohort = self.policy.domain_taus(self.decider.size), self.policy.cohort
        if per is None or cohort is None:
            return ""
        taus = ", ".join(f"{d} {per[i]:.3f}" for i, d in enumerate(cohort.domains))
        return f" (each face's own lies between its nearest cohort faces' domains': {taus})"

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

    def _detect(self, frame: Frame) -> list[Detection] | None:
        """The frame's faces worth following; none when the motion gate says nothing
        moved and no track is alive; None when the frame comes sooner after the last
        detection than ``detect_fps`` allows (its tracks stay as they are)."""
        if self.motion is not None:
            scene = self.motion.look(frame.image)
            if scene == "cut":
                self.tracker.reset()
                self._detected_at = -np.inf
            if scene == "still" and not self.tracker.tracks():
                self.stats.skipped += 1
                return []
        since = frame.timestamp - self._detected_at
        if 0 <= since < self.detect_interval - DETECT_SLACK_S:  # a clock set back detects
            self.stats.skipped += 1
            return None
        self._detected_at = frame.timestamp
        if self.motion is not None:
            self.motion.detected()
        self.stats.detector_runs += 1
        h, w = frame.image.shape[:2]
        policy = self.decider.policy
        return [
            d for d in detect_scaled(self.engine, frame.image, self.detect_scale)
            if policy.looked_at(d.box) and in_zones(d.box, self.zones, w, h)
        ]  # fmt: skip

    def process(self, frame: Frame) -> list[RecognitionEvent]:
        self._maybe_reload()
        watch = Stopwatch()
        now = frame.timestamp
        found = self._detect(frame)
        watch.lap("detect")
        if found is None:  # between detections: nothing new to follow or embed
            self.stats.record(self.clock.monotonic(), 0, watch)
            return []
        detections = found
        tracks = self.tracker.follow([d.box for d in detections])
        faces = [self.engine.align(frame.image, d) for d in detections]
        views = [
            View(t.track_id, measure(f), t.state, t.regained)
            for t, f in zip(tracks, faces, strict=True)
        ]
        watch.lap("align")
        picked = self.schedule.pick(views, now)
        embeddings = self.engine.embed([faces[i] for i in picked])
        watch.lap("embed")
        fired: list[RecognitionEvent] = []
        policy = self.decider.policy
        for i, embedding in zip(picked, embeddings, strict=True):
            view = views[i]
            match = self.decider.decide(embedding.vector, view.quality)
            self.schedule.embedded(view, now)
            if self.sightings is not None:
                self.best.offer(view.track_id, frame.image, detections[i].box,
                                embedding.vector, view.quality)  # fmt: skip
            votes = self.tracker.vote(view.track_id, match, now, policy.usable(view.quality))
            fired.extend(votes)
            for event in self.tracker.quiet:  # decided, kept quiet by a cooldown: kept, unsent
                self._keep(event)
        live = self.tracker.live()
        self.schedule.forget(live)
        self.best.forget(live)
        self.stats.embeddings += len(picked)
        watch.lap("match")
        events = [self._publish(frame, event) for event in fired]
        self.stats.record(self.clock.monotonic(), len(faces), watch)
        return events

    def _publish(self, frame: Frame, event: RecognitionEvent) -> RecognitionEvent:
        """The event with its crop and sighting id, handed to the sink."""
        event = self._keep(event)
        if self.include_crop:
            event = replace(event, crop_jpeg=encode_crop(frame.image, event.box))
        self.sink.publish(event)  # the tracker has logged it
        return event

    def _keep(self, event: RecognitionEvent) -> RecognitionEvent:
        """The decision kept in the sightings store (when enabled), with its sighting id:
        the track's best face so far (``edge.best_face``, offered only when sightings are
        kept; it holds one for every track with a face a crop could be made of, and the
        deciding face's box is such a face's: without one, no sighting)."""
        best = self.best.best(event.track_id)
        if best is None:
            return event
        assert self.sightings is not None
        return replace(event, sighting_id=self.sightings.record(event, best.vector, best.crop, best.quality))  # fmt: skip
