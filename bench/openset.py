"""Open-set identification from vectors, the same code for every system, named as the
standard names it (ISO/IEC 19795-1; NIST FRVT 1:N):

- a *mated search* is a photo of an enrolled person not used to enroll them; a
  *non-mated search* a photo of a stranger (a person never enrolled);
- **DIR**, the detection-and-identification rate: mated searches given the right name;
- **FPIR**, the false-positive identification rate: non-mated searches given a name;
- the **wrong-name rate**: mated searches given someone else's name; the rest of the
  mated searches are left unknown.

Enrollment: the first ``ENROLL`` photos of each person, a photo kept when the system's
detector finds exactly one face in it (face_recognition's own example does the same); a
person with none kept is left out. A search is the photo's largest face; a search
without a face is unknown. The nearest person is the smallest distance over their
embeddings; a rule names them when it is within tau and, with a margin, nearer than the
second person by at least the margin (``edge.decision.Rule``, the device's code).

For each system's own rules: the four rates with 95% intervals from a bootstrap by
person (``intervals.by_person``). **DIR at FPIR 1%**: tau set on these strangers for 1%
named (the standard's operating point: no system ships it, it has seen the strangers),
its interval from a bootstrap by person that sets tau again in every resample. The
DIR-FPIR trade-off (tau swept over these strangers) for the plot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import intervals
import numpy as np
from numpy.typing import NDArray
from report_data import ENROLL, OpenSetPlan

from edge.config import RecognitionConfig
from edge.decision import Candidate, Rule, gallery_size

Run = dict[str, Any]  # a worker's .npz: paths, largest, n_faces, ...
Ranked = list[tuple[str, float]]
TARGETS = (0.01,)  # the FPIRs at which DIR is read off
CURVE_POINTS = 40


def distances(
    gallery: NDArray[np.float64], vector: NDArray[np.float64], metric: str
) -> NDArray[np.float64]:
    if metric == "cosine":
        g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
        return np.asarray(1.0 - g @ (vector / max(float(np.linalg.norm(vector)), 1e-12)))
    return np.asarray(np.linalg.norm(gallery - vector, axis=1))


class Searches:
    """Every search of one plan against one system's gallery: the two nearest people."""

    def __init__(
        self,
        run: Run,
        plan: OpenSetPlan,
        metric: str,
        near: Near | None = None,
    ) -> None:
        """``near``: a probe's cohort scale, by which its distances are divided (the
        scores of a bundle with a cohort), and its domain shares (``Cohort.near``; kept
        per search in ``m_shares``, ``s_shares``); None: distances."""
        index = {Path(p): i for i, p in enumerate(run["paths"])}
        names, vectors, self.refused = [], [], 0
        for person, photos in plan.enrolled.items():
            for photo in photos[:ENROLL]:
                i = index[photo]
                if run["n_faces"][i] == 1:
                    names.append(person)
                    vectors.append(run["largest"][i])
                else:
                    self.refused += 1
        self.embeddings = len(vectors)
        people = sorted(set(names))
        self.people = people
        owner = np.array([people.index(n) for n in names])
        gallery = np.stack(vectors)

        shares: dict[Path, NDArray[np.float64] | None] = {}

        def rank(path: Path) -> Ranked:
            i = index[path]
            if run["n_faces"][i] == 0 or np.isnan(run["largest"][i]).any():
                return []
            vector = np.asarray(run["largest"][i], np.float64)
            d = distances(gallery, vector, metric)
            if near is not None:
                scale, shares[path] = near(vector)
                d = d / scale
            best = np.full(len(people), np.inf)
            np.minimum.at(best, owner, d)
            order = np.argsort(best, kind="stable")[:2]
            return [(people[j], float(best[j])) for j in order]

        poses = run.get("largest_yaw")

        def turned(photo: Path) -> float:
            return float("nan") if poses is None else float(poses[index[photo]])

        mated = [(p, photo) for p in people for photo in plan.enrolled[p][ENROLL:]]
        self.m_yaw = np.array([turned(photo) for _, photo in mated], float)
        self.truth = [p for p, _ in mated]
        self.mated = [rank(photo) for _, photo in mated]
        self.m_shares = [shares.get(photo) for _, photo in mated]
        self.mated_person = np.array([people.index(p) for p in self.truth], int)
        strangers = sorted(plan.strangers)
        pairs = [(i, photo) for i, s in enumerate(strangers) for photo in plan.strangers[s]]
        self.non_mated = [rank(photo) for _, photo in pairs]
        self.s_shares = [shares.get(photo) for _, photo in pairs]
        self.s_yaw = np.array([turned(photo) for _, photo in pairs], float)
        self.stranger_person = np.array([i for i, _ in pairs], int)
        self.stranger_people = len(strangers)
        self.without_face = sum(not r for r in self.mated) + sum(not r for r in self.non_mated)
        # arrays for the sweeps: nearest distance, gap to the second, right person
        self.m_d1, self.m_gap = _arrays(self.mated)
        self.m_right = np.array(
            [bool(r) and r[0][0] == t for t, r in zip(self.truth, self.mated, strict=True)]
        )
        self.s_d1, self.s_gap = _arrays(self.non_mated)


def _arrays(ranked: list[Ranked]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    d1 = np.array([r[0][1] if r else np.inf for r in ranked], float)
    gap = np.array([(r[1][1] - r[0][1]) if len(r) > 1 else np.inf for r in ranked], float)
    return d1, gap


def _per_person(hit: NDArray[np.bool_], person: NDArray[np.int_], people: int) -> intervals.Rate:
    k = np.bincount(person, weights=hit.astype(float), minlength=people)
    n = np.bincount(person, minlength=people)
    keep = n > 0
    return intervals.by_person(k[keep].round().astype(int), n[keep])


def score(
    rule: Rule,
    s: Searches,
    max_yaw: float = float("inf"),
    probe: Callable[[NDArray[np.float64]], Rule] | None = None,
) -> dict[str, Any]:
    """DIR, wrong name, left unknown and FPIR of one rule, each with its interval; a face
    turned further than ``max_yaw`` (the device's pose gate) is never named. ``probe``:
    the rule for a probe of these domain shares (the device's tau per probe), where the
    search has them; ``tau`` is then the mean of the taus the searches were judged by."""
    used: list[float] = []

    def decide(ranked: Ranked, yaw: float, shares: NDArray[np.float64] | None) -> str | None:
        if not ranked or abs(yaw) > max_yaw:  # a yaw not measured (nan) passes
            return None
        own = rule if probe is None or shares is None else probe(shares)
        used.append(own.tau)
        return own.decide([Candidate(p, d) for p, d in ranked]).person

    named = [decide(*a) for a in zip(s.mated, s.m_yaw, s.m_shares, strict=True)]
    right = np.array([n == t for n, t in zip(named, s.truth, strict=True)])
    wrong = np.array([n is not None and n != t for n, t in zip(named, s.truth, strict=True)])
    unknown = np.array([n is None for n in named])
    accepted = np.array(
        [decide(*a) is not None for a in zip(s.non_mated, s.s_yaw, s.s_shares, strict=True)]
    )
    people = len(s.people)
    mixed = probe is not None and bool(used)
    return {
        "tau": float(np.mean(used)) if mixed else rule.tau,
        **({"tau_per_probe": [float(min(used)), float(max(used))]} if mixed else {}),
        "margin": rule.margin,
        **({"max_yaw": max_yaw} if np.isfinite(max_yaw) else {}),
        "dir": _per_person(right, s.mated_person, people),
        "wrong": _per_person(wrong, s.mated_person, people),
        "unknown": _per_person(unknown, s.mated_person, people),
        "fpir": _per_person(accepted, s.stranger_person, s.stranger_people),
    }


def tau_at(
    d1: NDArray[np.float64],
    gap: NDArray[np.float64],
    weights: NDArray[np.float64],
    target: float,
    margin: float,
) -> float:
    """The largest tau naming at most ``target`` of the (weighted) non-mated searches."""
    eligible = np.isfinite(d1) & (gap >= margin) & (weights > 0)
    order = np.argsort(d1[eligible], kind="stable")
    d, w = d1[eligible][order], weights[eligible][order]
    allowed = np.floor(target * weights.sum() + 1e-9)
    over = np.nonzero(np.cumsum(w) > allowed)[0]
    return float(np.nextafter(d[over[0]], -np.inf)) if len(over) else float("inf")


def _named(
    d1: NDArray[np.float64], gap: NDArray[np.float64], tau: float, margin: float
) -> NDArray[np.bool_]:
    return (d1 <= tau) & (gap >= margin)


def at_fpir(s: Searches, target: float, margin: float, resamples: int = 2000) -> dict[str, Any]:
    """DIR with tau set on these strangers for ``target`` named; the interval re-sets tau
    in every resample of people (mated and non-mated resampled independently)."""
    ones = np.ones(len(s.s_d1))
    tau = tau_at(s.s_d1, s.s_gap, ones, target, margin)
    right = s.m_right & _named(s.m_d1, s.m_gap, tau, margin)
    wrong = ~s.m_right & _named(s.m_d1, s.m_gap, tau, margin)
    fpir = _named(s.s_d1, s.s_gap, tau, margin)
    rng = np.random.default_rng(intervals.SEED)
    people, strangers = len(s.people), s.stranger_people
    dirs = np.empty(resamples)
    for b in range(resamples):
        wm = np.bincount(rng.integers(0, people, people), minlength=people)[s.mated_person]
        ws = np.bincount(rng.integers(0, strangers, strangers), minlength=strangers)
        ws = ws[s.stranger_person].astype(float)
        tau_b = tau_at(s.s_d1, s.s_gap, ws, target, margin)
        hit = s.m_right & _named(s.m_d1, s.m_gap, tau_b, margin)
        dirs[b] = (wm * hit).sum() / max(1, wm.sum())
    lo, hi = np.percentile(dirs, [2.5, 97.5])
    how = "bootstrap by person, tau set again in each resample, widened to Wilson"
    return {
        "target": target,
        "margin": margin,
        "tau": tau,
        "dir": intervals.with_interval(
            float(right.mean()), float(lo), float(hi), int(right.sum()), len(right), how
        ),
        "wrong": _per_person(wrong, s.mated_person, people),
        "fpir": _per_person(fpir, s.stranger_person, strangers),
    }


def curve(s: Searches, margin: float) -> list[list[float]]:
    """(FPIR, DIR) with tau swept over these strangers, from 1 in N to all."""
    n = len(s.s_d1)
    ones = np.ones(n)
    points: list[list[float]] = []
    for target in [0.0, *np.geomspace(1 / max(n, 1), 1.0, CURVE_POINTS)]:
        tau = tau_at(s.s_d1, s.s_gap, ones, float(target), margin)
        fpir = float(_named(s.s_d1, s.s_gap, tau, margin).mean())
        dir_ = float((s.m_right & _named(s.m_d1, s.m_gap, tau, margin)).mean())
        if not points or points[-1] != [fpir, dir_]:
            points.append([fpir, dir_])
    return points


Near = Callable[[NDArray[np.float64]], tuple[float, NDArray[np.float64] | None]]


@dataclass(frozen=True)
class Rules:
    """A system's rules: ``of(n)`` for a gallery of size n (``edge.decision.gallery_size``);
    those named in ``scored`` compare cohort scores (``near``: a probe's cohort scale and
    domain shares, ``Cohort.near``), the others distances; ``per_probe(n, shares)``: the
    default rule for a probe with these domain shares (the device's tau per probe). The
    sweeps (``at_fpir``, ``curves``) use the scores when there are any: what the system's
    own rule compares."""

    of: Callable[[float], dict[str, Rule]]
    near: Near | None = None
    scored: frozenset[str] = frozenset()
    max_yaw: float = float("inf")  # the pose gate of the "default rule"
    per_probe: Callable[[float, NDArray[np.float64]], Rule] | None = None


def rules_for(system: Any) -> Rules:
    """The rules each system is scored by."""
    if system.kind == "peer":
        return Rules(lambda n: {"documented threshold": Rule(system.threshold)})
    from edge.bundle import load_bundle
    from edge.recognize import policy_for

    bundle = load_bundle(Path(system.info["bundle"]))
    policy = policy_for(bundle.manifest, RecognitionConfig(), cohort=bundle.cohort)

    def edge_rules(n: float) -> dict[str, Rule]:
        return {"default rule": policy.rule(n), "bundle tau.verify": Rule(system.threshold)}

    if not policy.scored:
        return Rules(edge_rules, max_yaw=policy.max_yaw)
    cohort = bundle.cohort
    assert cohort is not None
    return Rules(edge_rules, lambda v: cohort.near(v, policy.metric), frozenset({"default rule"}),
                 policy.max_yaw, policy.rule)  # fmt: skip


def figures(run: Run, plan: OpenSetPlan, metric: str, rules: Rules) -> dict[str, Any]:
    """One system on one domain's plan, by its own rules."""
    raw = Searches(run, plan, metric)
    s = raw if rules.near is None else Searches(run, plan, metric, rules.near)
    size = gallery_size(s.embeddings, len(s.people))
    named = rules.of(size)
    per_probe = rules.per_probe

    def probe(name: str) -> Callable[[NDArray[np.float64]], Rule] | None:
        if per_probe is None or name != "default rule":
            return None
        return lambda shares: per_probe(size, shares)

    margins = sorted({0.0} | {r.margin for r in named.values()})
    return {
        "domain": plan.domain,
        "enrolled_people": len(s.people),
        "embeddings": s.embeddings,
        "refused_photos": s.refused,
        "mated_searches": len(s.mated),
        "non_mated_searches": len(s.non_mated),
        "stranger_people": s.stranger_people,
        "searches_without_face": s.without_face,
        "rules": {
            name: score(
                rule,
                s if name in rules.scored else raw,
                rules.max_yaw if name == "default rule" else float("inf"),
                probe(name),
            )
            for name, rule in named.items()
        },
        "scores": "cohort scores" if rules.scored else "distances",
        "at_fpir": [at_fpir(s, t, m) for t in TARGETS for m in margins],
        "curves": {f"{m:g}": curve(s, m) for m in margins},
    }
