"""The bundle's open-set table (the manifest's ``identify``) and how it is read: per
gallery size and target share of strangers named, the tau that gives it, measured at
build time on simulated galleries (``model_export.impostors``); with a tau per domain
(a camera's light and lens, or a collection: ``lfw``, ``cfp``) besides the blended one,
for a probe whose nearest cohort faces come from several domains (``edge.decision``):
the tau at which their shares of strangers named, mixed, meet the target
(:meth:`OpenSetTable.mixed_tau`)."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

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

    def by_rate(self, comparisons: float, domain: str | None = None) -> NDArray[np.float64]:
        """The domain's taus (:meth:`taus`) for a gallery of this size
        (``edge.decision.gallery_size``), one per target rate, interpolated in logs. Past
        the largest size the last step goes on, never looser (a stranger meets more
        faces)."""
        sizes = np.log10(self.sizes)
        taus = np.asarray(self.taus(domain))  # [size][rate]
        n = math.log10(max(1, comparisons))
        by_rate = np.array([np.interp(n, sizes, taus[:, j]) for j in range(taus.shape[1])])
        if n > sizes[-1] and len(sizes) > 1:
            slope = np.minimum(0.0, (taus[-1] - taus[-2]) / (sizes[-1] - sizes[-2]))
            by_rate = np.maximum(0.0, taus[-1] + slope * (n - sizes[-1]))
        return by_rate.astype(np.float64)

    def tau_for(
        self, comparisons: float, strangers_accepted: float, domain: str | None = None
    ) -> float:
        """tau for a gallery of this size at a target share of strangers accepted, from
        the domain's taus (:meth:`by_rate`), interpolated in logs; a rate outside the
        table's is clamped."""
        by_rate = self.by_rate(comparisons, domain)
        return float(np.interp(math.log10(strangers_accepted), np.log10(self.rates), by_rate))

    def mixed_tau(
        self, comparisons: float, strangers_accepted: float, domains: tuple[str, ...],
        shares: NDArray[np.floating],
    ) -> NDArray[np.float64]:  # fmt: skip
        """Per row of ``shares`` (a probe's chance of being of each of ``domains``, as the
        domains of its nearest cohort faces say), the loosest tau at which the share of
        strangers it names stays within the target: sum_d share_d F_d(tau) =
        ``strangers_accepted``, F_d the domain's share named at tau (its :meth:`by_rate`
        read backwards, in logs). A whole share of one domain gives that domain's own
        :meth:`tau_for`; a mixed probe's tau sits nearer the stricter domain's, since a
        domain's share named rises by decades past its tau (research/rate_mix.py). A
        target outside the table's rates is clamped, as :meth:`tau_for` clamps it."""
        grid, named = _named(self, float(comparisons), tuple(domains))
        mixed = np.log10(np.atleast_2d(shares) @ named)  # [probe][grid], never falling
        out = np.empty(len(mixed))
        for i, m in enumerate(mixed):
            t = min(max(math.log10(strangers_accepted), m[0]), m[-1])  # within the rates
            j = int(np.searchsorted(m, t, side="right"))  # the first point naming more
            if j == len(grid):  # the top rate: the first point that names it
                out[i] = grid[int(np.searchsorted(m, t, side="left"))]
            else:
                out[i] = grid[j - 1] + (grid[j] - grid[j - 1]) * (t - m[j - 1]) / (m[j] - m[j - 1])
        return out


@functools.lru_cache(maxsize=32)
def _named(table: OpenSetTable, comparisons: float, domains: tuple[str, ...]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """For :meth:`OpenSetTable.mixed_tau`, once per gallery: a grid of taus (every
    domain's, and 64 steps between the extremes) and each domain's share of strangers
    named at each (``[domain][grid]``; clamped to the table's rates outside its taus)."""
    curves = np.maximum.accumulate([table.by_rate(comparisons, d) for d in domains], axis=1)
    grid = np.unique(np.concatenate([curves.ravel(), np.linspace(curves.min(), curves.max(), 64)]))  # fmt: skip
    log_rates = np.log10(table.rates)
    named = np.stack([10 ** np.interp(grid, row, log_rates) for row in curves])
    grid.setflags(write=False)
    named.setflags(write=False)
    return grid, named


def gallery_size(embeddings: int, people: int) -> float:
    """The size the table is read at: sqrt(embeddings x people). It is simulated with one
    photo each; a person's m photos are about sqrt(m) chances for a stranger, not m, on
    select people (research/cohort_faces.py; docs/RECOGNITION.md)."""
    return math.sqrt(max(embeddings, 0) * max(people, 0))
