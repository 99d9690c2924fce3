"""Does the build's simulation read its taus off too few strangers? The table was fitted
on the first photo of each calibrate person outside a simulated gallery: CFP's 87
calibrate people leave about 60 strangers per gallery, so its 1% tau rested on a handful
of the nearest. This fits the table twice from the calibrate people's faces (the
``research.face_table`` table, through the bundle's own device path): as the build did
before (first photos only), and as it does now, with up to ``--more`` further
near-frontal photos of each outside person searched as strangers too
(``impostors.open_set_table(more=...)``); and runs each table, and the bundle's own, with
the device's rule on ``select`` people (``research.bundle_rule.measure``).

  .venv/bin/python -m research.stranger_photos --bundle build/bundle-sface [--bundle ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import load_bundle
from edge.config import RecognitionConfig
from edge.decision import Cohort, OpenSetTable, Policy
from edge.recognize import policy_for
from model_export.data import data_root
from model_export.impostors import COHORT_K, open_set_table
from research.bundle_rule import measure, pct
from research.face_table import build_table
from research.openset_rules import Table

logger = logging.getLogger("research.stranger_photos")
Faces = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def faces(t: Table, more: int) -> Faces:
    """first, second, domains (as ``model_export.open_set.open_set_faces`` orders them:
    people with two photos first), and the further photos with their person's index."""
    by: dict[str, list[int]] = {}
    for i in np.flatnonzero(t.kind == "frontal"):
        by.setdefault(str(t.person[i]), []).append(int(i))
    keyed = sorted(sorted(by.items()), key=lambda kv: -min(len(kv[1]), 2))
    firsts = [rows[0] for _, rows in keyed]
    seconds = [rows[1] for _, rows in keyed if len(rows) >= 2]
    extra, owner = [], []
    for j, (_, rows) in enumerate(keyed):
        for i in rows[2 : 2 + more]:
            extra.append(i)
            owner.append(j)
    domains = np.array([k.split("/", 1)[0] for k, _ in keyed])
    return (t.vec[firsts].astype(np.float32), t.vec[seconds].astype(np.float32), domains,
            t.vec[extra].astype(np.float32), np.array(owner, np.intp))  # fmt: skip


def every_photo(faces_: Faces) -> tuple[np.ndarray, np.ndarray]:
    """The build's cohort from :func:`faces`: first, second and further photos (as float16
    ships them), and each one's person."""
    first, second, _, extra, owner = faces_
    cohort = np.concatenate([first, second, extra]).astype(np.float16).astype(np.float32)
    return cohort, np.concatenate([np.arange(len(first)), np.arange(len(second)), owner])


def refitted(
    base: Policy, faces_: Faces, fit: Callable[..., dict[str, Any]] = open_set_table, **kwargs: Any
) -> tuple[Policy, dict[str, Any]]:
    """The open-set table fitted on the calibrate faces as the build fits it (every photo
    the cohort, :func:`every_photo`, each face labelled with its domain when the table
    has a tau per domain; ``kwargs`` to ``fit``), and the device's policy ``base`` with
    that table and cohort."""
    first, second, domains, extra, owner = faces_
    cohort, who = every_photo(faces_)
    table = fit(first, second, base.metric, cohort=cohort, cohort_k=COHORT_K, domains=domains,
                more=(extra, owner), cohort_owner=who, **kwargs)  # fmt: skip
    label, names = None, ()
    if "tau_by_domain" in table:  # as the build labels the cohort (model_export.open_set)
        names = tuple(sorted({str(d) for d in domains}))
        label = np.searchsorted(names, np.asarray(domains).astype(str)[who])
    policy = dataclasses.replace(base, open_set=OpenSetTable.from_json(table),
                                 cohort=Cohort(cohort, COHORT_K, label, names))  # fmt: skip
    return policy, table


def inputs(bundle_dir: Path, root: Path, more: int) -> tuple[Policy, Table, Faces]:
    """The device's default policy for the bundle, its select face table, and the
    calibrate faces the build's simulation takes (:func:`faces`)."""
    bundle = load_bundle(bundle_dir)
    cal = Table.load(build_table(bundle_dir, "calibrate", root))
    sel = Table.load(build_table(bundle_dir, "select", root))
    policy = policy_for(bundle.manifest, RecognitionConfig(), cohort=bundle.cohort)
    return policy, sel, faces(cal, more)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, action="append", required=True)
    ap.add_argument("--more", type=int, default=8, help="further photos per person, at most")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "stranger_photos.json"
    )
    args = ap.parse_args()
    root = data_root()
    out: dict[str, Any] = {}
    for bundle_dir in args.bundle:
        base, sel, (first, second, domains, extra, owner) = inputs(bundle_dir, root, args.more)
        metric = base.metric
        cohort = first.astype(np.float16).astype(np.float32)
        print(f"\n{bundle_dir}: {len(first)} people ({len(second)} with two photos), "
              f"{len(extra)} further photos")  # fmt: skip
        variants = {"the bundle's own table": base}
        for name, more in (
            ("first photos only", None),
            ("with further photos", (extra, owner)),
        ):
            table = open_set_table(first, second, metric, cohort=cohort, domains=domains, more=more)
            variants[name] = dataclasses.replace(
                base, open_set=OpenSetTable.from_json(table), cohort=Cohort(cohort, COHORT_K)
            )
            taus = {d: v["tau_at_1pct"] for d, v in table["domains"].items()}  # type: ignore[index]
            print(f"  {name}: tau at 1% by size {table['sizes']}: {taus}")
        rows = out[str(bundle_dir)] = []
        for name, policy in variants.items():
            for domain in ("lfw", "cfp"):
                r = measure(policy, sel, domain, 50, args.repeats, 0.01, 0.5)
                rows.append({"variant": name, "domain": domain, **r})
                print(f"  {name:28s} {domain}: tau {r['tau']:.3f} strangers named "
                      f"{pct(r['named'], r['strangers'])}, correct {pct(r['correct'], r['mated'])}, "
                      f"wrong {pct(r['wrong'], r['mated'])} | profiles named "
                      f"{pct(r['profile_named'], r['profile_strangers'])}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
