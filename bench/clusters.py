"""Grouping unknown faces: how pure are the groups, and into how many is a person split?

What ``edge-face sightings cluster`` does (edge/clusters.py), on real LFW photos of many
people, through the device's detector, aligner and encoder, at the bundle's
``tau.verify``: people with several photos (their photos should end in one group, alone)
mixed with people seen once (each should stay alone). Both methods, on two sets of people:

- ``select`` people (data/splits.json) choose the method the CLI uses;
- ``report`` people give the figures the docs quote (nothing was chosen on them);

each in two domains: LFW's news photos and CFP's frontal web photos (ten a person); and
the Hamilton clip's sightings as the daemon keeps them (nobody enrolled), labelled by the
clip's reference photos.

    .venv/bin/python bench/clusters.py [--bundle build/bundle-sface] [--people 60]
        [--photos 8] [--singles 60] [--out bench/results/clusters.json]

Prints a table and writes the JSON (machine, versions, command, date).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from intervals import counted, rate
from report import edge_versions, machine, render, write_result
from report_data import hashed

from edge.bundle import load_bundle
from edge.clusters import Method, cluster
from edge.engine import load_engine
from model_export import splits
from model_export.data import data_root, read_photo

REPO = Path(__file__).resolve().parent.parent
METHODS: tuple[Method, ...] = ("average", "graph")


def people_set(
    root: Path, role: str, source: str, people: int, photos: int, singles: int
) -> dict[str, list[Path]]:
    """``people`` with 2+ photos (up to ``photos`` each) and ``singles`` others, one photo
    each, of ``role`` in ``source`` (LFW report: outside the pairs; CFP: frontal photos),
    in a fixed pseudo-random order."""
    s = splits.load()
    names = s.names(role, source)
    by = {
        n: [p for p in splits.photos(root / source / n) if "profile" not in p.name]
        for n in hashed(names)
    }
    many = [n for n in by if len(by[n]) >= 2][:people]
    once = [n for n in by if n not in many and by[n]][:singles]
    chosen = {n: by[n][:photos] for n in many} | {n: by[n][:1] for n in once}
    s.check([p for ps in chosen.values() for p in ps], role, root)
    return chosen


def embed_all(
    engine: Any, chosen: dict[str, list[Path]], root: Path
) -> tuple[np.ndarray, list[str]]:
    """One embedding per photo with a face (its largest), and whose it is."""
    vectors, owners = [], []
    for person, paths in chosen.items():
        for path in paths:
            image = read_photo(path, root)  # CFP's tight crops get a border
            dets = engine.detect(image)
            if not dets:
                continue
            face = engine.align(image, max(dets, key=lambda d: d.box.area))
            [e] = engine.embed([face])
            vectors.append(e.vector)
            owners.append(person)
    return np.asarray(vectors, np.float32), owners


def score(groups: list[list[int]], owners: list[str]) -> dict[str, Any]:
    """Purity (faces in a group whose majority is their own person), groups holding
    several people, and per person seen more than once: groups their faces fall into."""
    n = len(owners)
    majority = sum(Counter(owners[i] for i in g).most_common(1)[0][1] for g in groups)
    mixed = sum(1 for g in groups if len({owners[i] for i in g}) > 1)
    where: dict[str, set[int]] = {}
    for k, g in enumerate(groups):
        for i in g:
            where.setdefault(owners[i], set()).add(k)
    counts = Counter(owners)
    repeated = [p for p in counts if counts[p] > 1]
    splits_of = [len(where[p]) for p in repeated]
    whole = sum(
        1 for p in repeated if len(where[p]) == 1 and len(groups[next(iter(where[p]))]) == counts[p]
    )
    singles = [p for p in counts if counts[p] == 1]
    alone = sum(1 for p in singles if len(groups[next(iter(where[p]))]) == 1)
    return {
        "faces": n,
        "groups": len(groups),
        "purity": rate(majority, n),
        "mixed_groups": mixed,
        "people_repeated": len(repeated),
        "groups_per_person_mean": float(np.mean(splits_of)) if splits_of else 0.0,
        "people_in_one_pure_group": rate(whole, len(repeated)),
        "singles_alone": rate(alone, len(singles)),
    }


def clip_faces(bundle_dir: Path, engine: Any, root: Path) -> tuple[np.ndarray, list[str]]:
    """The Hamilton clip through the daemon's own pipeline (default config, nobody
    enrolled, sightings kept as ``[sightings]`` keeps them: one per decided track, quiet
    ones too); each sighting labelled by the nearest reference photo within tau.verify
    (the clip's three people), else as a person of its own."""
    import sqlite3
    import tempfile

    from edge.config import Config
    from edge.decision import distance
    from edge.gallery import Gallery
    from edge.images import read_image
    from edge.service import LogSink, daemon_pipeline
    from edge.sightings import Recorder, SightingStore
    from edge.sources import open_source

    bundle = load_bundle(bundle_dir)
    m = bundle.manifest
    store = SightingStore(sqlite3.connect(":memory:", isolation_level=None))
    hamilton = root / "videos" / "hamilton"
    with tempfile.TemporaryDirectory() as tmp, Gallery(Path(tmp) / "gallery.db") as gallery:
        pipeline = daemon_pipeline(Config(), bundle, engine, gallery, LogSink(), camera="clip",
                                   sightings=Recorder(store, m.encoder_id))  # fmt: skip
        source = open_source(str(hamilton / "short_hamilton_clip.mp4"))
        while (frame := source.read()) is not None:
            pipeline.process(frame)
        source.close()
    rows = [r for r in store.list(full=True) if r.vector is not None]
    refs = {}
    for photo in sorted((hamilton / "reference").iterdir()):
        image = read_image(photo)
        [e] = engine.embed([engine.align(image, engine.detect(image)[0])])
        refs[photo.stem] = e.vector
    owners = []
    for r in rows:
        d = {name: float(distance(r.vector, v, m.encoder.metric)[0, 0]) for name, v in refs.items()}
        best = min(d, key=lambda n: d[n])
        owners.append(best if d[best] <= m.tau.verify else f"track {r.track_id}")
    return np.asarray([r.vector for r in rows], np.float32), owners


def run(bundle_dir: Path, people: int, photos: int, singles: int) -> dict[str, Any]:
    root = data_root(None)
    bundle = load_bundle(bundle_dir)
    engine = load_engine(bundle, num_threads=1)
    metric, tau = bundle.manifest.encoder.metric, bundle.manifest.tau.verify
    result: dict[str, Any] = {"bundle": bundle.manifest.name, "tau_verify": tau, "sets": {}}
    for role in ("select", "report"):
        for source in ("lfw", "cfp"):
            chosen = people_set(root, role, source, people, photos, singles)
            t0 = time.perf_counter()
            vectors, owners = embed_all(engine, chosen, root)
            print(f"{role} {source}: {len(owners)} faces of {len(chosen)} people embedded in "
                  f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)  # fmt: skip
            result["sets"][f"{role} {source}"] = {
                m: score(cluster(vectors, metric, tau, m), owners) for m in METHODS
            }
    vectors, owners = clip_faces(bundle_dir, engine, root)
    print(f"clip: {len(owners)} sightings ({', '.join(sorted(set(owners)))})", file=sys.stderr)
    result["sets"]["clip hamilton"] = {
        m: score(cluster(vectors, metric, tau, m), owners) for m in METHODS
    }
    return result


def table(result: dict[str, Any]) -> str:
    rows = []
    for role, by_method in result["sets"].items():
        for method, r in by_method.items():
            rows.append([role, method, str(r["faces"]), str(r["groups"]), counted(r["purity"]),
                         str(r["mixed_groups"]), f"{r['groups_per_person_mean']:.2f}",
                         counted(r["people_in_one_pure_group"]), counted(r["singles_alone"])])  # fmt: skip
    head = ["people", "method", "faces", "groups", "purity", "mixed groups",
            "groups per person", "person in one pure group", "seen-once alone"]  # fmt: skip
    return render(head, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "build" / "bundle-sface")
    parser.add_argument("--people", type=int, default=60)
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--singles", type=int, default=60)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "clusters.json")
    args = parser.parse_args()
    result = run(args.bundle, args.people, args.photos, args.singles)
    result |= {"command": " ".join(sys.argv), "machine": machine(), "versions": edge_versions()}
    print(table(result))
    write_result(args.out, result)


if __name__ == "__main__":
    main()
