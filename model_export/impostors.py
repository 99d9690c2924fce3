"""How strangers and enrolled people score against galleries of every size, measured at
build time so the device can choose its identification rule (edge.decision).

From the calibrate people (one or two photos each), many galleries of N people are
simulated within each domain (LFW, CFP): the first photo of N people is enrolled (those
with a second photo always among them, being few), the second photos of those people are
known probes, the first photos of everyone else of that domain are strangers, and so are
their further photos when the build gives them (``more``: CFP's few people then give ten
times the strangers' searches, so the 1% tau rests on more than a handful of faces). For each
margin (the nearest person must beat the second by it) and each target share of
strangers accepted, the tau that gives it is read off the strangers' distances, at a lower
confidence bound over resamples of the strangers by person (:func:`bootstrap_taus`: a
domain of a few dozen strangers gets a stricter tau than its quantile), and the shares of
known probes then named correctly and named wrong are measured. The margin naming the
most correctly less ten times the named wrong at 1% becomes the bundle's
(:func:`choose_margin`). Each domain's taus are shipped (``tau_by_domain``; a smaller
domain's continued past its sizes, :func:`continued`) beside their :func:`blend`: the
device mixes them for each probe by the domains of its nearest cohort faces
(edge.decision; chosen on select people, research/domain_tau.py).

With a cohort (the build's default: every photo of these people, shipped in the bundle),
every distance is first divided by its probe's cohort scale, so the table's taus and
margins are in cohort scores (edge.decision): the same tau then names about the same
share of strangers on another camera or collection, where everyone's distances shrink or
grow together (research/openset_rules.py measured it on select people). Each simulated
gallery's people and the probe's own person are left out of the cohort the probe is
scaled by (:func:`scales_outside`), as on a device, where the cohort holds none of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge.decision import cohort_scale, distance
from model_export.metrics import threshold_at_far

SIZES = [1, 3, 10, 30, 100, 300, 1000]
RATES = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]
MARGINS = [0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12]
MIN_PEOPLE = 110  # the margin is chosen on galleries of 10 people and more
MIN_DOMAIN = 40  # a second domain's own galleries need this many people
MIN_DOMAIN_STRANGERS = 30  # and leave at least this many strangers outside a gallery
#: a probe is judged against its 20 nearest cohort faces: chosen on select people among 10,
#: 20 and 50 (research/cohort_faces.py; 10 and 20 alike there, 20 the steadier mean)
COHORT_K = 20
#: the margin is the one naming the most known probes right less WRONG_COST times those it
#: names wrong (a wrong name opens a door to the wrong person; an unknown one asks them to
#: look again): counting only the named right picked margin 0 for every bundle, where
#: the student named 0.39% of its calibrate probes wrong (research/domain_cap.py)
WRONG_COST = 10.0
#: each domain's tau is read at this lower confidence bound (:func:`bootstrap_taus`; None:
#: the strangers' quantile itself): CFP's 87 calibrate people leave a few dozen strangers a
#: gallery, whose quantile named 2.65% of new CFP strangers with the student. Chosen on
#: select people among none, 0.8, 0.9 and 0.95: the deepest inside 0.3-2% for every
#: bundle and domain (research/confidence_bound.py, research/OPENSET.md)
CONFIDENCE: float | None = 0.9
DRAWS = 200  # resamples of the strangers for that bound


def _two_nearest(
    d: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp]]:
    """Per row: nearest distance, second-nearest (inf if none), index of the nearest."""
    idx = np.argsort(d, axis=1)[:, :2]
    d1 = np.take_along_axis(d, idx[:, :1], 1)[:, 0]
    d2 = np.take_along_axis(d, idx[:, 1:2], 1)[:, 0] if d.shape[1] > 1 else np.full(len(d), np.inf)
    return d1, d2, idx[:, 0]


def scales_outside(
    to_cohort: NDArray[np.float64],
    rows: NDArray[np.intp],
    left_out: NDArray[np.intp],
    k: int,
    own: NDArray[np.intp] | None = None,
    owner: NDArray[np.intp] | None = None,
) -> NDArray[np.float64]:
    """The cohort scales of probes ``rows`` (row i of ``to_cohort``: probe i's distances to
    the cohort) with the cohort faces of the people ``left_out`` (a simulated gallery's)
    and of each probe's own person left out, as on a device: nobody enrolled there is in
    the bundle's cohort, and nor is whoever stands at the door. Left in, a stranger who
    resembles an enrolled person would have that person among its nearest cohort faces, a
    smaller scale and a larger score: the simulation would see fewer strangers named than
    a device does. ``owner``: each cohort face's person (default: face i is person i);
    ``own``: each probe's person where the probe is not that person's first photo
    (default: ``rows``)."""
    d = to_cohort[rows].copy()
    who = np.arange(d.shape[1]) if owner is None else np.asarray(owner)
    mine = rows if own is None else own
    d[:, np.isin(who, left_out)] = np.inf
    d[who[None, :] == np.asarray(mine)[:, None]] = np.inf
    return cohort_scale(d, k)


def _simulate(
    d_first: NDArray[np.float64],
    d_second: NDArray[np.float64],
    scaled: Scaling | None,
    members: NDArray[np.intp],
    q: int,
    sizes: list[int],
    reps: int,
    rng: np.random.Generator,
    more: Extra | None = None,
) -> dict[int, dict[str, NDArray]]:
    """Galleries of each size drawn from the people ``members`` (indices of ``first``;
    those below ``q`` have a second photo): per size, the strangers' (s1, s2, who: whose
    search, an index of ``first``) and the
    known probes' (k1, k2, right person) over ``reps`` draws. ``scaled``: the distances of
    first and second photos to the cohort, and k. ``more``: further photos of the people,
    each a stranger's search too whenever its person is outside the gallery."""
    mine = np.zeros(len(d_first), bool)
    mine[members] = True
    two, one = members[members < q], members[members >= q]
    out: dict[int, dict[str, NDArray]] = {}
    for n in sizes:
        acc: dict[str, list[NDArray]] = {k: [] for k in ("s1", "s2", "who", "k1", "k2", "ok")}
        for _ in range(reps):
            # the people with a second photo go in first (they are few), the rest at random
            with_second = rng.permutation(two)[: min(n, len(two))]
            others = rng.choice(one, n - len(with_second), replace=False)
            gallery = np.concatenate([with_second, others])
            inside = mine.copy()
            inside[gallery] = False
            outside = np.flatnonzero(inside)
            known = gallery[gallery < q]
            d_out = d_first[np.ix_(outside, gallery)]
            d_known = d_second[np.ix_(known, gallery)]
            if scaled is not None:
                c, k, who = scaled, scaled.k, scaled.owner
                d_out = d_out / scales_outside(c.first, outside, gallery, k, owner=who)[:, None]
                d_known = d_known / scales_outside(c.second, known, gallery, k, owner=who)[:, None]
            if more is not None:
                rows = np.flatnonzero(inside[more.owner])
                d_more = more.to_first[np.ix_(rows, gallery)]
                if scaled is not None:
                    d_more = d_more / scales_outside(more.to_cohort, rows, gallery, scaled.k,
                                                     own=more.owner[rows],
                                                     owner=scaled.owner)[:, None]  # fmt: skip
                d_out = np.concatenate([d_out, d_more])
            who = outside if more is None else np.concatenate([outside, more.owner[rows]])
            s1, s2, _ = _two_nearest(d_out)
            k1, k2, top = _two_nearest(d_known)
            for key, value in (("s1", s1), ("s2", s2), ("who", who), ("k1", k1), ("k2", k2),
                               ("ok", gallery[top] == known)):  # fmt: skip
                acc[key].append(value)
        out[n] = {k: np.concatenate(v) for k, v in acc.items()}
    return out


@dataclass(frozen=True, slots=True)
class Scaling:
    """The first and second photos' distances to the cohort, its ``k``, and each cohort
    face's person (an index of the first photos; None: face i is person i)."""

    first: NDArray[np.float64]
    second: NDArray[np.float64]
    k: int
    owner: NDArray[np.intp] | None = None


@dataclass(frozen=True, slots=True)
class Extra:
    """Further stranger photos: their distances to every first photo and to the cohort,
    and whose they are (an index of the first photos)."""

    to_first: NDArray[np.float64]
    to_cohort: NDArray[np.float64]
    owner: NDArray[np.intp]


def bootstrap_taus(
    values: NDArray[np.float64],
    who: NDArray[np.intp],
    rates: list[float],
    confidence: float,
    rng: np.random.Generator,
    draws: int = DRAWS,
) -> list[float]:
    """Per rate, the tau accepting that share of the strangers' ``values`` (as
    :func:`threshold_at_far`), read at a one-sided lower bound: the ``1 - confidence``
    quantile of the taus of ``draws`` resamples of the strangers by person (``who``: each
    value's person; a person's searches are not independent of each other). A domain of
    many strangers moves little; one of a few dozen, whose own quantile is mostly luck,
    gets a stricter tau, so that its share of new strangers named stays at the target
    with that confidence rather than half the time."""
    order = np.argsort(values, kind="stable")
    v = values[order]
    _, person = np.unique(np.asarray(who)[order], return_inverse=True)
    people = int(person.max()) + 1
    taus = np.empty((draws, len(rates)))
    for b in range(draws):
        cum = np.cumsum(np.bincount(rng.integers(0, people, people), minlength=people)[person])
        allowed = np.floor(np.asarray(rates) * cum[-1])
        upper = v[np.minimum(np.searchsorted(cum, allowed, side="right"), len(v) - 1)]
        taus[b] = np.where(allowed >= cum[-1], v[-1], np.nextafter(upper, -np.inf))
    return [float(t) for t in np.quantile(taus, 1 - confidence, axis=0)]


def _taus(
    sim: dict[int, dict[str, NDArray]], margin: float, confidence: float | None = None,
    seed: int = 0,
) -> dict[int, list[float]]:  # fmt: skip
    """Per gallery size, the tau for every rate of RATES at ``margin``: the strangers'
    quantile, or with ``confidence`` its lower bound (:func:`bootstrap_taus`)."""
    out = {}
    for n, a in sim.items():
        effective = np.where(a["s2"] - a["s1"] >= margin, a["s1"], np.inf)
        cap = float(np.median(a["s1"]))  # never accept a face farther than a typical stranger
        if confidence is None:
            taus = [threshold_at_far(effective, rate) for rate in RATES]
        else:
            rng = np.random.default_rng([seed, n])
            taus = bootstrap_taus(effective, a["who"], RATES, confidence, rng)
        out[n] = [min(t, cap) for t in taus]
    return out


def _named(
    sim: dict[int, dict[str, NDArray]], taus: dict[int, list[float]], m: float
) -> tuple[list[float], list[float]]:
    """Per size, the shares of known probes named correctly and named wrong (as someone
    else) at the 1% tau and margin ``m``."""
    right, wrong = [], []
    for n, a in sim.items():
        tau1 = taus[n][RATES.index(0.01)]
        named = (a["k1"] <= tau1) & (a["k2"] - a["k1"] >= m)
        right.append(float((named & a["ok"]).mean()) if len(named) else 0.0)
        wrong.append(float((named & ~a["ok"]).mean()) if len(named) else 0.0)
    return right, wrong


def choose_margin(
    sim: dict[int, dict[str, NDArray]], wrong_cost: float, confidence: float | None = None,
    seed: int = 0,
) -> tuple[float, dict[float, tuple[list[float], list[float]]]]:  # fmt: skip
    """The margin of MARGINS naming the most known probes right less ``wrong_cost`` times
    those named wrong, at each margin's own 1% taus, averaged over the galleries of 10
    people and more; and what each margin names (:func:`_named`)."""
    seen = {m: _named(sim, _taus(sim, m, confidence, seed), m) for m in MARGINS}
    big = [i for i, n in enumerate(sim) if n >= 10] or [len(sim) - 1]

    def worth(m: float) -> float:
        right, wrong = seen[m]
        return float(np.mean([right[i] - wrong_cost * wrong[i] for i in big]))

    return max(MARGINS, key=worth), seen


def continued(
    reference: dict[int, list[float]], other: dict[int, list[float]]
) -> dict[int, list[float]]:
    """The other domain's taus at every size of the reference's: sizes it has too few
    people for take the reference's tau moved by the other's mean difference over its
    galleries of 10 people and more (a domain whose strangers come nearer at 30 people
    still does at 300; a mean, because one size's quantile over a few dozen strangers is
    noisy)."""
    common = [n for n in other if n in reference]
    shared = [n for n in common if n >= 10] or [max(common)]
    gap = np.array([np.subtract(other[n], reference[n]) for n in shared]).mean(axis=0)
    return {n: list(other.get(n, list(np.add(row, gap)))) for n, row in reference.items()}


def blend(
    reference: dict[int, list[float]], other: dict[int, list[float]]
) -> dict[int, list[float]]:
    """Per size and rate, the mean of two domains' taus (the other's :func:`continued`):
    the rule's target holds on average over the calibration domains, one rule for both,
    what a probe of no known domain is judged by. Chosen on select people
    (``research.bundle_rule``): the strictest domain's tau instead named almost no
    stranger and left most known people unknown for every bundle; LFW's alone named
    several times its target on CFP."""
    theirs = continued(reference, other)
    return {n: [(r + o) / 2 for r, o in zip(row, theirs[n], strict=True)] for n, row in reference.items()}  # fmt: skip


def monotone(rows: list[list[float]]) -> NDArray[np.float64]:
    """A table of taus [size][rate] made consistent, never looser: a larger gallery never
    gets a larger tau, and a smaller share of strangers never a larger one (a few strangers
    make a quantile noisy; the stricter neighbour wins)."""
    t = np.minimum.accumulate(np.asarray(rows, np.float64), axis=0)
    return np.minimum.accumulate(t[:, ::-1], axis=1)[:, ::-1]


def open_set_table(
    first: NDArray[np.float32],
    second: NDArray[np.float32],
    metric: str,
    reps: int = 8,
    seed: int = 0,
    cohort: NDArray[np.float32] | None = None,
    cohort_k: int = COHORT_K,
    domains: NDArray[np.str_] | None = None,
    more: tuple[NDArray[np.float32], NDArray[np.intp]] | None = None,
    cohort_owner: NDArray[np.intp] | None = None,
    wrong_cost: float = WRONG_COST,
    confidence: float | None = CONFIDENCE,
) -> dict[str, object]:
    """``first``: one embedding per person (P people); ``second``: another photo of the
    first Q of them. Returns the chosen margin and its tau for every (gallery size, rate).
    With ``cohort`` (the faces the bundle ships; ``cohort_owner``: each one's person, an
    index of ``first``; default: row i is person i), the table is in cohort scores
    (``edge.decision``): every distance divided by its probe's scale, the probe's own
    person and the gallery's people left out of the cohort (as on a device).

    ``domains`` (one label per person, e.g. ``lfw`` and ``cfp``): galleries are simulated
    within each domain (a camera's enrolled people and its strangers come from the same
    light and lens; strangers of another domain against a mixed gallery are far from
    everyone and make the pooled tau too loose): each domain's taus (``tau_by_domain``,
    with two domains or more) and their blend (``tau``, :func:`blend`: a probe of no
    known domain). The margin, one for every domain, is chosen on the domain with the
    most people; a domain with fewer than ``MIN_DOMAIN`` people is only part of the
    cohort. Every table is then made :func:`monotone`."""
    rng = np.random.default_rng(seed)
    p, q = len(first), len(second)
    if p < MIN_PEOPLE or q < 10:
        raise ValueError(
            f"{p} people ({q} with a second photo) to simulate galleries with: at least "
            f"{MIN_PEOPLE} (10) are needed, so that galleries of 10 leave 100 strangers"
        )
    labels = np.full(p, "all") if domains is None else np.asarray(domains).astype(str)
    d_first = distance(first, first, metric).astype(np.float64)
    d_second = distance(second, first, metric).astype(np.float64)
    scaled = None
    if cohort is not None:
        who = None if cohort_owner is None else np.asarray(cohort_owner, np.intp)
        scaled = Scaling(distance(first, cohort, metric).astype(np.float64),
                         distance(second, cohort, metric).astype(np.float64), cohort_k, who)  # fmt: skip
    extra = None
    if more is not None and len(more[0]):
        vectors, owner = more
        extra = Extra(
            distance(vectors, first, metric).astype(np.float64),
            distance(vectors, cohort if cohort is not None else first, metric).astype(np.float64),
            np.asarray(owner, np.intp),
        )
    names, counts = np.unique(labels, return_counts=True)
    ranked = [str(n) for n, c in sorted(zip(names, counts, strict=True), key=lambda x: -x[1])]
    reference = ranked[0]
    sims: dict[str, dict[int, dict[str, NDArray]]] = {}
    for name in ranked:
        members = np.flatnonzero(labels == name)
        if len(members) < MIN_DOMAIN and name != reference:
            continue
        room = len(members) - (100 if name == reference else MIN_DOMAIN_STRANGERS)
        sizes = [n for n in SIZES if n <= room]
        if sizes and (members < q).sum() >= 1:
            sims[name] = _simulate(d_first, d_second, scaled, members, q, sizes, reps, rng, extra)
    ref = sims[reference]
    best, seen = choose_margin(ref, wrong_cost, confidence, seed)
    sizes = list(ref)
    by_domain = {name: _taus(sim, best, confidence, seed) for name, sim in sims.items()}
    table = by_domain[reference]
    own = {reference: table}
    for name, taus in by_domain.items():
        if name != reference:
            table = blend(table, taus)
            own[name] = continued(by_domain[reference], taus)

    def rounded(rows: dict[int, list[float]]) -> list[list[float]]:
        return [[round(float(t), 5) for t in row] for row in monotone([rows[n] for n in sizes])]

    return {
        "margin": best,
        "sizes": sizes,
        "rates": RATES,
        "tau": rounded(table),
        **({"tau_by_domain": {n: rounded(t) for n, t in own.items()}} if len(own) > 1 else {}),
        "correct_at_1pct": {str(m): [round(c, 4) for c in seen[m][0]] for m in MARGINS},
        "wrong_at_1pct": {str(m): [round(c, 5) for c in seen[m][1]] for m in MARGINS},
        "wrong_cost": wrong_cost,
        "confidence": confidence,
        "domains": {
            name: {
                "people": int((labels == name).sum()),
                "sizes": list(by_domain.get(name, {})),
                "tau_at_1pct": [
                    round(r[RATES.index(0.01)], 5) for r in by_domain.get(name, {}).values()
                ],
            }
            for name in ranked
        },
        "people": p,
        "with_second_photo": q,
        "reps": reps,
        **(
            {"score": f"distance / mean of the {cohort_k} nearest cohort distances"}
            if cohort is not None
            else {}
        ),
    }
