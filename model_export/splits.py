"""Frozen, people-disjoint roles of the shared faces (``data/splits.json``).

Every consumer takes its people through this module, so that no figure is measured on
people something was fitted or chosen on:

- ``train``: what an encoder may learn from (``model-export train``);
- ``calibrate``: every threshold, margin, open-set table, detector score and quality gate
  is fitted here and only here (``model-export build``);
- ``select``: recipe and model choice, training curves (a student's validation pairs);
- ``report``: read only by ``make bench`` and the docs; nothing is fitted or chosen on it.

How people get their role (``assign``; the file freezes the result):

- the people of LFW's View 2 pairs of folds 1-3 (``lfw_protocol/pairs_dev.txt``,
  ``REPORT_FOLDS``) are ``report``: those pairs are the verification protocol
  (:func:`protocol_pairs`), so the standard figure is measured on people nothing was
  fitted on (the folds share no person);
- the people of the file's other folds (4-5) are ``calibrate`` or ``select``, half each
  by a hash of their name (``RELEASED_SHARES``): 303 of LFW's 826 people with two photos
  or more, without whom a gallery enrolled with several photos of one person was
  simulated and checked nowhere but on report (research/OPENSET.md, 2026-12-07);
- every other person gets a role from a hash of their name, with a fixed share per
  source (``SHARES``); CFP, a second domain, has a ``report`` share too;
- photos that are the same image (the same bytes, or the same picture under two names:
  equal 64-bit difference hashes confirmed pixel by pixel) bind their people together:
  the whole group takes one role (the strictest of its members': report first).

People are keyed ``source/Name`` (``lfw/Ann_Smith``, ``cfp/50_Cent``): CFP and LFW share
no identity (the data's README). Regenerate with ``python -m model_export.splits --write``
only when the data changes; a test checks the file against the data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from model_export.data import IMAGE_SUFFIXES, DataError, Pair, data_root, read_pairs
from model_export.image_hash import difference_hash, same_picture

logger = logging.getLogger(__name__)

ROLES = ("train", "calibrate", "select", "report")
SOURCES = ("lfw", "cfp")
SPLITS_FILE = Path(__file__).resolve().parent.parent / "data" / "splits.json"
#: the share of each role among the people a source does not already give ``report``
SHARES: dict[str, dict[str, float]] = {
    "lfw": {"train": 0.40, "calibrate": 0.45, "select": 0.15},
    "cfp": {"train": 0.20, "calibrate": 0.30, "select": 0.15, "report": 0.35},
}
#: the folds (1-based) of ``lfw_protocol/pairs_dev.txt`` that are the verification protocol
REPORT_FOLDS = (1, 2, 3)
#: the roles of the people of the pairs file's other folds
RELEASED_SHARES: dict[str, float] = {"calibrate": 0.5, "select": 0.5}
STRICTNESS = ("report", "select", "calibrate", "train")  # a bound group takes the first
PAIRS_FILE = Path("lfw_protocol") / "pairs_dev.txt"


class SplitError(DataError):
    """A consumer asked for people outside its role, or the splits file is missing."""


def photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def people_of(root: Path, source: str) -> dict[str, list[Path]]:
    """``source/Name`` -> photos, for every person folder of a source that has photos."""
    base = root / source
    if not base.is_dir():
        return {}
    found = {f"{source}/{d.name}": photos(d) for d in sorted(base.iterdir()) if d.is_dir()}
    return {k: v for k, v in found.items() if v}


def _fraction(key: str) -> float:
    """A stable number in [0, 1) from a person's key."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:12], 16) / 16**12


def _by_share(key: str, shares: Mapping[str, float]) -> str:
    x, edge = _fraction(key), 0.0
    for role, share in shares.items():
        edge += share
        if x < edge:
            return role
    return next(reversed(shares))


@dataclass(frozen=True)
class Survey:
    """What the data holds: people per source and the groups bound by a same image."""

    people: dict[str, list[Path]]  # key -> photos
    protocol: frozenset[str]  # the keys of the people of the protocol's pairs (report)
    bound: list[frozenset[str]]  # groups of 2+ people sharing an image
    released: frozenset[str] = frozenset()  # the people of the pairs file's other folds


def survey(root: Path) -> Survey:
    people: dict[str, list[Path]] = {}
    for source in SOURCES:
        people.update(people_of(root, source))
    if not people:
        raise DataError(f"no face data under {root} (expected lfw/ and cfp/ folders)")
    pairs_file = root / PAIRS_FILE
    by_role: dict[bool, set[str]] = {True: set(), False: set()}
    if pairs_file.is_file():
        for pair in read_pairs(pairs_file, root / "lfw"):
            by_role[pair.fold + 1 in REPORT_FOLDS] |= {
                f"lfw/{pair.left.parent.name}",
                f"lfw/{pair.right.parent.name}",
            }
    protocol = frozenset(by_role[True])
    return Survey(people, protocol, same_images(people), frozenset(by_role[False] - protocol))


def protocol_pairs(root: Path, pairs_file: Path | None = None) -> list[Pair]:
    """The LFW verification protocol: the pairs of ``REPORT_FOLDS`` (report people
    only), from ``pairs_file`` (default: the shared ``lfw_protocol/pairs_dev.txt``)."""
    pairs = read_pairs(pairs_file or root / PAIRS_FILE, root / "lfw")
    return [p for p in pairs if p.fold + 1 in REPORT_FOLDS]


def same_images(people: Mapping[str, list[Path]]) -> list[frozenset[str]]:
    """Groups of people who share an image: equal bytes, or equal difference hashes
    whose pixels agree (the same picture under two names, re-encoded)."""
    by_bytes: dict[str, set[str]] = {}
    by_dhash: dict[int, list[tuple[str, Path]]] = {}
    for key, paths in people.items():
        for path in paths:
            by_bytes.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), set()).add(key)
            by_dhash.setdefault(difference_hash(path), []).append((key, path))
    links = [keys for keys in by_bytes.values() if len(keys) > 1]
    for found in by_dhash.values():
        for i, (key_a, a) in enumerate(found):
            for key_b, b in found[i + 1 :]:
                if key_a != key_b and same_picture(a, b):
                    links.append({key_a, key_b})
    return _merge(links)


def _merge(links: Iterable[set[str]]) -> list[frozenset[str]]:
    groups: list[set[str]] = []
    for link in links:
        touching = [g for g in groups if g & link]
        merged = set(link).union(*touching)
        groups = [g for g in groups if not g & link] + [merged]
    return sorted((frozenset(g) for g in groups), key=sorted)


def assign(s: Survey) -> dict[str, str]:
    """Every person's role (see the module doc)."""
    roles = {}
    for key in s.people:
        source = key.split("/", 1)[0]
        if key in s.protocol:
            roles[key] = "report"
        elif key in s.released:
            roles[key] = _by_share(key, RELEASED_SHARES)
        else:
            roles[key] = _by_share(key, SHARES[source])
    for group in s.bound:
        strictest = min((roles[k] for k in group), key=STRICTNESS.index)
        for key in group:
            roles[key] = strictest
    return roles


@dataclass(frozen=True)
class Splits:
    """The frozen roles: ``role -> people`` and the reverse."""

    roles: dict[str, frozenset[str]]
    bound: list[frozenset[str]]

    def role_of(self, key: str) -> str | None:
        for role, people in self.roles.items():
            if key in people:
                return role
        return None

    def people(self, role: str, source: str | None = None) -> list[str]:
        """The keys of a role (of one source), sorted."""
        if role not in ROLES:
            raise SplitError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        keys = self.roles[role]
        return sorted(k for k in keys if source is None or k.startswith(f"{source}/"))

    def names(self, role: str, source: str) -> set[str]:
        """The folder names of a role's people of one source (``Ann_Smith``)."""
        return {k.split("/", 1)[1] for k in self.people(role, source)}

    def check(self, paths: Iterable[Path], role: str, root: Path) -> None:
        """Raise :class:`SplitError` when a photo under ``root`` belongs to a person
        outside ``role`` (a consumer reading people it must not)."""
        allowed = self.roles[role]
        for path in paths:
            key = key_of(path, root)
            if key not in allowed:
                raise SplitError(
                    f"{path}: {key} is in the {self.role_of(key) or 'no'} split, not in "
                    f"{role}: this step may only read {role} people (model_export/splits.py)"
                )


def key_of(path: Path, root: Path) -> str:
    """``source/Name`` of a photo under the data root."""
    rel = path.resolve().relative_to(root.resolve())
    return f"{rel.parts[0]}/{rel.parts[1]}"


def load(path: Path = SPLITS_FILE) -> Splits:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SplitError(
            f"cannot read the splits {path}: {exc} (python -m model_export.splits --write)"
        ) from exc
    roles = {role: frozenset(data["roles"][role]) for role in ROLES}
    return Splits(roles, [frozenset(g) for g in data.get("bound", [])])


def as_json(s: Survey) -> dict[str, object]:
    roles = assign(s)
    return {
        "about": "people-disjoint roles of the shared faces; see model_export/splits.py",
        "rules": {
            "protocol": f"people of folds {REPORT_FOLDS} of {PAIRS_FILE} are report",
            "released": f"people of its other folds: {RELEASED_SHARES}",
            "shares": SHARES,
        },
        "counts": {
            role: {
                src: sum(1 for k, r in roles.items() if r == role and k.startswith(f"{src}/"))
                for src in SOURCES
            }
            for role in ROLES
        },
        "bound": [sorted(g) for g in s.bound],
        "roles": {role: sorted(k for k, r in roles.items() if r == role) for role in ROLES},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Write or check data/splits.json.")
    parser.add_argument("--write", action="store_true", help="write the file from the data")
    parser.add_argument(
        "--data", type=Path, default=None, help="face data (default: $EDGE_FACE_DATA)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    data = as_json(survey(args.data or data_root()))
    text = json.dumps(data, indent=1) + "\n"
    if args.write:
        SPLITS_FILE.parent.mkdir(exist_ok=True)
        SPLITS_FILE.write_text(text)
        logger.info("wrote %s: %s", SPLITS_FILE, data["counts"])
    else:
        same = SPLITS_FILE.is_file() and SPLITS_FILE.read_text() == text
        logger.info(
            "%s %s the data: %s",
            SPLITS_FILE,
            "matches" if same else "does NOT match",
            data["counts"],
        )
        raise SystemExit(0 if same else 1)


if __name__ == "__main__":
    main()
