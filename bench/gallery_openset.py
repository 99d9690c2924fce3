"""Open-set identification through the device's own enrollment: is a face named
correctly, given a wrong name, or (for a stranger) given any name at all?

The same people as ``make bench`` (bench/report_data.py: report people only, LFW and CFP
apart), but each enrolled through the real enrollment checks (``edge.enroll``: one face,
size, sharpness) into a real SQLite gallery, and identified through the device's
``rank``: a check that the suite's "exactly one face" enrollment does not flatter the
figures. The docs quote ``make bench``; this is a cross-check.

    .venv/bin/python bench/gallery_openset.py [--bundle build/bundle-sface] [--people 200]

Prints a table per domain and writes bench/results/gallery_openset.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
from report_data import ENROLL, report_plans, worker_copies

from edge.bundle import load_bundle
from edge.config import RecognitionConfig
from edge.decision import Policy, Rule, gallery_size, rank
from edge.engine import load_engine
from edge.enroll import enroll_photos
from edge.gallery import Gallery
from edge.images import read_image
from edge.recognize import policy_for
from model_export import splits
from model_export.data import data_root

REPO = Path(__file__).resolve().parent.parent


Ranked = list[tuple[str, float]]


def probe_ranks(
    engine: Any, matrix: Any, policy: Policy, paths: list[Path]
) -> tuple[list[Ranked], list[Ranked], list[float], float]:
    """Per photo, the two nearest people (person, distance) of its largest face ([] if no
    face), the same as the default rule compares them (``Policy.scores``: cohort scores
    for a bundle with a cohort) and the tau the device judges it by (``Policy.judge``: a
    tau per probe where the bundle has a tau per domain)."""
    raw: list[Ranked] = []
    scored: list[Ranked] = []
    taus: list[float] = []
    size = gallery_size(len(matrix.vectors), len(matrix.names))
    t0 = time.perf_counter()
    for path in paths:
        image = read_image(path)
        dets = engine.detect(image)
        if not dets:
            raw.append([])
            scored.append([])
            taus.append(policy.rule(size).tau)
            continue
        face = engine.align(image, max(dets, key=lambda d: d.box.area))
        vector = engine.embed([face])[0].vector
        ranked = rank(matrix, vector, policy.metric)[:2]
        raw.append([(c.person, c.distance) for c in ranked])
        scored.append([(c.person, c.distance) for c in policy.scores(vector, ranked)])
        taus.append(policy.judge(vector, ranked, size).tau)
    return raw, scored, taus, (time.perf_counter() - t0) * 1000 / max(1, len(paths))


def score(
    rule: Rule,
    known: list[tuple[str, list[tuple[str, float]]]],
    strangers: list[list[tuple[str, float]]],
    taus: tuple[list[float], list[float]] | None = None,
) -> dict[str, float]:
    """``taus``: each known probe's and each stranger's own tau (the device's per probe),
    in place of ``rule.tau``; ``tau`` is then their mean."""
    from edge.decision import Candidate

    def decide(ranked: list[tuple[str, float]], tau: float) -> str | None:
        own = Rule(tau, rule.margin)
        return own.decide([Candidate(p, d) for p, d in ranked]).person if ranked else None

    known_taus, stranger_taus = taus or ([rule.tau] * len(known), [rule.tau] * len(strangers))
    names = [(truth, decide(r, t)) for (truth, r), t in zip(known, known_taus, strict=True)]
    return {
        "tau": float(np.mean(known_taus + stranger_taus)) if taus else rule.tau,
        "margin": rule.margin,
        "correct": sum(t == n for t, n in names) / len(names),
        "wrong": sum(n is not None and t != n for t, n in names) / len(names),
        "unknown": sum(n is None for _, n in names) / len(names),
        "strangers_accepted": sum(
            decide(r, t) is not None for r, t in zip(strangers, stranger_taus, strict=True)
        )
        / len(strangers),
    }


def tau_at_strangers(strangers: list[list[tuple[str, float]]], rate: float, margin: float) -> float:
    """The largest tau that accepts at most ``rate`` of the strangers (with this margin)."""
    eligible = sorted(
        r[0][1] for r in strangers if r and (len(r) < 2 or r[1][1] - r[0][1] >= margin)
    )
    allowed = int(np.floor(rate * len(strangers)))
    return (
        float(np.nextafter(eligible[allowed], -np.inf)) if allowed < len(eligible) else float("inf")
    )


def domain_run(engine: Any, bundle: Any, plan: Any, copies: dict[Path, Path]) -> dict[str, Any]:
    gallery = Gallery(sqlite3.connect(":memory:", isolation_level=None))
    t0 = time.perf_counter()
    known_paths: list[tuple[str, Path]] = []
    refused = 0
    for name, photos in plan.enrolled.items():
        report = enroll_photos(gallery, engine, name, [copies[p] for p in photos[:ENROLL]])
        refused += len(report.rejected)
        known_paths += [(name, copies[p]) for p in photos[ENROLL:]]
    enroll_ms = (time.perf_counter() - t0) * 1000 / max(1, ENROLL * len(plan.enrolled))
    matrix = gallery.matrix(bundle.manifest.encoder_id)
    policy = policy_for(bundle.manifest, RecognitionConfig(), cohort=bundle.cohort)
    known_raw, known_scored, known_taus, known_ms = probe_ranks(
        engine, matrix, policy, [p for _, p in known_paths]
    )
    truths = [t for t, _ in known_paths]
    known = list(zip(truths, known_scored, strict=True))
    stranger_paths = [copies[p] for ps in plan.strangers.values() for p in ps]
    strangers_raw, strangers, stranger_taus, stranger_ms = probe_ranks(
        engine, matrix, policy, stranger_paths
    )
    default = policy.rule(gallery_size(len(matrix.vectors), len(matrix.names)))
    rows = {"default rule": score(default, known, strangers, (known_taus, stranger_taus))}
    rows["bundle tau.verify"] = score(
        Rule(bundle.manifest.tau.verify), list(zip(truths, known_raw, strict=True)), strangers_raw
    )
    rows["1% strangers (oracle)"] = score(
        Rule(tau_at_strangers(strangers, 0.01, default.margin), default.margin), known, strangers
    )
    print(
        f"\n{plan.domain}: {plan.about}; enrolled {len(matrix.names)} people, "
        f"{len(matrix.vectors)} embeddings ({refused} photos refused)"
    )
    print(f"{'rule':<28} {'tau':>6} {'correct':>8} {'wrong':>7} {'unknown':>8} {'strangers':>10}")
    for name, r in rows.items():
        print(
            f"{name:<28} {r['tau']:>6.3f} {r['correct']:>8.2%} {r['wrong']:>7.2%} {r['unknown']:>8.2%} {r['strangers_accepted']:>10.2%}"
        )
    return {
        "about": plan.about,
        "enrolled_people": len(matrix.names),
        "embeddings": len(matrix.vectors),
        "refused_photos": refused,
        "known_probes": len(known),
        "strangers": len(strangers),
        "ms_per_photo": {
            "enroll": enroll_ms,
            "identify_known": known_ms,
            "identify_strangers": stranger_ms,
        },
        "rules": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "build" / "bundle-sface")
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--strangers", type=int, default=500)
    parser.add_argument("--cfp-people", type=int, default=60)
    parser.add_argument("--cfp-strangers", type=int, default=60)
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "gallery_openset.json"
    )
    args = parser.parse_args()
    bundle = load_bundle(args.bundle)
    engine = load_engine(bundle)
    root = data_root()
    plans = report_plans(
        root, splits.load(), args.people, args.strangers, args.cfp_people, args.cfp_strangers
    )
    photos = sorted({p for plan in plans.values() for p in plan.photos()})
    copies = worker_copies(photos, root, REPO / "build" / "bench-cache")
    result = {
        "command": "python bench/gallery_openset.py",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": __import__("os").cpu_count(),
        },
        "bundle": bundle.manifest.name,
        "encoder_id": bundle.manifest.encoder_id,
        "people": "report (data/splits.json)",
        "domains": {d: domain_run(engine, bundle, plan, copies) for d, plan in plans.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
