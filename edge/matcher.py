"""Matching a face against the gallery, and the decision: a name, or unknown.

One-to-one verification uses the bundle's ``tau.verify``. Identification against a
gallery is another problem: a stranger compared with N enrolled embeddings has N chances
of a false match, so a threshold that is safe for one comparison names a stranger far
too often. The default rule keeps the rate of strangers given a name at a stated target
(``strangers_accepted``, 1%) whatever the gallery's size: from the impostor distance
distribution the bundle measured at build time (every pair of ~1,400 different people),
it takes the tau whose per-comparison false-accept rate is 1 - (1 - target)^(1/N), N the
number of enrolled embeddings. A bigger gallery gets a stricter tau, automatically.
A margin rule (the best person must beat the second-best by ``margin``) can be added.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge.engine import distance
from edge.gallery import GalleryMatrix
from edge.types import Match

#: the default target: at most 1% of strangers are given a name
DEFAULT_STRANGERS = 0.01


@dataclass(frozen=True, slots=True)
class Candidate:
    person: str
    distance: float


def rank(gallery: GalleryMatrix, vector: NDArray[np.float32], metric: str) -> list[Candidate]:
    """Every enrolled person with their distance (smallest over their embeddings), nearest first."""
    if not gallery.names:
        return []
    d = distance(vector, gallery.vectors, metric)[0]
    best = np.full(len(gallery.names), np.inf)
    np.minimum.at(best, gallery.owner, d)
    order = np.argsort(best, kind="stable")
    return [Candidate(gallery.names[i], float(best[i])) for i in order]


def per_comparison_far(strangers_accepted: float, comparisons: int) -> float:
    """The false-accept rate per comparison that gives ``strangers_accepted`` over N."""
    n = max(1, comparisons)
    return -math.expm1(math.log1p(-strangers_accepted) / n)


def tau_for_far(table: Sequence[Sequence[float]], far: float) -> float:
    """Interpolate tau at ``far`` in a table of (far, tau) rows, in log(far); clamped."""
    rows = sorted((float(f), float(t)) for f, t in table)
    logs = np.log10([f for f, _ in rows])
    return float(np.interp(math.log10(max(far, 1e-300)), logs, [t for _, t in rows]))


@dataclass(frozen=True, slots=True)
class Rule:
    """known iff the nearest person is within ``tau`` and, when ``margin`` > 0, nearer
    than the second-nearest by at least ``margin``."""

    tau: float
    margin: float = 0.0

    def decide(self, ranked: list[Candidate]) -> Match:
        if not ranked:
            return Match(None, math.inf, self.tau, False)
        best = ranked[0]
        clear = len(ranked) < 2 or ranked[1].distance - best.distance >= self.margin
        known = best.distance <= self.tau and clear
        return Match(best.person if known else None, best.distance, self.tau, known)


def identify_rule(
    table: Sequence[Sequence[float]] | None,
    comparisons: int,
    strangers_accepted: float,
    fallback_tau: float,
    margin: float = 0.0,
    fixed_tau: float | None = None,
) -> Rule:
    """The rule for a gallery of ``comparisons`` embeddings (see the module doc).
    ``fixed_tau`` (the config's ``[recognition] tau``) overrides the computed one."""
    if fixed_tau is not None:
        return Rule(fixed_tau, margin)
    if not table:
        return Rule(fallback_tau, margin)
    return Rule(tau_for_far(table, per_comparison_far(strangers_accepted, comparisons)), margin)
