"""The bundle's open-set table (the manifest's ``identify``) and how it is read: per
gallery size and target share of strangers named, the tau that gives it, measured at
build time on simulated galleries (``model_export.impostors``); with a tau per domain
(a camera's light and lens, or a collection: ``lfw``, ``cfp``) besides the blended one,
mixed for each probe by the domains of its nearest cohort faces (``edge.decision``)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Taus = tuple[tuple[float, ...], ...]  # [size][rate]


def _increasing(name: str, values: tuple[float, ...], low: float, high: float) -> None:
    if not values:
        raise ValueError(f"{name}: expected at least one value")
    if any(not (low < v < high) for v in values):
        raise ValueError(f"{name}: every value must be in ({low:g}, {high:g}), got {list(values)}")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"{name}: must be strictly increasing, got {list(values)}")


def _check_taus(name: str, tau: Taus, shape: tuple[int, int]) -> None:
    if len(tau) != shape[0] or any(len(row) != shape[1] for row in tau):
        raise ValueError(f"{name}: expected {shape[0]} rows of {shape[1]} values (sizes x rates)")
    if any(not (0 < t < math.inf) for row in tau for t in row):
        raise ValueError(f"{name}: every value must be a positive number")


def _rows(rows: Any) -> Taus:
    return tuple(tuple(float(v) for v in row) for row in rows)


@dataclass(frozen=True, slots=True)
class OpenSetTable:
    """The manifest's ``identify`` table: per gallery size and target share of strangers
    named, the tau that gives it (``tau[size][rate]``, the domains blended) with
    ``margin``; ``by_domain``: each domain's own taus, same shape (none: one rule for
    every probe). Checked on load."""

    margin: float
    sizes: tuple[float, ...]
    rates: tuple[float, ...]
    tau: Taus
    by_domain: tuple[tuple[str, Taus], ...] = ()

    def __post_init__(self) -> None:
        if not (0 <= self.margin < math.inf):
            raise ValueError(f"margin: expected a number >= 0, got {self.margin}")
        _increasing("sizes", self.sizes, 0.5, math.inf)
        _increasing("rates", self.rates, 0.0, 1.0)
        shape = (len(self.sizes), len(self.rates))
        _check_taus("tau", self.tau, shape)
        for name, taus in self.by_domain:
            _check_taus(f"tau_by_domain.{name}", taus, shape)

    @staticmethod
    def from_json(table: Mapping[str, Any]) -> OpenSetTable:
        """The table from the manifest's JSON (other keys, the figures, are ignored)."""
        domains = table.get("tau_by_domain") or {}
        if not isinstance(domains, Mapping):
            raise ValueError("tau_by_domain: expected an object of domain -> taus")
        return OpenSetTable(
            float(table["margin"]),
            tuple(float(v) for v in table["sizes"]),
            tuple(float(v) for v in table["rates"]),
            _rows(table["tau"]),
            tuple((str(name), _rows(rows)) for name, rows in sorted(domains.items())),
        )

    def taus(self, domain: str | None = None) -> Taus:
        """The domain's taus; the blended ones for None or a domain without its own."""
        return dict(self.by_domain).get(domain, self.tau) if domain else self.tau

    def tau_for(
        self, comparisons: float, strangers_accepted: float, domain: str | None = None
    ) -> float:
        """tau for a gallery of this size (``edge.decision.gallery_size``) at a target
        share of strangers accepted, interpolated in logs, from the domain's taus
        (:meth:`taus`). Past the largest size the last step goes on, never looser (a
        stranger meets more faces); a rate outside is clamped."""
        sizes = np.log10(self.sizes)
        taus = np.asarray(self.taus(domain))  # [size][rate]
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
