"""Verification accuracy from vectors, the same code for every system: vectors in,
figures out (the open set is ``openset.py``).

:func:`pair_figures`: the LFW pairs protocol (``model_export.metrics.verification_report``:
k-fold accuracy, TAR at FAR 1e-3, AUC) on each system's own score, the accuracy at the
system's own threshold (edge-face: the bundle's ``tau.verify``; a peer: its documented
one), each rate with its count of pairs and a 95% Wilson interval (pairs are the trials:
LFW's View 2 draws each pair independently), and every genuine and impostor distance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import intervals
import numpy as np
from numpy.typing import NDArray

from model_export.data import Pair
from model_export.metrics import verification_report

Run = dict[str, Any]  # a worker's .npz: paths, centre, largest, n_faces, no_face, ...


def pair_distance(
    a: NDArray[np.float64], b: NDArray[np.float64], metric: str
) -> NDArray[np.float64]:
    if metric == "cosine":
        na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        return np.asarray(1.0 - (a * b).sum(1) / np.maximum(na * nb, 1e-12))
    return np.asarray(np.linalg.norm(a - b, axis=1))


def pair_figures(run: Run, pairs: list[Pair], metric: str, threshold: float) -> dict[str, Any]:
    index = {Path(p): i for i, p in enumerate(run["paths"])}
    ok = ~run["unreadable"]
    usable = [p for p in pairs if ok[index[p.left]] and ok[index[p.right]]]
    a = run["centre"][[index[p.left] for p in usable]]
    b = run["centre"][[index[p.right] for p in usable]]
    d = pair_distance(a, b, metric)
    same = np.array([p.same for p in usable])
    figures: dict[str, Any] = verification_report(d, same, np.array([p.fold for p in usable]))
    photos = sorted({index[p.left] for p in pairs} | {index[p.right] for p in pairs})
    n, genuine = len(usable), int(same.sum())
    right_at = int(((d <= threshold) == same).sum())
    figures |= {
        "pairs": n,
        "threshold": threshold,
        "accuracy_at_threshold": right_at / n,
        # k-fold accuracy: the folds' mean; with equal folds, right pairs over all pairs
        "accuracy_ci": intervals.rate(round(figures["accuracy_mean"] * n), n),
        "at_threshold_ci": intervals.rate(right_at, n),
        "tar_ci": intervals.rate(round(figures["tar_at_far"] * genuine), genuine),
        "photos": len(photos),
        "no_face": int(run["no_face"][photos].sum()),
        "unreadable": int(run["unreadable"][photos].sum()),
        "genuine": [round(float(x), 4) for x in d[same]],
        "impostor": [round(float(x), 4) for x in d[~same]],
    }
    return figures
