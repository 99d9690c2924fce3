"""Enrollment from the camera: take good frames (one face, big and sharp enough), half a
second or 15 frames apart (whichever comes first: a recording is read faster than real
time), until there are enough or time runs out."""

from __future__ import annotations

import logging
import time
from collections import Counter

from edge.decision import Policy
from edge.engine import FaceEngine
from edge.enroll import EnrollReport, Outcome, Rejected, pick_face, sample_from, store
from edge.errors import EdgeError
from edge.gallery import Gallery, Sample
from edge.sources import open_source, redact

logger = logging.getLogger(__name__)

MIN_GAP_S = 0.5
MIN_GAP_FRAMES = 15


def enroll_from_camera(
    gallery: Gallery,
    engine: FaceEngine,
    name: str,
    source: int | str,
    frames: int = 5,
    timeout_s: float = 60.0,
    policy: Policy | None = None,
) -> EnrollReport:
    cam = open_source(source)
    taken: list[tuple[Sample, int]] = []
    outcomes: list[Outcome] = []
    reasons: Counter[str] = Counter()
    last, last_index = -MIN_GAP_S, -MIN_GAP_FRAMES
    deadline = time.monotonic() + timeout_s
    try:
        while len(taken) < frames and time.monotonic() < deadline:
            frame = cam.read()
            if frame is None:
                break
            now = time.monotonic()
            if now - last < MIN_GAP_S and frame.index - last_index < MIN_GAP_FRAMES:
                continue
            try:
                face = pick_face(engine, frame.image, largest=False)
            except Rejected as exc:
                reasons[str(exc).split(":")[0]] += 1
                continue
            sample, outcome = sample_from(engine, face, f"camera frame {frame.index}")
            taken.append((sample, len(outcomes)))
            outcomes.append(outcome)
            last, last_index = now, frame.index
            logger.info("took frame %d (%d/%d)", frame.index, len(taken), frames)
    finally:
        cam.close()
    for reason, n in reasons.most_common():
        outcomes.append(Outcome(f"{n} camera frame(s)", False, reason))
    if not taken and not reasons:
        raise EdgeError(f"the camera {redact(source)!r} gave no frames")
    return EnrollReport(name, outcomes, store(gallery, name, taken, outcomes, policy))
