"""Open-set identification: is a face named correctly, given a wrong name, or (for a
stranger) given any name at all? The protocol of the gallery issue:

- enroll the 200 LFW people with the most photos, up to 3 photos each (through the
  real enrollment checks, into a real SQLite gallery);
- identify all their other photos (known probes) and one photo each of 500 people who
  are not enrolled (strangers);
- report, for the default rule and for fixed alternatives: correct, wrong name, known
  faces left unknown, strangers accepted; and the tau that gives 1% strangers accepted.

    .venv/bin/python bench/gallery_openset.py [--bundle build/bundle] [--people 200]

Prints a table and writes bench/results/gallery_openset.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import load_bundle
from edge.config import RecognitionConfig
from edge.engine import load_engine
from edge.enroll import enroll_photos
from edge.gallery import Gallery
from edge.images import read_image
from edge.matcher import Rule, rank
from edge.recognize import rule_for
from model_export.data import data_root

REPO = Path(__file__).resolve().parent.parent


def photos_by_person(lfw: Path) -> dict[str, list[Path]]:
    return {d.name: sorted(d.glob("*.jpg")) for d in lfw.iterdir() if d.is_dir()}


def probe_ranks(
    engine: Any, matrix: Any, metric: str, paths: list[Path]
) -> tuple[list[list[tuple[str, float]]], float]:
    """Per photo, the ranked (person, distance) of its largest face ([] if no face)."""
    out, t0 = [], time.perf_counter()
    for path in paths:
        image = read_image(path)
        dets = engine.detect(image)
        if not dets:
            out.append([])
            continue
        face = engine.align(image, max(dets, key=lambda d: d.box.area))
        vector = engine.embed([face])[0].vector
        out.append([(c.person, c.distance) for c in rank(matrix, vector, metric)[:2]])
    return out, (time.perf_counter() - t0) * 1000 / max(1, len(paths))


def score(
    rule: Rule,
    known: list[tuple[str, list[tuple[str, float]]]],
    strangers: list[list[tuple[str, float]]],
) -> dict[str, float]:
    from edge.matcher import Candidate

    def decide(ranked: list[tuple[str, float]]) -> str | None:
        return rule.decide([Candidate(p, d) for p, d in ranked]).person if ranked else None

    names = [(truth, decide(r)) for truth, r in known]
    return {
        "tau": rule.tau,
        "margin": rule.margin,
        "correct": sum(t == n for t, n in names) / len(names),
        "wrong": sum(n is not None and t != n for t, n in names) / len(names),
        "unknown": sum(n is None for _, n in names) / len(names),
        "strangers_accepted": sum(decide(r) is not None for r in strangers) / len(strangers),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "build" / "bundle")
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--strangers", type=int, default=500)
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "gallery_openset.json"
    )
    args = parser.parse_args()
    bundle = load_bundle(args.bundle)
    engine = load_engine(bundle)
    metric = bundle.manifest.encoder.metric
    people = photos_by_person(data_root() / "lfw")
    top = sorted(people, key=lambda n: (-len(people[n]), n))[: args.people]
    rest = sorted(set(people) - set(top), key=lambda n: hashlib.sha1(n.encode()).hexdigest())[
        : args.strangers
    ]

    gallery = Gallery(sqlite3.connect(":memory:", isolation_level=None))
    t0 = time.perf_counter()
    known_paths: list[tuple[str, Path]] = []
    refused = 0
    for name in top:
        report = enroll_photos(gallery, engine, name, people[name][:3])
        refused += len(report.rejected)
        known_paths += [(name, p) for p in people[name][3:]]
    enroll_ms = (time.perf_counter() - t0) * 1000 / (3 * len(top))
    matrix = gallery.matrix(bundle.manifest.encoder_id)
    print(
        f"enrolled {len(matrix.names)} people, {len(matrix.vectors)} embeddings ({refused} photos refused)"
    )
    known_ranked, known_ms = probe_ranks(engine, matrix, metric, [p for _, p in known_paths])
    known = [(t, r) for (t, _), r in zip(known_paths, known_ranked, strict=True)]
    strangers, stranger_ms = probe_ranks(engine, matrix, metric, [people[n][0] for n in rest])

    default = rule_for(bundle, matrix, RecognitionConfig())
    rows = {"default rule": score(default, known, strangers)}
    rows["dlib's 0.6"] = score(Rule(0.6), known, strangers)
    rows["bundle tau.verify"] = score(Rule(bundle.manifest.tau.verify), known, strangers)
    for margin in (0.0, 0.03, 0.06, 0.1):
        rows[f"1% strangers, margin {margin}"] = score(
            Rule(tau_at_strangers(strangers, 0.01, margin), margin), known, strangers
        )
    print(f"\n{'rule':<28} {'tau':>6} {'correct':>8} {'wrong':>7} {'unknown':>8} {'strangers':>10}")
    for name, r in rows.items():
        print(
            f"{name:<28} {r['tau']:>6.3f} {r['correct']:>8.2%} {r['wrong']:>7.2%} {r['unknown']:>8.2%} {r['strangers_accepted']:>10.2%}"
        )
    print(f"\nknown probes {len(known)}, strangers {len(strangers)}; ms per photo: enroll {enroll_ms:.1f}, "
          f"identify {known_ms:.1f} (known), {stranger_ms:.1f} (strangers)")  # fmt: skip
    result = {
        "command": "python bench/gallery_openset.py",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": __import__("os").cpu_count()},
        "bundle": bundle.manifest.name, "encoder_id": bundle.manifest.encoder_id,
        "enrolled_people": len(matrix.names), "embeddings": len(matrix.vectors), "refused_photos": refused,
        "known_probes": len(known), "strangers": len(strangers),
        "ms_per_photo": {"enroll": enroll_ms, "identify_known": known_ms, "identify_strangers": stranger_ms},
        "rules": rows,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
