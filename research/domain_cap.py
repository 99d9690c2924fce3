"""When an encoder's domains disagree, does one blended table name too many strangers in
one of them (issue 27)? The build blends the domains' taus by their mean
(``impostors.blend``): the target holds on average. For the student, CFP's strangers come
nearer than LFW's, and on select people its default rule named 2.69% of CFP's strangers
(research/OPENSET.md, 2026-12-07); on report, 3.18%.

Variants, each fitted on the calibrate people's faces (the build's simulation, with the
bundle's cohort as the build makes it) and measured on select people with the device's
rule (``research.bundle_rule.measure``: target 1%, pose gate 0.5, the gallery read at
sqrt(embeddings x people)):

- ``mean``: the build's blend (the margin it chooses);
- ``capped``: the mean, but never looser than either domain's own tau for twice the
  target (no calibration domain over 2x the target);
- ``margin 0.12``: the mean blend with the margin the student had before (0.12) forced;
- ``right - 10 wrong``: the margin the calibrate simulation gives the most named right
  less ten times the named wrong (a wrong name opens a door to the wrong person; an
  unknown one only asks them to look again), on the reference domain as the build does.

Also printed: what the build's margin choice sees, the calibrate simulation's share of
known probes named right and named wrong at each margin (galleries of 10 people and
more, per domain): the build picks the margin naming the most on the reference domain
and does not count the wrong names.

  .venv/bin/python -m research.domain_cap --bundle models/edge-face-dlib-cut [--bundle ...]
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from model_export import impostors
from model_export.data import data_root
from research.bundle_rule import bundle_args, device_rule, named_line, save
from research.stranger_photos import every_photo, inputs, refitted

logger = logging.getLogger("research.domain_cap")
Rows = dict[int, list[float]]


def tau_at(row: list[float], rate: float) -> float:
    """A domain's tau for ``rate``, interpolated in log rate over ``impostors.RATES``."""
    return float(np.interp(np.log10(rate), np.log10(impostors.RATES), row))


def capped(reference: Rows, other: Rows) -> Rows:
    """The mean blend, never looser than a domain's own tau for twice each rate."""
    out = MEAN(reference, other)
    for n, row in out.items():
        for j, rate in enumerate(impostors.RATES):
            caps = [tau_at(d[n], 2 * rate) for d in (reference, other) if n in d]
            row[j] = min([row[j], *caps])
    return out


MEAN: Callable[[Rows, Rows], Rows] = impostors.blend
WRONG_WEIGHT = impostors.WRONG_COST  # the right - 10 wrong variant, as the build now weighs
VARIANTS: dict[str, dict[str, Any]] = {
    "mean": {},
    "capped": {"blend": capped},
    "margin 0.12": {"margins": [0.12]},
}


def fit(variant: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``impostors.open_set_table`` with the variant's blend and margins, as the build fitted
    it when this was measured: each domain's quantile itself, the margin naming the most
    right (no confidence bound, wrong names not counted)."""
    saved = impostors.blend, impostors.MARGINS
    impostors.blend = variant.get("blend", MEAN)
    impostors.MARGINS = variant.get("margins", saved[1])
    try:
        return impostors.open_set_table(*args, **{"confidence": None, "wrong_cost": 0.0, **kwargs})
    finally:
        impostors.blend, impostors.MARGINS = saved


def margins_seen(first: np.ndarray, second: np.ndarray, domains: np.ndarray, metric: str,
                 cohort: np.ndarray, who: np.ndarray, extra: np.ndarray,
                 owner: np.ndarray) -> list[dict[str, Any]]:  # fmt: skip
    """Per domain and margin, the simulation's named right and named wrong at 1%."""
    dist = impostors.distance
    d_first = dist(first, first, metric).astype(np.float64)
    d_second = dist(second, first, metric).astype(np.float64)
    scaling = impostors.Scaling(dist(first, cohort, metric).astype(np.float64),
                                dist(second, cohort, metric).astype(np.float64),
                                impostors.COHORT_K, who)  # fmt: skip
    more = impostors.Extra(dist(extra, first, metric).astype(np.float64),
                           dist(extra, cohort, metric).astype(np.float64), owner)  # fmt: skip
    rng, rows = np.random.default_rng(0), []
    for domain in ("lfw", "cfp"):
        members = np.flatnonzero(domains == domain)
        room = len(members) - (100 if domain == "lfw" else impostors.MIN_DOMAIN_STRANGERS)
        sizes = [n for n in impostors.SIZES if n <= room]
        sim = impostors._simulate(d_first, d_second, scaling, members, len(second), sizes, 8,
                                  rng, more)  # fmt: skip
        for m in impostors.MARGINS:
            taus = impostors._taus(sim, m)
            right, wrong = [], []
            for n, a in sim.items():
                if n >= 10:
                    tau = taus[n][impostors.RATES.index(0.01)]
                    named = (a["k1"] <= tau) & (a["k2"] - a["k1"] >= m)
                    right.append(float((a["ok"] & named).mean()))
                    wrong.append(float((~a["ok"] & named).mean()))
            rows.append({"domain": domain, "margin": m, "right": float(np.mean(right)),
                         "wrong": float(np.mean(wrong))})  # fmt: skip
            print(
                f"  calibrate simulation {domain} margin {m:.2f}: named right "
                f"{100 * rows[-1]['right']:.2f}%, wrong {100 * rows[-1]['wrong']:.3f}%"
            )
    return rows


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = bundle_args("domain_cap", __doc__).parse_args()
    root = data_root()
    out: dict[str, Any] = {}
    for bundle_dir in args.bundle:
        base, sel, faces_ = inputs(bundle_dir, root, 8)
        first, second, domains, extra, owner = faces_
        cohort, who = every_photo(faces_)
        rows = out[str(bundle_dir)] = []
        print(f"\n{bundle_dir}: {len(first)} people, cohort {len(cohort)} faces")
        seen = margins_seen(first, second, domains, base.metric, cohort, who, extra, owner)
        rows += [{"variant": "calibrate simulation", **r} for r in seen]
        lfw = [r for r in seen if r["domain"] == "lfw"]  # the reference domain
        weighed = max(lfw, key=lambda r: r["right"] - WRONG_WEIGHT * r["wrong"])["margin"]
        variants = {**VARIANTS, f"right - {WRONG_WEIGHT:g} wrong": {"margins": [weighed]}}
        for name, variant in variants.items():
            policy, table = refitted(base, faces_, functools.partial(fit, variant))
            for domain in ("lfw", "cfp"):
                r = device_rule(policy, sel, domain, args.repeats)
                rows.append({"variant": name, "domain": domain, "margin": table["margin"], **r})
                print(f"  {name:17s} margin {table['margin']:.2f} {domain} {named_line(r)}",
                      flush=True)  # fmt: skip
    save(out, args.out)


if __name__ == "__main__":
    main()
