"""Negative feedback (``edge-face not NAME --sighting ID``): does "this is not Alice" stop
the mistake, and only the mistake?

On ``report`` people (data/splits.json: nothing was fitted or chosen on them), LFW and
CFP each: ``--enrolled`` people with 3+ photos enrolled from two photos (the rest are
their probes), ``--strangers`` others with 2+ photos, never enrolled. The rule runs with a
deliberately loose threshold (``--loose`` times the bundle's tau.verify, default 1: the
one-to-one threshold used one-to-many, with no margin and no open-set table), so that
strangers are taken for enrolled people often enough to count. Each stranger's
first photo is "seen" at the door; a seen photo that is named is a false match, and the
user marks it, as ``edge-face not`` does (``Gallery.add_impostor``: the face becomes an
impostor face of the person it was taken for; ``decision.rank`` then keeps the person
out of a probe that is nearer one of their impostor faces than their own). Then, before
and after, through the product's own gallery file and decision rule:

- the marked strangers' seen photos named the person they were taken for;
- their *other* photos (never marked) named that person (does the correction carry
  over?), and named anyone;
- every stranger's other photos named anyone;
- the enrolled people's own probes named right (all of them, and those who got an
  impostor face), and named wrong.

Rates over photos are bootstrapped by person (intervals: bench/intervals.py).

    .venv/bin/python bench/feedback.py [--bundle build/bundle-sface] [--enrolled 150]
        [--strangers 400] [--loose 1.0] [--out bench/results/feedback.json]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from intervals import by_person, counted, rate
from report import edge_versions, machine, render, write_result
from report_data import hashed

from edge.bundle import load_bundle
from edge.decision import FaceQuality, Policy
from edge.engine import load_engine
from edge.gallery import Gallery, Sample
from model_export import splits
from model_export.data import data_root, read_photo

REPO = Path(__file__).resolve().parent.parent
FINE = FaceQuality(size_px=112.0, sharpness=100.0, yaw=0.0)  # the gates are not measured here
ENROLL_PHOTOS = 2
PROBES = 4  # photos per person at most, besides the enrolled or the seen one


def people(root: Path, source: str, enrolled: int, strangers: int) -> tuple[dict, dict]:
    """(enrolled people -> photos, strangers -> photos) among ``report`` people of
    ``source``, in a fixed pseudo-random order; CFP's profile photos left out."""
    s = splits.load()
    by = {
        n: [p for p in splits.photos(root / source / n) if "profile" not in p.name]
        for n in hashed(s.names("report", source))
    }
    eligible = {n: ps[: ENROLL_PHOTOS + PROBES] for n, ps in by.items() if len(ps) >= 3}
    # at most half of them: the others are strangers (CFP's report people all have 3+)
    known = dict(list(eligible.items())[: min(enrolled, len(eligible) // 2)])
    others = {n: ps[: 1 + PROBES] for n, ps in by.items() if n not in known and len(ps) >= 2}
    others = dict(list(others.items())[:strangers])
    s.check([p for ps in [*known.values(), *others.values()] for p in ps], "report", root)
    return known, others


def embed(engine: Any, path: Path, root: Path) -> np.ndarray | None:
    """The largest face's embedding, None without a face."""
    image = read_photo(path, root)
    dets = engine.detect(image)
    if not dets:
        return None
    [e] = engine.embed([engine.align(image, max(dets, key=lambda d: d.box.area))])
    return np.asarray(e.vector, np.float32)


def embed_all(
    engine: Any, chosen: dict[str, list[Path]], root: Path
) -> dict[str, list[np.ndarray]]:
    out = {}
    for name, paths in chosen.items():
        vectors = [v for v in (embed(engine, p, root) for p in paths) if v is not None]
        if vectors:
            out[name] = vectors
    return out


def named(decider: Any, vector: np.ndarray) -> str | None:
    match = decider.decide(vector, FINE)
    return match.person if match.known else None


def measure(decider: Any, known: dict, strangers: dict, marked: dict[str, str]) -> dict[str, Any]:
    """The rates above for one gallery state; ``marked``: stranger -> the person their
    seen photo was taken for."""
    seen_named = sum(named(decider, strangers[s][0]) == p for s, p in marked.items())
    own_hits = [sum(named(decider, v) == p for v in strangers[s][1:]) for s, p in marked.items()]
    own_any = [sum(named(decider, v) is not None for v in strangers[s][1:]) for s in marked]
    own_trials = [len(strangers[s]) - 1 for s in marked]
    any_hits = [sum(named(decider, v) is not None for v in vs[1:]) for vs in strangers.values()]
    any_trials = [len(vs) - 1 for vs in strangers.values()]
    fixed = set(marked.values())
    right, wrong, trials, right_fixed, trials_fixed = [], [], [], [], []
    for person, vectors in known.items():
        names = [named(decider, v) for v in vectors[ENROLL_PHOTOS:]]
        right.append(sum(n == person for n in names))
        wrong.append(sum(n is not None and n != person for n in names))
        trials.append(len(names))
        if person in fixed:
            right_fixed.append(right[-1])
            trials_fixed.append(len(names))
    return {
        "marked_seen_named": rate(seen_named, len(marked)),
        "marked_other_photos_named_as_before": by_person(own_hits, own_trials),
        "marked_other_photos_named_anyone": by_person(own_any, own_trials),
        "strangers_other_photos_named": by_person(any_hits, any_trials),
        "enrolled_named_right": by_person(right, trials),
        "enrolled_named_wrong": by_person(wrong, trials),
        "corrected_people_named_right": by_person(right_fixed, trials_fixed),
    }


def run_domain(encoder: str, policy: Policy, known: dict, strangers: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp, Gallery(Path(tmp) / "gallery.db") as gallery:
        for person, vectors in known.items():
            samples = [
                Sample(v, encoder, f"photo {i}", 100.0)
                for i, v in enumerate(vectors[:ENROLL_PHOTOS])
            ]
            gallery.add(person, samples)
        before = policy.for_gallery(gallery.matrix(encoder))
        marked = {}
        for s, vectors in strangers.items():
            person = named(before, vectors[0])
            if person is not None:
                marked[s] = person
        measured_before = measure(before, known, strangers, marked)
        for s, person in marked.items():  # what `edge-face not PERSON --sighting ID` stores
            gallery.add_impostor(person, strangers[s][0], encoder, f"bench: {s}")
        after = policy.for_gallery(gallery.matrix(encoder))
        measured_after = measure(after, known, strangers, marked)
    return {
        "enrolled": len(known),
        "strangers": len(strangers),
        "marked": len(marked),
        "people_corrected": len(set(marked.values())),
        "before": measured_before,
        "after": measured_after,
    }


def run(bundle_dir: Path, enrolled: int, strangers: int, loose: float) -> dict[str, Any]:
    root = data_root(None)
    bundle = load_bundle(bundle_dir)
    engine = load_engine(bundle, num_threads=1)
    m = bundle.manifest
    tau = m.tau.verify * loose
    policy = Policy(m.encoder.metric, m.tau.verify, m.tau.identify, tau=tau, margin=0.0)
    result: dict[str, Any] = {"bundle": m.name, "tau_verify": m.tau.verify, "loose": loose,
                              "tau": tau, "domains": {}}  # fmt: skip
    for source in ("lfw", "cfp"):
        t0 = time.perf_counter()
        k, s = people(root, source, enrolled, strangers)
        known, others = embed_all(engine, k, root), embed_all(engine, s, root)
        known = {n: v for n, v in known.items() if len(v) > ENROLL_PHOTOS}
        others = {n: v for n, v in others.items() if len(v) >= 2}
        print(f"report {source}: {len(known)} enrolled, {len(others)} strangers embedded in "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)  # fmt: skip
        result["domains"][f"report {source}"] = run_domain(m.encoder_id, policy, known, others)
    return result


ROWS = [
    ("marked_seen_named", "marked strangers' seen photo named as before"),
    ("marked_other_photos_named_as_before", "their other photos named as before"),
    ("marked_other_photos_named_anyone", "their other photos named anyone"),
    ("strangers_other_photos_named", "all strangers' other photos named anyone"),
    ("enrolled_named_right", "enrolled people's own photos named right"),
    ("corrected_people_named_right", "  of the people corrected"),
    ("enrolled_named_wrong", "enrolled people's own photos named wrong"),
]


def table(result: dict[str, Any]) -> str:
    rows = []
    for domain, d in result["domains"].items():
        rows.append([f"{domain}: {d['enrolled']} enrolled, {d['strangers']} strangers, "
                     f"{d['marked']} marked ({d['people_corrected']} people corrected)", "", ""])  # fmt: skip
        for key, label in ROWS:
            rows.append([label, counted(d["before"][key]), counted(d["after"][key])])
    return render(["", "before `not`", "after `not`"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "build" / "bundle-sface")
    parser.add_argument("--enrolled", type=int, default=150)
    parser.add_argument("--strangers", type=int, default=400)
    parser.add_argument("--loose", type=float, default=1.0, help="tau = this x tau.verify")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "feedback.json")
    args = parser.parse_args()
    result = run(args.bundle, args.enrolled, args.strangers, args.loose)
    result |= {"command": " ".join(sys.argv), "machine": machine(), "versions": edge_versions()}
    print(table(result))
    write_result(args.out, result)


if __name__ == "__main__":
    main()
