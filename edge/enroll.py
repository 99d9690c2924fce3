"""Enrollment: photos (or camera frames) -> checked faces -> embeddings -> the gallery.

Each photo must hold exactly one face (or, with ``largest``, the largest is taken), big
and sharp enough. Every photo that fails is reported with its reason and nothing of it
is stored; the good ones are stored together, in one transaction, at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edge.decision import enrollment_problem
from edge.engine import FaceEngine
from edge.gallery import Gallery, Sample
from edge.images import ImageError, read_image
from edge.quality import measure
from edge.types import AlignedFace, RGBImage

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True, slots=True)
class Outcome:
    source: str
    ok: bool
    reason: str = ""  # why it was rejected
    box: list[float] | None = None
    quality: float = 0.0


@dataclass(frozen=True, slots=True)
class EnrollReport:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    stored: int = 0

    @property
    def rejected(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]


class Rejected(Exception):  # noqa: N818 (a verdict, not a failure of the program)
    """This photo cannot be enrolled; the message says why."""


def expand(paths: Iterable[Path]) -> list[Path]:
    """Files as given; folders replaced by the images in them (recursively, sorted)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                sorted(
                    p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                )
            )
        else:
            out.append(path)
    return out


def pick_face(engine: FaceEngine, image: RGBImage, largest: bool) -> AlignedFace:
    """The one face of a photo, aligned; or :class:`Rejected` with the reason."""
    dets = engine.detect(image)
    if not dets:
        raise Rejected("no face found")
    if len(dets) > 1 and not largest:
        raise Rejected(
            f"{len(dets)} faces found: use --largest to enroll the largest one, or crop the photo"
        )
    det = max(dets, key=lambda d: d.box.area)
    face = engine.align(image, det)
    problem = enrollment_problem(measure(face))
    if problem:
        raise Rejected(problem)
    return face


def sample_from(engine: FaceEngine, face: AlignedFace, source: str) -> tuple[Sample, Outcome]:
    [embedding] = engine.embed([face])
    quality = round(measure(face).sharpness, 1)
    outcome = Outcome(source, True, box=face.detection.box.as_list(), quality=quality)
    return Sample(embedding.vector, embedding.encoder_id, source, quality), outcome


def enroll_photos(
    gallery: Gallery,
    engine: FaceEngine,
    name: str,
    paths: Sequence[Path],
    largest: bool = False,
    progress: Callable[[Path], None] | None = None,
) -> EnrollReport:
    """Enroll ``name`` from photos (adding to the person if they exist)."""
    samples: list[Sample] = []
    outcomes: list[Outcome] = []
    for path in expand(paths):
        if progress:
            progress(path)
        try:
            face = pick_face(engine, read_image(path), largest)
        except (ImageError, Rejected) as exc:
            reason = str(exc).removeprefix(f"{path}: ")
            outcomes.append(Outcome(str(path), False, reason))
            continue
        sample, outcome = sample_from(engine, face, path.name)
        samples.append(sample)
        outcomes.append(outcome)
    stored = gallery.add(name, samples) if samples else 0
    return EnrollReport(name, outcomes, stored)
