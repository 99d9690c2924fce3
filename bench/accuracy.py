"""Accuracy from vectors, the same code for every system: vectors in, figures out.

- :func:`pair_figures`: the LFW pairs protocol (``model_export.metrics.verification_report``:
  k-fold accuracy, TAR at FAR 1e-3, AUC) on each system's own score, plus the accuracy
  at the system's own documented threshold, and the genuine and impostor distances.
- :func:`openset_figures`: the gallery benchmark's protocol (bench/gallery_openset.py):
  the most-photographed people enrolled with up to 3 photos each, their other photos and
  one photo each of people never enrolled identified; the rules scored with
  ``gallery_openset.score``. A photo is enrolled only when the system's detector finds
  exactly one face in it (face_recognition's own example does the same); a probe is
  its largest face, and a probe without a face is left unknown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gallery_openset import score, tau_at_strangers
from numpy.typing import NDArray

from edge.matcher import Rule
from model_export.data import Pair
from model_export.metrics import accuracy_at, verification_report

Run = dict[str, Any]  # a worker's .npz: paths, centre, largest, n_faces, no_face, ...


def pair_distance(
    a: NDArray[np.float64], b: NDArray[np.float64], metric: str
) -> NDArray[np.float64]:
    if metric == "cosine":
        na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        return np.asarray(1.0 - (a * b).sum(1) / np.maximum(na * nb, 1e-12))
    return np.asarray(np.linalg.norm(a - b, axis=1))


def pair_figures(run: Run, pairs: list[Pair], metric: str, threshold: float) -> dict[str, Any]:
    index = {Path(p): i for i, p in enumerate(run["paths"])}
    ok = ~run["unreadable"]
    usable = [p for p in pairs if ok[index[p.left]] and ok[index[p.right]]]
    a = run["centre"][[index[p.left] for p in usable]]
    b = run["centre"][[index[p.right] for p in usable]]
    d = pair_distance(a, b, metric)
    same = np.array([p.same for p in usable])
    figures: dict[str, Any] = verification_report(d, same, np.array([p.fold for p in usable]))
    photos = sorted({index[p.left] for p in pairs} | {index[p.right] for p in pairs})
    figures |= {
        "threshold": threshold,
        "accuracy_at_threshold": accuracy_at(d, same, threshold),
        "photos": len(photos),
        "no_face": int(run["no_face"][photos].sum()),
        "unreadable": int(run["unreadable"][photos].sum()),
        "genuine": [round(float(x), 4) for x in d[same]],
        "impostor": [round(float(x), 4) for x in d[~same]],
    }
    return figures


@dataclass(frozen=True, slots=True)
class OpenSetPlan:
    enrolled: dict[str, list[Path]]  # person -> all their photos (first 3 to enroll)
    strangers: list[Path]  # one photo each of people never enrolled

    def photos(self) -> list[Path]:
        return sorted({p for ps in self.enrolled.values() for p in ps} | set(self.strangers))


def openset_plan(lfw: Path, people: int, strangers: int) -> OpenSetPlan:
    """gallery_openset.py's choice: the ``people`` most-photographed LFW people, and one
    photo each of ``strangers`` others (in a fixed pseudo-random order)."""
    by_person = {d.name: sorted(d.glob("*.jpg")) for d in lfw.iterdir() if d.is_dir()}
    top = sorted(by_person, key=lambda n: (-len(by_person[n]), n))[:people]
    rest = sorted(set(by_person) - set(top), key=lambda n: hashlib.sha1(n.encode()).hexdigest())
    return OpenSetPlan({n: by_person[n] for n in top}, [by_person[n][0] for n in rest[:strangers]])


Ranked = list[tuple[str, float]]


def _ranker(names: list[str], vectors: NDArray[np.float64], metric: str) -> Callable[[Any], Ranked]:
    people = sorted(set(names))
    owner = np.array([people.index(n) for n in names])

    def rank(vector: NDArray[np.float64] | None) -> Ranked:
        if vector is None or np.isnan(vector).any():
            return []
        d = pair_distance(vectors, np.broadcast_to(vector, vectors.shape), metric)
        best = np.full(len(people), np.inf)
        np.minimum.at(best, owner, d)
        order = np.argsort(best, kind="stable")[:2]
        return [(people[i], float(best[i])) for i in order]

    return rank


def openset_figures(
    run: Run, plan: OpenSetPlan, metric: str, rules: Callable[[int], dict[str, Rule]]
) -> dict[str, Any]:
    """``rules(embeddings)`` gives the named rules for a gallery of that many embeddings;
    two oracle rules (tau set on these strangers for 1% accepted) are added."""
    index = {Path(p): i for i, p in enumerate(run["paths"])}
    names, vectors, refused = [], [], 0
    known: list[tuple[str, Path]] = []
    for person, photos in plan.enrolled.items():
        for photo in photos[:3]:
            i = index[photo]
            if run["n_faces"][i] == 1:
                names.append(person)
                vectors.append(run["largest"][i])
            else:
                refused += 1
        known += [(person, p) for p in photos[3:]]
    rank = _ranker(names, np.stack(vectors), metric)

    def probe(path: Path) -> Ranked:
        i = index[path]
        return rank(run["largest"][i]) if run["n_faces"][i] > 0 else []

    known_ranked = [(truth, probe(p)) for truth, p in known]
    strangers = [probe(p) for p in plan.strangers]
    named = rules(len(vectors))
    margins = {0.0} | {r.margin for r in named.values()}
    for margin in sorted(margins):
        label = "1% strangers (oracle)" + (f", margin {margin:g}" if margin else "")
        named[label] = Rule(tau_at_strangers(strangers, 0.01, margin), margin)
    return {
        "enrolled_people": len(set(names)),
        "embeddings": len(vectors),
        "refused_photos": refused,
        "known_probes": len(known_ranked),
        "strangers": len(strangers),
        "probes_without_face": sum(not r for _, r in known_ranked) + sum(not r for r in strangers),
        "rules": {name: score(rule, known_ranked, strangers) for name, rule in named.items()},
    }
