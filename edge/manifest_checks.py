"""Plausibility of a bundle's decision values: thresholds no honest build writes.

The file hashes protect the models, not the manifest's own numbers: an edited
``tau.identify`` of 2.0 with the open-set table deleted would make the daemon name every
stranger. These checks refuse values that cannot come from a build, measured against the
bundle's own strangers where it has them (the cohort's first faces: one each of many
calibration people, the build puts them first; hashed in the manifest):

- a distance threshold (``tau.verify``, and ``tau.identify`` when the bundle has no
  open-set table) at or beyond 99% of the distances between two cohort strangers would
  call almost every pair of strangers the same person (a weak encoder's best one-to-one
  threshold can pass their median: a quickly trained one did); without a cohort,
  unit-length embeddings give the bound (sqrt 2 in euclidean, 1 in cosine distance);
- an open-set table (cohort scores) whose largest tau reaches the median score of a
  cohort stranger against the others, or that gets looser as the gallery grows or
  stricter as more strangers are allowed, is not a fitted table;
- ``tau.identify`` outside the range of its own table; without a table, a ``tau.identify``
  looser than ``tau.verify`` by more than half (deciding among many faces needs a stricter
  threshold than one-to-one, never a much looser one).

They catch a careless or crude edit, not a careful one: a signature (``[model]
public_key``, edge.signing) is what proves a manifest is the one that was built.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from edge.decision import Cohort, distance

if TYPE_CHECKING:
    from edge.bundle import Manifest

#: slack for the table's monotonicity (fitted quantiles of finite samples wobble a little)
TABLE_SLACK = 0.02
#: without a table: tau.identify may exceed tau.verify by at most this factor
IDENTIFY_OVER_VERIFY = 1.5
#: the most cohort faces the strangers' distances are measured on (the rest add nothing)
MAX_FACES = 400


#: the share of cohort stranger pairs a distance threshold may not reach
STRANGER_QUANTILE = 0.99


def stranger_pairs(cohort: Cohort, metric: str) -> np.ndarray:
    """Distances between the first ``MAX_FACES`` cohort faces, different people (inf on the
    diagonal), computed once for both checks below."""
    v = cohort.vectors[:MAX_FACES]
    d = distance(v, v, metric).astype(np.float64)
    np.fill_diagonal(d, np.inf)
    return d


def stranger_distance(d: np.ndarray, quantile: float = STRANGER_QUANTILE) -> float:
    """The ``quantile`` of the distances between two different cohort faces."""
    return float(np.quantile(d[np.isfinite(d)], quantile))


def stranger_score(d: np.ndarray, k: int) -> float:
    """The median cohort score of one cohort face against another: its distance divided
    by the mean of the probe's k nearest other cohort faces (as edge.decision scores)."""
    k = min(k, d.shape[0] - 1)
    scale = np.sort(d, axis=1)[:, :k].mean(axis=1)
    scores = d / np.maximum(scale, 1e-12)[:, None]
    return float(np.median(scores[np.isfinite(scores)]))


def unit_bound(manifest: Manifest) -> float | None:
    """The distance of two orthogonal faces when embeddings are unit length (else None)."""
    if manifest.encoder.metric == "cosine":
        return 1.0
    return math.sqrt(2.0) if manifest.encoder.l2_normalize else None


def problems(manifest: Manifest, cohort: Cohort | None) -> list[str]:
    """What is implausible in the manifest's decision values (empty: nothing)."""
    found: list[str] = []
    metric = manifest.encoder.metric
    table = manifest.identify
    pairs = (
        stranger_pairs(cohort, metric) if cohort is not None and len(cohort.vectors) >= 2 else None
    )
    if cohort is not None and pairs is not None:
        limit: float | None = stranger_distance(pairs)
        where = (
            f"99% of the distances between two of its {cohort.vectors.shape[0]} cohort strangers"
        )
    else:
        limit = unit_bound(manifest)
        where = "the distance of two unrelated unit-length faces"
    taus = [("tau.verify", manifest.tau.verify)]
    if table is None or cohort is None:
        taus.append(("tau.identify", manifest.tau.identify))
    for name, value in taus:
        if not math.isfinite(value):
            found.append(f"{name} is {value}")
        elif limit is not None and value >= limit:
            found.append(f"{name} {value:.4g} is at or beyond {where} ({limit:.4g})")
    if table is None:
        if manifest.tau.identify > IDENTIFY_OVER_VERIFY * manifest.tau.verify:
            found.append(
                f"tau.identify {manifest.tau.identify:.4g} is looser than tau.verify "
                f"{manifest.tau.verify:.4g} by more than half"
            )
        return found
    top = stranger_score(pairs, cohort.k) if cohort is not None and pairs is not None else None
    for name, taus in [("", table.tau), *((f" ({d}'s taus)", t) for d, t in table.by_domain)]:
        found += _table_problems(f"the open-set table{name}", np.asarray(taus, np.float64), top, limit, where)  # fmt: skip
    values = np.asarray(table.tau, dtype=np.float64)  # [size][rate]
    low, high = float(values.min()), float(values.max())
    slack = TABLE_SLACK * max(high, 1e-9)
    if not low - slack <= manifest.tau.identify <= high + slack:
        found.append(
            f"tau.identify {manifest.tau.identify:.4g} is outside its open-set table "
            f"({low:.4g} to {high:.4g})"
        )
    return found


def _table_problems(
    what: str, values: np.ndarray, top: float | None, limit: float | None, where: str
) -> list[str]:
    """What is implausible in one table of taus [size][rate]: ``top`` the median cohort
    stranger's score (cohort scores), else ``limit`` a distance no tau may reach."""
    found = []
    high = float(values.max())
    if top is not None and high >= top:
        found.append(f"{what}'s loosest tau {high:.4g} reaches the median score of a cohort stranger ({top:.4g})")  # fmt: skip
    elif top is None and limit is not None and high >= limit:
        found.append(f"{what}'s loosest tau {high:.4g} is at or beyond {where}")
    slack = TABLE_SLACK * max(high, 1e-9)
    if (np.diff(values, axis=1) < -slack).any():
        found.append(f"{what} gets stricter as more strangers are allowed")
    if (np.diff(values, axis=0) > slack).any():
        found.append(f"{what} gets looser as the gallery grows")
    return found
