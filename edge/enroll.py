"""Enrollment: photos (or camera frames) -> checked faces -> embeddings -> the gallery.

Each photo must hold exactly one face (or, with ``largest``, the largest is taken), big
and sharp enough. Every photo that fails is reported with its reason and nothing of it
is stored; the good ones are stored together, in one transaction, at the end.

With a decision rule (``policy``), a face that the rule would give another enrolled
person's name is refused too (``looks_like``), unless ``force``: enrolling it would make
the two people's names interchangeable at the door.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.decision import Policy, enrollment_problem, rank
from edge.engine import FaceEngine
from edge.gallery import Gallery, Sample
from edge.images import ImageError, read_image
from edge.quality import measure
from edge.types import AlignedFace, GalleryMatrix, RGBImage

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


def others(matrix: GalleryMatrix, name: str) -> GalleryMatrix:
    """The gallery without ``name``'s embeddings (names compared without case)."""
    keep = [i for i, n in enumerate(matrix.names) if n.casefold() != name.casefold()]
    rows = np.isin(matrix.owner, keep)
    remap = np.full(max(len(matrix.names), 1), -1, np.intp)
    remap[keep] = np.arange(len(keep))
    return GalleryMatrix(
        [matrix.names[i] for i in keep],
        remap[matrix.owner[rows]],
        matrix.vectors[rows],
        matrix.encoder_id,
    )


def looks_like(sample: Sample, others: GalleryMatrix, policy: Policy) -> str | None:
    """Why ``sample`` should not be enrolled: the rule names it as another person."""
    if not others.names:
        return None
    ranked = rank(others, sample.vector, policy.metric)
    match = policy.judge(sample.vector, ranked, len(others.vectors))
    if not match.known:
        return None
    return (
        f"looks like {match.person}, who is enrolled (distance {match.distance:.3f} <= tau "
        f"{match.tau:.3f}): enrolling it would let each be taken for the other; if this "
        "really is the person you name, use --force"
    )


def refusals(
    gallery: Gallery, name: str, samples: Sequence[Sample], policy: Policy | None
) -> list[str | None]:
    """Per sample, why it is refused because ``policy`` names it as another enrolled
    person (None: keep it); all None without a policy."""
    if policy is None or not samples:
        return [None] * len(samples)
    rest = others(gallery.matrix(samples[0].encoder_id), name)
    return [looks_like(sample, rest, policy) for sample in samples]


def store(
    gallery: Gallery,
    name: str,
    taken: list[tuple[Sample, int]],
    outcomes: list[Outcome],
    policy: Policy | None,
) -> int:
    """Add the ``taken`` samples (each with its outcome's index) that pass the guard;
    a refused one's outcome becomes a refusal. Returns how many were stored."""
    whys = refusals(gallery, name, [sample for sample, _ in taken], policy)
    for (_, slot), why in zip(taken, whys, strict=True):
        if why is not None:
            outcomes[slot] = Outcome(outcomes[slot].source, False, why)
    kept = [sample for (sample, _), why in zip(taken, whys, strict=True) if why is None]
    return gallery.add(name, kept) if kept else 0


def enroll_photos(
    gallery: Gallery,
    engine: FaceEngine,
    name: str,
    paths: Sequence[Path],
    largest: bool = False,
    progress: Callable[[Path], None] | None = None,
    policy: Policy | None = None,
) -> EnrollReport:
    """Enroll ``name`` from photos (adding to the person if they exist). With ``policy``,
    a face the rule names as another enrolled person is refused (:func:`looks_like`)."""
    taken: list[tuple[Sample, int]] = []
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
        taken.append((sample, len(outcomes)))
        outcomes.append(outcome)
    return EnrollReport(name, outcomes, store(gallery, name, taken, outcomes, policy))
