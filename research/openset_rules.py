"""Which open-set rule keeps "1% of strangers named" on a new domain (issue 28)? Each
candidate is fitted on the calibrate people (both domains pooled, one rule everywhere)
and measured on the select people, per domain; the winner alone goes to ``make bench``
(report people).

  .venv/bin/python -m research.openset_rules --bundle build/bundle-sface [--bundle ...]

Reads the face tables of ``research.face_table`` (built on first use). Protocol, the same
on both roles: in each of ``--repeats`` draws, half of the people with two near-frontal
photos or more are enrolled with up to 3 of them (never all), and people with one photo are
enrolled with it until the gallery holds ``--gallery`` people (LFW's calibrate and select
people mostly have one photo); mated searches are the enrolled people's other near-frontal
photos and, apart, their profiles; non-mated searches every photo of the people not
enrolled (near-frontal and, apart, profile). Prints a table per bundle and writes
``research/results/openset_rules.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.decision import distance
from model_export.data import data_root
from research.face_table import build_table

logger = logging.getLogger("research.openset_rules")
F = NDArray[np.float64]


@dataclass
class Table:
    person: NDArray[np.str_]
    source: NDArray[np.str_]
    kind: NDArray[np.str_]
    vec: F
    size: F
    sharp: F
    yaw: F
    metric: str

    @staticmethod
    def load(path: Path) -> Table:
        t = np.load(path)
        ok = t["found"]
        return Table(t["person"][ok], t["source"][ok], t["kind"][ok],
                     t["vector"][ok].astype(np.float64), t["size"][ok], t["sharp"][ok],
                     t["yaw"][ok], str(t["metric"]))  # fmt: skip


@dataclass
class Draw:
    """One gallery and its searches (indices into the table)."""

    domain: str
    gallery: NDArray[np.intp]
    owner: NDArray[np.intp]  # gallery row -> enrolled person index
    people: list[str]
    mated: NDArray[np.intp]
    mated_owner: NDArray[np.intp]
    strangers: NDArray[np.intp]


def draws(t: Table, domain: str, gallery_people: int, repeats: int, seed: int) -> list[Draw]:
    rng = np.random.default_rng(seed)
    frontal = {}
    for i in np.flatnonzero((t.source == domain) & (t.kind == "frontal")):
        frontal.setdefault(str(t.person[i]), []).append(i)
    multi = sorted(p for p, v in frontal.items() if len(v) >= 2)
    single = sorted(p for p, v in frontal.items() if len(v) == 1)
    out = []
    for _ in range(repeats):
        chosen = list(rng.permutation(multi)[: len(multi) // 2])
        extra = max(0, gallery_people - len(chosen))
        chosen += list(rng.permutation(single)[: min(extra, len(single) // 2)])
        enrolled = set(chosen)
        g, owner, mated, mowner = [], [], [], []
        for j, p in enumerate(chosen):
            photos = frontal[p]
            k = min(3, max(1, len(photos) - 1))
            g += photos[:k]
            owner += [j] * k
            rows = np.flatnonzero(t.person == p)
            probe = [i for i in rows if i not in photos[:k]]
            mated += probe
            mowner += [j] * len(probe)
        strangers = np.flatnonzero((t.source == domain) & ~np.isin(t.person, list(enrolled)))
        out.append(Draw(domain, np.array(g), np.array(owner), chosen, np.array(mated),
                        np.array(mowner), strangers))  # fmt: skip
    return out


# A scorer: (table, draw, search rows) -> per-search (best person, best score, second score).
Scores = tuple[NDArray[np.intp], F, F]
Scorer = Callable[[Table, Draw, NDArray[np.intp]], Scores]


def _two(per_person: F) -> Scores:
    order = np.argsort(per_person, axis=1)
    best = order[:, 0]
    s1 = np.take_along_axis(per_person, order[:, :1], 1)[:, 0]
    s2 = (np.take_along_axis(per_person, order[:, 1:2], 1)[:, 0]
          if per_person.shape[1] > 1 else np.full(len(s1), np.inf))  # fmt: skip
    return best, s1, s2


def _per_person(d: F, owner: NDArray[np.intp], n: int) -> F:
    """Per search, each person's smallest distance over their embeddings (as
    ``edge.decision.rank`` does for one search)."""
    out = np.full((d.shape[0], n), np.inf)
    np.minimum.at(out.T, owner, d.T)
    return out


def nearest(t: Table, dr: Draw, rows: NDArray[np.intp]) -> Scores:
    d = distance(t.vec[rows], t.vec[dr.gallery], t.metric)
    return _two(_per_person(d, dr.owner, len(dr.people)))


def template(t: Table, dr: Draw, rows: NDArray[np.intp]) -> Scores:
    """Each person as the mean of their (unit) embeddings."""
    v = t.vec[dr.gallery]
    if t.metric == "cosine":
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
    means = np.stack([v[dr.owner == j].mean(0) for j in range(len(dr.people))])
    return _two(distance(t.vec[rows], means, t.metric))


class Cohort:
    """Adaptive score normalization against a cohort of background faces: a distance d
    between a probe p and an enrolled face e becomes
    ``((d - mu_p) / sd_p + (d - mu_e) / sd_e) / 2`` where mu and sd are the mean and
    standard deviation of each face's ``k`` nearest cohort distances (its neighbourhood:
    how close faces of other people come to it in this domain). ``probe_only`` uses
    the probe's term alone; ``ratio`` divides by mu_p instead."""

    def __init__(self, cohort: Table, k: int, mode: str = "as") -> None:
        self.c, self.k, self.mode = cohort, k, mode

    def stats(self, t: Table, rows: NDArray[np.intp]) -> tuple[F, F]:
        d = distance(t.vec[rows], self.c.vec, t.metric).astype(np.float64)
        same = t.person[rows][:, None] == self.c.person[None, :]
        d = np.where(same, np.inf, d)  # never one's own photos (when the cohort has them)
        near = np.sort(d, axis=1)[:, : self.k]
        return near.mean(1), near.std(1) + 1e-6

    def __call__(self, t: Table, dr: Draw, rows: NDArray[np.intp]) -> Scores:
        d = distance(t.vec[rows], t.vec[dr.gallery], t.metric)
        mp, sp = self.stats(t, rows)
        if self.mode == "ratio":
            z = d / mp[:, None]
        elif self.mode == "probe":
            z = (d - mp[:, None]) / sp[:, None]
        else:
            me, se = self.stats(t, dr.gallery)
            z = 0.5 * ((d - mp[:, None]) / sp[:, None] + (d - me[None, :]) / se[None, :])
        return _two(_per_person(z, dr.owner, len(dr.people)))


@dataclass
class Outcome:
    """Scores of every search of every draw of one domain."""

    mated: Scores
    truth: NDArray[np.intp]
    mated_kind: NDArray[np.str_]
    strangers: Scores
    stranger_kind: NDArray[np.str_]
    mated_yaw: F
    stranger_yaw: F


def run(t: Table, ds: list[Draw], scorer: Scorer) -> Outcome:
    parts: dict[str, list[Any]] = {k: [] for k in ("mb", "m1", "m2", "tr", "mk", "sb", "s1",
                                                   "s2", "sk", "my", "sy")}  # fmt: skip
    for dr in ds:
        b, s1, s2 = scorer(t, dr, dr.mated)
        parts["mb"].append(b), parts["m1"].append(s1), parts["m2"].append(s2)
        parts["tr"].append(dr.mated_owner), parts["mk"].append(t.kind[dr.mated])
        parts["my"].append(t.yaw[dr.mated])
        b, s1, s2 = scorer(t, dr, dr.strangers)
        parts["sb"].append(b), parts["s1"].append(s1), parts["s2"].append(s2)
        parts["sk"].append(t.kind[dr.strangers]), parts["sy"].append(t.yaw[dr.strangers])
    c = {k: np.concatenate(v) for k, v in parts.items()}
    return Outcome((c["mb"], c["m1"], c["m2"]), c["tr"], c["mk"], (c["sb"], c["s1"], c["s2"]),
                   c["sk"], c["my"], c["sy"])  # fmt: skip


def named(s: Scores, tau: float, margin: float, yaw: F, max_yaw: float) -> NDArray[np.bool_]:
    _, s1, s2 = s
    return (s1 <= tau) & (s2 - s1 >= margin) & (np.abs(yaw) <= max_yaw)


def fit_tau(outcomes: list[Outcome], margin: float, target: float, worst: bool) -> float:
    """The largest tau that names at most ``target`` of the frontal strangers, pooled over
    the domains, or in every domain (``worst``)."""
    taus = []
    pooled = []
    for o in outcomes:
        f = o.stranger_kind == "frontal"
        s1, s2 = o.strangers[1][f], o.strangers[2][f]
        eff = np.where(s2 - s1 >= margin, s1, np.inf)
        pooled.append(eff)
        taus.append(float(np.quantile(eff, target, method="lower")))
    if worst:
        return min(taus)
    return float(np.quantile(np.concatenate(pooled), target, method="lower"))


def measure(o: Outcome, tau: float, margin: float, max_yaw: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("frontal", "profile"):
        m = o.mated_kind == kind
        if m.any():
            s = tuple(x[m] for x in o.mated)
            ok = named(s, tau, margin, o.mated_yaw[m], max_yaw)  # type: ignore[arg-type]
            right = s[0] == o.truth[m]
            out[f"{kind}_correct"] = float((ok & right).mean())
            out[f"{kind}_wrong"] = float((ok & ~right).mean())
            out[f"{kind}_mated"] = int(m.sum())
        f = o.stranger_kind == kind
        if f.any():
            s = tuple(x[f] for x in o.strangers)
            out[f"{kind}_fpir"] = float(named(s, tau, margin, o.stranger_yaw[f], max_yaw).mean())  # type: ignore[arg-type]
            out[f"{kind}_strangers"] = int(f.sum())
    return out


def first_of_each(t: Table) -> Table:
    """The table's first row of every person."""
    _, rows = np.unique(t.person, return_index=True)
    rows = np.sort(rows)
    return Table(t.person[rows], t.source[rows], t.kind[rows], t.vec[rows], t.size[rows],
                 t.sharp[rows], t.yaw[rows], t.metric)  # fmt: skip


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, action="append", required=True)
    p.add_argument("--gallery", type=int, default=50)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--k", type=int, default=50)
    p.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "openset_rules.json"
    )
    args = p.parse_args()
    root = data_root()
    results: dict[str, Any] = {"protocol": {"gallery": args.gallery, "repeats": args.repeats,
                                            "k": args.k, "fit": "calibrate", "measured": "select"},
                               "bundles": {}}  # fmt: skip
    for bundle in args.bundle:
        rows: list[dict[str, Any]] = []
        results["bundles"][str(bundle)] = rows
        cal = Table.load(build_table(bundle, "calibrate", root))
        sel = Table.load(build_table(bundle, "select", root))
        cohort = Table(*(getattr(cal, f) for f in ("person", "source", "kind", "vec", "size",
                                                   "sharp", "yaw", "metric")))  # fmt: skip
        scorers: dict[str, Scorer] = {
            "nearest": nearest,
            "template": template,
            "asnorm": Cohort(cohort, args.k, "as"),
            "probe-norm": Cohort(cohort, args.k, "probe"),
            "ratio": Cohort(cohort, args.k, "ratio"),
            # what a bundle ships (model_export.open_set): one face per calibrate person
            "ratio, one face each": Cohort(first_of_each(cohort), args.k, "ratio"),
        }
        print(f"\n{bundle}  ({cal.metric})")
        print(
            f"{'rule':<28}{'fit':>7}{'tau':>8} | "
            + " | ".join(f"{d}: correct wrong fpir | prof wrong fpir" for d in ("lfw", "cfp"))
        )
        for name, scorer in scorers.items():
            cal_out = [run(cal, draws(cal, d, args.gallery, args.repeats, 1), scorer)
                       for d in ("lfw", "cfp")]  # fmt: skip
            sel_out = [run(sel, draws(sel, d, args.gallery, args.repeats, 2), scorer)
                       for d in ("lfw", "cfp")]  # fmt: skip
            for margin in (0.0, 0.05) if name in ("nearest", "template") else (0.0, 0.3):
                for worst in (False, True):
                    for max_yaw in (np.inf, 0.35):
                        tau = fit_tau(cal_out, margin, 0.01, worst)
                        cells = []
                        row: dict[str, Any] = {"rule": name, "margin": margin,
                                               "max_yaw": None if np.isinf(max_yaw) else max_yaw,
                                               "fit": "worst" if worst else "pooled", "tau": tau}  # fmt: skip
                        rows.append(row)
                        for domain, o in zip(("lfw", "cfp"), sel_out, strict=True):
                            r = measure(o, tau, margin, max_yaw)
                            row[domain] = r
                            cells.append(
                                f"{100 * r.get('frontal_correct', np.nan):5.1f} "
                                f"{100 * r.get('frontal_wrong', np.nan):5.2f} "
                                f"{100 * r['frontal_fpir']:5.2f} | "
                                f"{100 * r.get('profile_wrong', np.nan):5.2f} "
                                f"{100 * r.get('profile_fpir', np.nan):5.2f}"
                            )
                        label = f"{name} m{margin:g} y{max_yaw:g}"
                        print(f"{label:<28}{'worst' if worst else 'pool':>7}{tau:8.3f} | "
                              + " | ".join(cells))  # fmt: skip

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=float) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
