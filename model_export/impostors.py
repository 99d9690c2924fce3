"""How strangers and enrolled people score against galleries of every size, measured at
build time so the device can choose its identification rule (edge.decision).

From LFW people who are not in the evaluation pairs (one or two photos each), many
galleries of N people are simulated: the first photo of N people is enrolled (those with
a second photo always among them, being few), the second photos of those people are
known probes, the first photos of everyone else are strangers. For each margin (the nearest person must beat the second by it) and each
target share of strangers accepted, the tau that gives it is read off the strangers'
distances, and the share of known probes then named correctly is measured. The margin
that names the most people correctly at 1% strangers accepted becomes the bundle's.

With a cohort (the build's default: the first photos themselves, shipped in the bundle),
every distance is first divided by its probe's cohort scale, so the table's taus and
margins are in cohort scores (edge.decision): the same tau then names about the same
share of strangers on another camera or collection, where everyone's distances shrink or
grow together (research/openset_rules.py measured it on select people).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from edge.decision import cohort_scale, distance
from model_export.metrics import threshold_at_far

SIZES = [1, 3, 10, 30, 100, 300, 1000]
RATES = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]
MARGINS = [0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12]
MIN_PEOPLE = 110  # the margin is chosen on galleries of 10 people and more
COHORT_K = 50  # a probe is judged against its 50 nearest cohort faces (research/openset_rules)


def _two_nearest(
    d: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
    """Per row: nearest distance, second-nearest (inf if none), index of the nearest."""
    idx = np.argsort(d, axis=1)[:, :2]
    d1 = np.take_along_axis(d, idx[:, :1], 1)[:, 0]
    d2 = np.take_along_axis(d, idx[:, 1:2], 1)[:, 0] if d.shape[1] > 1 else np.full(len(d), np.inf)
    return d1, d2, idx[:, 0]


def leave_one_out_scales(
    probes: NDArray[np.float32], cohort: NDArray[np.float32], metric: str, k: int
) -> NDArray[np.float64]:
    """Each probe's cohort scale (``edge.decision.cohort_scale``) with its own person's
    face left out of the cohort: probe i is person i, who is cohort face i."""
    d = distance(probes, cohort, metric).astype(np.float64)
    d[np.arange(len(probes)), np.arange(len(probes))] = np.inf
    return cohort_scale(d, k)


def open_set_table(
    first: NDArray[np.float32],
    second: NDArray[np.float32],
    metric: str,
    reps: int = 8,
    seed: int = 0,
    cohort: NDArray[np.float32] | None = None,
    cohort_k: int = COHORT_K,
) -> dict[str, object]:
    """``first``: one embedding per person (P people); ``second``: another photo of the
    first Q of them. Returns the chosen margin and its tau for every (gallery size, rate).
    With ``cohort`` (row i: person i's face, as the bundle ships it), the table is in
    cohort scores (``edge.decision``): every distance divided by its probe's scale, its
    own person left out of the cohort (no one at a door is in it)."""
    rng = np.random.default_rng(seed)
    p, q = len(first), len(second)
    if p < MIN_PEOPLE or q < 10:
        raise ValueError(
            f"{p} people ({q} with a second photo) to simulate galleries with: at least "
            f"{MIN_PEOPLE} (10) are needed, so that galleries of 10 leave 100 strangers"
        )
    d_first = distance(first, first, metric).astype(np.float64)
    d_second = distance(second, first, metric).astype(np.float64)
    if cohort is not None:
        d_first /= leave_one_out_scales(first, cohort, metric, cohort_k)[:, None]
        d_second /= leave_one_out_scales(second, cohort, metric, cohort_k)[:, None]
    sizes = [n for n in SIZES if n <= p - 100]
    pooled: dict[int, dict[str, list[NDArray]]] = {}
    for n in sizes:
        acc: dict[str, list[NDArray]] = {"s1": [], "s2": [], "k1": [], "k2": [], "ok": []}
        for _ in range(reps):
            # the people with a second photo go in first (they are few), the rest at random
            with_second = rng.permutation(q)[: min(n, q)]
            others = rng.choice(np.arange(q, p), n - len(with_second), replace=False)
            gallery = np.concatenate([with_second, others])
            outside = np.setdiff1d(np.arange(p), gallery)
            s1, s2, _ = _two_nearest(d_first[np.ix_(outside, gallery)])
            known = gallery[gallery < q]
            k1, k2, top = _two_nearest(d_second[np.ix_(known, gallery)])
            for key, value in (
                ("s1", s1),
                ("s2", s2),
                ("k1", k1),
                ("k2", k2),
                ("ok", gallery[top] == known),
            ):
                acc[key].append(value)
        pooled[n] = acc
    results = {}
    for m in MARGINS:
        taus, correct = [], []
        for n in sizes:
            a = {k: np.concatenate(v) for k, v in pooled[n].items()}
            effective = np.where(a["s2"] - a["s1"] >= m, a["s1"], np.inf)
            cap = float(np.median(a["s1"]))  # never accept a face farther than a typical stranger
            row = [min(threshold_at_far(effective, rate), cap) for rate in RATES]
            taus.append(row)
            tau1 = row[RATES.index(0.01)]
            named = a["ok"] & (a["k1"] <= tau1) & (a["k2"] - a["k1"] >= m)
            correct.append(float(named.mean()) if len(named) else 0.0)
        results[m] = (taus, correct)
    best = max(
        MARGINS,
        key=lambda m: float(
            np.mean([c for n, c in zip(sizes, results[m][1], strict=True) if n >= 10])
        ),
    )
    return {
        "margin": best,
        "sizes": sizes,
        "rates": RATES,
        "tau": [[round(t, 5) for t in row] for row in results[best][0]],
        "correct_at_1pct": {str(m): [round(c, 4) for c in results[m][1]] for m in MARGINS},
        "people": p,
        "with_second_photo": q,
        "reps": reps,
        **(
            {"score": f"distance / mean of the {cohort_k} nearest cohort distances"}
            if cohort is not None
            else {}
        ),
    }
