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
  smallest to the cohort. Where everyone looks alike to the encoder (a camera's light and
  angle) the cohort comes near too (research/cohort_faces.py). With the cohort's
  domains, a probe's tau is the one at which the domains' shares of strangers named,
  mixed by its k nearest cohort faces' domains, meet the target (:meth:`Policy.rule`).
  ``[recognition] tau`` is a plain distance: it turns both off.
- **Quality gates** (:class:`FaceQuality`): a face under ``[camera] min_face`` pixels is
  not looked at; one too blurry (``[recognition] min_sharpness``) or turned too far
  (``max_yaw``) is never named; enrollment has stricter gates (:func:`enrollment_problem`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from edge.open_set import OpenSetTable, gallery_size
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
    """Distances between rows of ``a`` and rows of ``b`` by the bundle's metric:
    ``euclidean`` ||a - b||, ``cosine`` 1 - cos(a, b) (vectors need not be unit length)."""
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


def domain_shares(
    to_cohort: NDArray[np.floating], k: int, label: NDArray[np.intp], domains: int
) -> NDArray[np.float64]:
    """Per row of distances to the cohort, the share of its ``k`` nearest cohort faces
    from each domain (``label``: each face's, an index of ``domains`` of them)."""
    d = np.atleast_2d(np.asarray(to_cohort, np.float64))
    near = np.asarray(label)[np.argpartition(d, k - 1, axis=1)[:, :k]]
    return (near[:, :, None] == np.arange(domains)).mean(axis=1)


@dataclass(frozen=True, slots=True, eq=False)
class Cohort:
    """The bundle's background faces (``vectors``, one row each), how many of the nearest
    judge a probe (``k``) and, when the bundle has them, each face's domain (``label``,
    an index of ``domains``). Checked on load: a bundle error, not a crash later."""

    vectors: NDArray[np.float32]
    k: int
    label: NDArray[np.intp] | None = None
    domains: tuple[str, ...] = ()
    unit: NDArray[np.float32] = field(init=False, repr=False)  # rows at unit length

    def __post_init__(self) -> None:
        v = self.vectors
        if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 1:
            raise ValueError(f"cohort: expected a matrix of faces, got shape {v.shape}")
        if not np.isfinite(v).all():
            raise ValueError("cohort: not every value is a finite number")
        if not 1 <= self.k <= v.shape[0]:
            raise ValueError(f"cohort: k must be in [1, {v.shape[0]}] (its faces), got {self.k}")
        if self.label is not None:
            lab = np.asarray(self.label)
            if lab.shape != (v.shape[0],) or not np.issubdtype(lab.dtype, np.integer):
                raise ValueError(f"cohort: expected one domain label per face, got shape {lab.shape}")  # fmt: skip
            if not (lab.min() >= 0 and lab.max() < len(self.domains)):
                raise ValueError(f"cohort: domain labels must be in [0, {len(self.domains)})")
        v = v.astype(np.float32)  # as distance() normalises it: once, not for every face
        object.__setattr__(self, "unit", v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12))  # fmt: skip

    def to(self, vector: NDArray[np.floating], metric: str) -> NDArray[np.float64]:
        """The probe's distances to every cohort face (one row)."""
        if metric != "cosine":
            return distance(vector, self.vectors, metric).astype(np.float64)
        q = np.atleast_2d(vector).astype(np.float32)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        return (1.0 - q @ self.unit.T).astype(np.float64)

    def scale(self, vector: NDArray[np.floating], metric: str) -> float:
        """The probe's divisor: the mean of its ``k`` smallest distances to the cohort."""
        return float(cohort_scale(self.to(vector, metric), self.k)[0])

    def near(self, vector: NDArray[np.floating], metric: str) -> tuple[float, NDArray[np.float64] | None]:  # fmt: skip
        """The probe's scale and its :func:`domain_shares` (None: faces without domains)."""
        d = self.to(vector, metric)
        shares = None
        if self.label is not None:
            shares = domain_shares(d, self.k, self.label, len(self.domains))[0]
        return float(cohort_scale(d, self.k)[0]), shares


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

    def judge(self, vector: NDArray[np.floating], ranked: list[Candidate], comparisons: float) -> Match:  # fmt: skip
        """The verdict on ``vector`` (its ``ranked`` distances) in a gallery of this size
        (:func:`gallery_size`), before the gates: scored and with the probe's own tau
        (:meth:`rule` with its domain shares) when :attr:`scored`."""
        if not ranked or not self.scored:
            return self.rule(comparisons).decide(ranked)
        assert self.cohort is not None
        s, shares = self.cohort.near(vector, self.metric)
        scored = [Candidate(c.person, c.distance / s, c.impostor / s) for c in ranked]
        return self.rule(comparisons, shares).decide(scored)

    @property
    def domains(self) -> tuple[str, ...]:
        """The cohort's domains, each probe's tau drawn from theirs; () for one tau for all."""
        table, cohort = self.open_set, self.cohort
        return cohort.domains if self.scored and table and table.by_domain and cohort else ()

    def domain_taus(self, comparisons: float) -> NDArray[np.float64] | None:
        """Each of :attr:`domains`' own tau for a gallery of this size, or None for none."""
        if not self.domains or self.open_set is None:
            return None
        return np.array([self.open_set.tau_for(comparisons, self.strangers_accepted, d) for d in self.domains])  # fmt: skip

    def verify_threshold(self) -> float:
        return self.verify_tau if self.tau is None else self.tau

    def same(self, d: float) -> bool:
        """One-to-one: the same person iff the distance is within the threshold."""
        return d <= self.verify_threshold()

    def rule(self, comparisons: float, shares: NDArray[np.floating] | None = None) -> Rule:
        """The identification rule for a gallery of this size (:func:`gallery_size`); for
        a probe whose nearest cohort faces come from each domain in these ``shares``
        (``Cohort.near``), the tau at which the domains' shares of strangers named, mixed
        by them, meet the target (``OpenSetTable.mixed_tau``); without, the blended tau."""
        table = self.open_set
        if table is None:
            tau = self.identify_tau if self.tau is None else self.tau
            return Rule(tau, self.margin or 0.0)
        margin = table.margin if self.margin is None else self.margin
        if self.tau is not None:
            return Rule(self.tau, margin)
        if shares is not None and self.domains:
            return Rule(float(table.mixed_tau(comparisons, self.strangers_accepted, self.domains, shares)[0]), margin)  # fmt: skip
        return Rule(table.tau_for(comparisons, self.strangers_accepted), margin)

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
        return Decider(self, gallery, self.rule(size), size)


@dataclass(frozen=True, slots=True)
class Decider:
    """A gallery snapshot with its size (:func:`gallery_size`) and the rule for it
    (``rule``: without a probe's domain shares, the blended tau: what the log shows):
    the verdict for one face."""

    policy: Policy
    gallery: GalleryMatrix
    rule: Rule
    size: float

    def decide(self, vector: NDArray[np.float32], q: FaceQuality) -> Match:
        ranked = rank(self.gallery, vector, self.policy.metric)
        return self.policy.gate(self.policy.judge(vector, ranked, self.size), q)
