"""The impostor distance distribution: distances between faces of different people,
measured at build time so the device can pick a tau for any gallery size (edge.matcher)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from edge.engine import distance
from model_export.metrics import threshold_at_far

#: false-accept rates the table covers (per comparison)
FARS = [10.0 ** (-k / 4) for k in range(4, 25)]  # 1e-1 ... 1e-6


def impostor_table(
    vectors: NDArray[np.float32], metric: str, min_pairs_below: int = 10
) -> dict[str, object]:
    """(far, tau) rows from every pair of ``vectors`` (one face per person, all different
    people). Rows whose FAR would rest on fewer than ``min_pairs_below`` pairs are left
    out: below that the table has no evidence, and the matcher clamps to its last row."""
    d = distance(vectors, vectors, metric)
    impostors = d[np.triu_indices(len(vectors), k=1)].astype(np.float64)
    floor = min_pairs_below / len(impostors)
    rows = [[far, threshold_at_far(impostors, far)] for far in FARS if far >= floor]
    return {"table": rows, "faces": len(vectors), "pairs": len(impostors), "min_far": floor}
