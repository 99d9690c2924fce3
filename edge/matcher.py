"""Matching a face against the gallery, and the decision: a name, or unknown.

One-to-one verification uses the bundle's ``tau.verify``. Identification against a
gallery is another problem: a stranger compared with N enrolled faces has N chances of a
false match, so a threshold that is safe for one comparison names strangers far too
often (dlib's 0.6 named 81% of strangers against 200 enrolled people, see
docs/RECOGNITION.md). The default rule therefore has two parts, both measured by the
bundle at build time on simulated galleries of LFW people (model_export.impostors):
a margin (the nearest person must beat the second-nearest by it: a stranger tends to be
about as far from several people, an enrolled person clearly nearest to themself), and
a tau that keeps the share of strangers given a name at ``strangers_accepted`` (1%) for
a gallery of this size. A bigger gallery gets a stricter tau, automatically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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


def open_set_tau(table: dict[str, Any], comparisons: int, strangers_accepted: float) -> float:
    """tau for a gallery of ``comparisons`` embeddings at a target share of strangers
    accepted, interpolated (in logs) in the bundle's simulated table; clamped to it."""
    sizes = np.log10(np.asarray(table["sizes"], float))
    taus = np.asarray(table["tau"], float)  # [size][rate]
    n = math.log10(max(1, comparisons))
    by_rate = [float(np.interp(n, sizes, taus[:, j])) for j in range(taus.shape[1])]
    return float(np.interp(math.log10(strangers_accepted), np.log10(table["rates"]), by_rate))


def identify_rule(
    open_set: dict[str, Any] | None,
    comparisons: int,
    strangers_accepted: float,
    fallback_tau: float,
    margin: float | None = None,
    fixed_tau: float | None = None,
) -> Rule:
    """The rule for a gallery of ``comparisons`` embeddings (see the module doc): the
    bundle's margin and the tau that keeps strangers accepted at the target. The config's
    ``[recognition] tau`` and ``margin`` override them."""
    if open_set:
        m = open_set["margin"] if margin is None else margin
        tau = (
            open_set_tau(open_set, comparisons, strangers_accepted)
            if fixed_tau is None
            else fixed_tau
        )
        return Rule(tau, float(m))
    return Rule(fallback_tau if fixed_tau is None else fixed_tau, margin or 0.0)
