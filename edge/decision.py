"""The decision, in one place: is this face someone, and who? Pure functions and frozen
values (numpy only); every caller (the daemon, ``identify``, ``verify``, enrollment,
the benchmarks and the export stage's tables) decides through this module.

- **Distance** (:func:`distance`): the bundle's metric, Euclidean or cosine.
- **Verify** (one-to-one, :meth:`Policy.same`): same person iff ``d <= tau``, with the
  bundle's ``tau.verify`` unless ``[recognition] tau`` sets it.
- **Identify** (one against a gallery, :meth:`Policy.rule`): a stranger meets N enrolled
  faces, N chances of a false match (docs/RECOGNITION.md). The default rule, measured at
  build time on simulated galleries (``model_export.impostors``; :class:`OpenSetTable`):
  a margin (the nearest person beats the second by it) and a tau that names
  ``strangers_accepted`` (1%) of strangers at this gallery's size (:func:`gallery_size`).
  ``[recognition] tau`` and ``margin`` override them. A face nearer to one of a person's
  impostor faces is not them.
- **Cohort normalization** (:class:`Cohort`): with a cohort (the bundle's calibrate
  people's photos) the table is in scores: a probe's distances over the mean of its ``k``
  smallest to the cohort. Where everyone looks alike to the encoder (a
  camera's light and angle) the cohort comes near too, and one threshold names about the
  same share of strangers across domains (research/cohort_faces.py). ``[recognition]
  tau`` is a plain distance and turns it off.
- **Quality gates** (:class:`FaceQuality`): a face under ``[camera] min_face`` pixels is
  not looked at; one too blurry (``[recognition] min_sharpness``) or turned too far
  (``max_yaw``) is never named; enrollment has stricter gates (:func:`enrollment_problem`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from edge.types import BBox, GalleryMatrix, Match

#: the default target: at most 1% of strangers are given a name
DEFAULT_STRANGERS = 0.01
#: enrollment: the detector box's shorter side (photo pixels), the aligned face's sharpness
ENROLL_MIN_FACE_PX, ENROLL_MIN_SHARPNESS = 50, 10.0
#: a face turned further (edge.quality.yaw, inter-eye distances) is never named: chosen on
#: select people among 0.4, 0.5, 0.6 and none (research/OPENSET.md, research/bundle_rule.py)
DEFAULT_MAX_YAW = 0.5

Metric = Literal["euclidean", "cosine"]


def distance(a: NDArray[np.floating], b: NDArray[np.floating], metric: str) -> NDArray[np.floating]:
    """Distances between rows of ``a`` and rows of ``b`` by the bundle's metric.

    ``euclidean``: ||a - b||. ``cosine``: 1 - cos(a, b) (vectors need not be unit length).
    """
    a2, b2 = np.atleast_2d(a).astype(np.float32), np.atleast_2d(b).astype(np.float32)
    if metric == "cosine":
        an = a2 / np.maximum(np.linalg.norm(a2, axis=1, keepdims=True), 1e-12)
        bn = b2 / np.maximum(np.linalg.norm(b2, axis=1, keepdims=True), 1e-12)
        return 1.0 - an @ bn.T
    sq = (a2**2).sum(1)[:, None] + (b2**2).sum(1)[None, :] - 2 * a2 @ b2.T
    return np.sqrt(np.maximum(sq, 0.0))


@dataclass(frozen=True, slots=True)
class Candidate:
    person: str
    distance: float
    impostor: float = math.inf  # the nearest face marked "not this person" (edge-face not)


def rank(gallery: GalleryMatrix, vector: NDArray[np.float32], metric: str) -> list[Candidate]:
    """Every enrolled person with their distance (smallest over their embeddings) and their
    nearest impostor face's (inf: none), nearest first."""
    if not gallery.names:
        return []
    d = distance(vector, gallery.vectors, metric)[0]
    best = np.full(len(gallery.names), np.inf)
    np.minimum.at(best, gallery.owner, d)
    fake = np.full(len(gallery.names), np.inf)  # each person's nearest impostor face
    if gallery.impostors is not None and gallery.impostor_owner is not None:
        np.minimum.at(fake, gallery.impostor_owner, distance(vector, gallery.impostors, metric)[0])
    order = np.argsort(best, kind="stable")
    return [Candidate(gallery.names[i], float(best[i]), float(fake[i])) for i in order]


def cohort_scale(to_cohort: NDArray[np.floating], k: int) -> NDArray[np.float64]:
    """Per row of distances to the cohort, the divisor of its scores: the mean of its
    ``k`` smallest (never below 1e-6). The build fits the open-set table with it and the
    device scores with it, so both compute exactly this."""
    d = np.atleast_2d(np.asarray(to_cohort, np.float64))
    near = np.partition(d, k - 1, axis=1)[:, :k]
    return np.maximum(near.mean(axis=1), 1e-6)


@dataclass(frozen=True, slots=True, eq=False)
class Cohort:
    """The bundle's background faces (``vectors``, one row each) and how many of the
    nearest judge a probe (``k``). Checked on load: a bundle error, not a crash later."""

    vectors: NDArray[np.float32]
    k: int
    unit: NDArray[np.float32] = field(init=False, repr=False)  # rows at unit length

    def __post_init__(self) -> None:
        v = self.vectors
        if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 1:
            raise ValueError(f"cohort: expected a matrix of faces, got shape {v.shape}")
        if not np.isfinite(v).all():
            raise ValueError("cohort: not every value is a finite number")
        if not 1 <= self.k <= v.shape[0]:
            raise ValueError(f"cohort: k must be in [1, {v.shape[0]}] (its faces), got {self.k}")
        v = v.astype(np.float32)  # as distance() normalises it: once, not for every face
        object.__setattr__(self, "unit", v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12))  # fmt: skip

    def scale(self, vector: NDArray[np.floating], metric: str) -> float:
        """The probe's divisor: the mean of its ``k`` smallest distances to the cohort."""
        if metric != "cosine":
            return float(cohort_scale(distance(vector, self.vectors, metric), self.k)[0])
        q = np.atleast_2d(vector).astype(np.float32)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        return float(cohort_scale(1.0 - q @ self.unit.T, self.k)[0])


@dataclass(frozen=True, slots=True)
class Rule:
    """known iff the nearest person is within ``tau``, when ``margin`` > 0 nearer than the
    second-nearest by at least ``margin``, and nearer than every face marked not them."""

    tau: float
    margin: float = 0.0

    def decide(self, ranked: list[Candidate]) -> Match:
        if not ranked:
            return Match(None, math.inf, self.tau, False)
        best = ranked[0]
        clear = len(ranked) < 2 or ranked[1].distance - best.distance >= self.margin
        known = best.distance <= self.tau and clear and best.distance < best.impostor
        return Match(best.person if known else None, best.distance, self.tau, known)


def _increasing(name: str, values: tuple[float, ...], low: float, high: float) -> None:
    if not values:
        raise ValueError(f"{name}: expected at least one value")
    if any(not (low < v < high) for v in values):
        raise ValueError(f"{name}: every value must be in ({low:g}, {high:g}), got {list(values)}")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"{name}: must be strictly increasing, got {list(values)}")


@dataclass(frozen=True, slots=True)
class OpenSetTable:
    """The manifest's ``identify`` table: per gallery size and target share of strangers
    named, the tau that gives it (``tau[size][rate]``) with ``margin``. Checked on load."""

    margin: float
    sizes: tuple[float, ...]
    rates: tuple[float, ...]
    tau: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if not (0 <= self.margin < math.inf):
            raise ValueError(f"margin: expected a number >= 0, got {self.margin}")
        _increasing("sizes", self.sizes, 0.5, math.inf)
        _increasing("rates", self.rates, 0.0, 1.0)
        shape = (len(self.sizes), len(self.rates))
        if len(self.tau) != shape[0] or any(len(row) != shape[1] for row in self.tau):
            raise ValueError(f"tau: expected {shape[0]} rows of {shape[1]} values (sizes x rates)")
        if any(not (0 < t < math.inf) for row in self.tau for t in row):
            raise ValueError("tau: every value must be a positive number")

    @staticmethod
    def from_json(table: Mapping[str, Any]) -> OpenSetTable:
        """The table from the manifest's JSON (other keys, the figures, are ignored)."""
        return OpenSetTable(
            float(table["margin"]),
            tuple(float(v) for v in table["sizes"]),
            tuple(float(v) for v in table["rates"]),
            tuple(tuple(float(v) for v in row) for row in table["tau"]),
        )

    def tau_for(self, comparisons: float, strangers_accepted: float) -> float:
        """tau for a gallery of this size (:func:`gallery_size`) at a target share of
        strangers accepted, interpolated in logs. Past the largest size the last step goes
        on, never looser (a stranger meets more faces); a rate outside is clamped."""
        sizes = np.log10(self.sizes)
        taus = np.asarray(self.tau)  # [size][rate]
        n = math.log10(max(1, comparisons))
        by_rate = [float(np.interp(n, sizes, taus[:, j])) for j in range(taus.shape[1])]
        if n > sizes[-1] and len(sizes) > 1:
            slope = np.minimum(0.0, (taus[-1] - taus[-2]) / (sizes[-1] - sizes[-2]))
            by_rate = [max(0.0, float(t)) for t in taus[-1] + slope * (n - sizes[-1])]
        return float(np.interp(math.log10(strangers_accepted), np.log10(self.rates), by_rate))


def gallery_size(embeddings: int, people: int) -> float:
    """The size the table is read at: sqrt(embeddings x people). It is simulated with one
    photo each; a person's m photos are about sqrt(m) chances for a stranger, not m, on
    select people (research/cohort_faces.py; docs/RECOGNITION.md)."""
    return math.sqrt(max(embeddings, 0) * max(people, 0))


@dataclass(frozen=True, slots=True)
class FaceQuality:
    """What the gates look at: the detector box's shorter side (pixels of the image it
    was found in) and the aligned face's sharpness (``edge.quality.sharpness``)."""

    size_px: float
    sharpness: float
    yaw: float = 0.0  # edge.quality.yaw: 0 frontal, about 0.5 and more in profile


def enrollment_problem(
    q: FaceQuality,
    min_face: float = ENROLL_MIN_FACE_PX,
    min_sharpness: float = ENROLL_MIN_SHARPNESS,
) -> str | None:
    """Why this face should not be enrolled, or None when it is fine."""
    if q.size_px < min_face:
        return f"face too small: {q.size_px:.0f} px, at least {min_face:g} px needed (use a closer or larger photo)"
    if q.sharpness < min_sharpness:
        return f"face too blurry: sharpness {q.sharpness:.1f}, at least {min_sharpness:g} needed (use a sharper photo)"
    return None


@dataclass(frozen=True, slots=True)
class Policy:
    """The whole rule as configured: the bundle's thresholds and open-set table, the
    config's overrides (``tau``, ``margin``, ``strangers_accepted``) and gates."""

    metric: Metric
    verify_tau: float  # the bundle's tau.verify
    identify_tau: float  # the bundle's tau.identify: used when it has no open-set table
    open_set: OpenSetTable | None = None
    strangers_accepted: float = DEFAULT_STRANGERS
    tau: float | None = None  # [recognition] tau: overrides every tau
    margin: float | None = None  # [recognition] margin: overrides the table's
    min_sharpness: float = 0.0  # a blurrier face is never named
    min_face: float = 0.0  # a smaller face is not looked at
    cohort: Cohort | None = None  # the bundle's: the open-set table is in cohort scores
    max_yaw: float = math.inf  # a face turned further is never named

    @property
    def scored(self) -> bool:
        """Cohort scores, not distances (the bundle's table, no ``tau`` override)?"""
        return self.cohort is not None and self.open_set is not None and self.tau is None

    def scores(self, vector: NDArray[np.floating], ranked: list[Candidate]) -> list[Candidate]:
        """``ranked`` (``vector``'s distances) as the rule compares them: divided by the
        probe's cohort scale when :attr:`scored`, else unchanged."""
        if not ranked or not self.scored:
            return ranked
        assert self.cohort is not None
        s = self.cohort.scale(vector, self.metric)
        return [Candidate(c.person, c.distance / s, c.impostor / s) for c in ranked]

    def verify_threshold(self) -> float:
        return self.verify_tau if self.tau is None else self.tau

    def same(self, d: float) -> bool:
        """One-to-one: the same person iff the distance is within the threshold."""
        return d <= self.verify_threshold()

    def rule(self, comparisons: float) -> Rule:
        """The identification rule for a gallery of this size (:func:`gallery_size`)."""
        table = self.open_set
        if table is None:
            tau = self.identify_tau if self.tau is None else self.tau
            return Rule(tau, self.margin or 0.0)
        margin = table.margin if self.margin is None else self.margin
        tau = table.tau_for(comparisons, self.strangers_accepted) if self.tau is None else self.tau
        return Rule(tau, margin)

    def looked_at(self, box: BBox) -> bool:  # big enough to be recognised at all?
        return box.short_side >= self.min_face

    def usable(self, q: FaceQuality) -> bool:  # sharp and frontal enough to trust?
        return q.sharpness >= self.min_sharpness and abs(q.yaw) <= self.max_yaw

    def gate(self, match: Match, q: FaceQuality) -> Match:
        """A name is kept only for a face sharp and frontal enough to trust."""
        if match.known and not self.usable(q):
            return Match(None, match.distance, match.tau, False)
        return match

    def for_gallery(self, gallery: GalleryMatrix) -> Decider:
        size = gallery_size(len(gallery.vectors), len(gallery.names))
        return Decider(self, gallery, self.rule(size))


@dataclass(frozen=True, slots=True)
class Decider:
    """A gallery snapshot with the rule for its size: the verdict for one face."""

    policy: Policy
    gallery: GalleryMatrix
    rule: Rule

    def decide(self, vector: NDArray[np.float32], q: FaceQuality) -> Match:
        ranked = self.policy.scores(vector, rank(self.gallery, vector, self.policy.metric))
        return self.policy.gate(self.rule.decide(ranked), q)
