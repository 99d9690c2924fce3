"""Does a bundle's own rule (its open-set table and cohort, the device's default config)
keep its share of strangers on people it was not fitted on? Measured on ``select``
people, per domain, with the galleries of ``research.openset_rules`` (``draws``): what
a build change to the rule (``model_export.impostors``) is judged by before ``make
bench`` reports it on ``report`` people.

  .venv/bin/python -m research.bundle_rule --bundle build/bundle-sface [--bundle ...]

Each gallery's tau is the bundle's for its size (``edge.decision.gallery_size``) at 1% (the default
``strangers_accepted``); also shown: the share of strangers named at the stricter
targets the table holds. Faces come from the ``research.face_table`` tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from bench.intervals import wilson
from edge.bundle import load_bundle
from edge.config import RecognitionConfig
from edge.decision import Policy, cohort_scale, distance, domain_shares
from edge.recognize import policy_for
from model_export.data import data_root
from research.face_table import build_table
from research.openset_rules import Table, _per_person, _two, draws

logger = logging.getLogger("research.bundle_rule")


def scores(policy: Policy, t: Table, gallery: np.ndarray, owner: np.ndarray, rows: np.ndarray,
           people: int, comparisons: float, share_k: int | None = None,
           mix: str = "rates") -> tuple[np.ndarray, ...]:  # fmt: skip
    """Per search: nearest person, its score, the second's score and the search's tau in
    a gallery of this size (as ``Decider`` decides: a tau per probe, its nearest cohort
    faces' domains mixing the domains' own, where the bundle has them; ``share_k``: how
    many nearest cohort faces give the shares, default the cohort's k, as the device;
    ``mix``: ``rates``, the domains' shares of strangers named mixed, as the device, or
    ``taus``, the domains' taus mixed, as the device did before research/rate_mix.py)."""
    d = distance(t.vec[rows], t.vec[gallery], policy.metric).astype(np.float64)
    tau = np.full(len(rows), policy.rule(comparisons).tau)
    if policy.scored:
        cohort = policy.cohort
        assert cohort is not None
        c = distance(t.vec[rows], cohort.vectors, policy.metric)
        d = d / cohort_scale(c, cohort.k)[:, None]
        per = policy.domain_taus(comparisons)
        if per is not None and cohort.label is not None:
            k = share_k or cohort.k
            shares = domain_shares(c, k, cohort.label, len(cohort.domains))
            assert policy.open_set is not None
            tau = shares @ per if mix == "taus" else policy.open_set.mixed_tau(
                comparisons, policy.strangers_accepted, cohort.domains, shares)  # fmt: skip
    return (*_two(_per_person(d, owner, people)), tau)


#: what a gallery's size is counted in when the table is read: the device's choice
#: (``edge.decision.gallery_size``) and the alternatives measured against it
KEYS = {
    "embeddings": lambda embeddings, people: embeddings,
    "people": lambda embeddings, people: people,
    "geometric": lambda embeddings, people: round(float(np.sqrt(embeddings * people))),
}


def measure(policy: Policy, t: Table, domain: str, gallery_people: int, repeats: int,
            rate: float, max_yaw: float = np.inf, key: str = "geometric",
            share_k: int | None = None, mix: str = "rates") -> dict[str, Any]:  # fmt: skip
    p = dataclasses.replace(policy, strangers_accepted=rate)
    counts = {k: 0 for k in ("mated", "correct", "wrong", "strangers", "named",
                             "profile_mated", "profile_wrong", "profile_strangers",
                             "profile_named")}  # fmt: skip
    taus = []
    for dr in draws(t, domain, gallery_people, repeats, 2):
        size = KEYS[key](len(dr.gallery), len(dr.people))
        rule = p.rule(size)
        for rows, truth, is_mated in ((dr.mated, dr.mated_owner, True),
                                      (dr.strangers, None, False)):  # fmt: skip
            best, s1, s2, tau = scores(p, t, dr.gallery, dr.owner, rows, len(dr.people), size,
                                       share_k, mix)  # fmt: skip
            taus.append(tau)
            named = (s1 <= tau) & (s2 - s1 >= rule.margin) & (np.abs(t.yaw[rows]) <= max_yaw)
            prof = t.kind[rows] == "profile"
            if is_mated:
                right = best == truth
                counts["mated"] += int((~prof).sum())
                counts["correct"] += int((named & right & ~prof).sum())
                counts["wrong"] += int((named & ~right & ~prof).sum())
                counts["profile_mated"] += int(prof.sum())
                counts["profile_wrong"] += int((named & ~right & prof).sum())
            else:
                counts["strangers"] += int((~prof).sum())
                counts["named"] += int((named & ~prof).sum())
                counts["profile_strangers"] += int(prof.sum())
                counts["profile_named"] += int((named & prof).sum())
    return {**counts, "tau": float(np.mean(np.concatenate(taus))), "rate": rate, "key": key,
            "max_yaw": None if np.isinf(max_yaw) else max_yaw}  # fmt: skip


def device_rule(policy: Policy, t: Table, domain: str, repeats: int,
                share_k: int | None = None, mix: str = "rates") -> dict[str, Any]:  # fmt: skip
    """:func:`measure` as the device decides by default: galleries of 50 people, target
    1%, pose gate 0.5, the gallery read at sqrt(embeddings x people)."""
    return measure(policy, t, domain, 50, repeats, 0.01, 0.5, "geometric", share_k, mix)


def bundle_args(name: str | None, doc: str | None, repeats: bool = True) -> argparse.ArgumentParser:
    """The arguments the rule studies share: ``--bundle`` (repeatable), ``--repeats`` and
    ``--out`` (``research/results/<name>.json``; none for a study that writes nothing)."""
    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, action="append", required=True)
    if repeats:
        ap.add_argument("--repeats", type=int, default=10)
    if name is not None:
        ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / f"{name}.json")  # fmt: skip
    return ap


def pct(k: int, n: int) -> str:
    if not n:
        return "-"
    lo, hi = wilson(k, n)
    return f"{100 * k / n:5.2f}% [{100 * lo:.2f}-{100 * hi:.2f}] ({k}/{n})"


def named_line(r: dict[str, Any]) -> str:
    """A :func:`measure` result's tau, strangers named, named right and named wrong."""
    return (f"tau {r['tau']:.3f}: strangers named {pct(r['named'], r['strangers'])}, correct "
            f"{pct(r['correct'], r['mated'])}, wrong {pct(r['wrong'], r['mated'])}")  # fmt: skip


def save(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwrote {out}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, action="append", required=True)
    ap.add_argument("--faces-of", type=Path, default=None,
                    help="the bundle whose face tables to read (same encoder), default: each")  # fmt: skip
    ap.add_argument("--gallery", type=int, default=50)
    ap.add_argument("--max-yaw", type=float, action="append", default=[],
                    help="also measure a pose gate: faces turned more are never named")  # fmt: skip
    ap.add_argument("--role", default="select", choices=("calibrate", "select"))
    ap.add_argument("--key", action="append", choices=sorted(KEYS), default=[],
                    help="count a gallery's size in these too (default: the device's, "
                         "geometric), with the first --max-yaw")  # fmt: skip
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bundle_rule.json"
    )
    args = ap.parse_args()
    root = data_root()
    results: dict[str, Any] = {}
    for bundle_dir in args.bundle:
        bundle = load_bundle(bundle_dir)
        policy = policy_for(bundle.manifest, RecognitionConfig(), cohort=bundle.cohort)
        t = Table.load(build_table(args.faces_of or bundle_dir, args.role, root))
        rows = results[str(bundle_dir)] = []
        gate = args.max_yaw[0] if args.max_yaw else np.inf  # the --key rows' pose gate
        print(f"\n{bundle_dir}  {bundle.raw['encoder_id']}")
        for domain in ("lfw", "cfp"):
            for rate, max_yaw, key in [(0.01, np.inf, "geometric"), (0.005, np.inf, "geometric"),
                                       (0.002, np.inf, "geometric")] + [
                (0.01, y, "geometric") for y in args.max_yaw
            ] + [(0.01, gate, k) for k in args.key]:  # fmt: skip
                r = measure(policy, t, domain, args.gallery, args.repeats, rate, max_yaw, key)
                rows.append({"domain": domain, **r})
                print(f"{domain} target {rate:.1%} yaw<={max_yaw:g} key {key} tau {r['tau']:.3f}: strangers named "
                      f"{pct(r['named'], r['strangers'])}, correct {pct(r['correct'], r['mated'])}, "
                      f"wrong {pct(r['wrong'], r['mated'])} | profile: strangers named "
                      f"{pct(r['profile_named'], r['profile_strangers'])}, wrong "
                      f"{pct(r['profile_wrong'], r['profile_mated'])}")  # fmt: skip
    save(results, args.out)


if __name__ == "__main__":
    main()
