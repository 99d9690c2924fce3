"""What the product benchmarks read: ``report`` people only (``model_export/splits.py``),
nothing that fitted a threshold or chose a model.

- the LFW View 2 pairs (every person in them is ``report``), checked photo by photo;
- the open set, one plan per domain (:func:`report_plans`): LFW report people (the most
  photographed enrolled, others as strangers) and CFP report people (a second domain:
  web photos of other celebrities), each enrolled person and each stranger a report
  person, enrolled people and strangers disjoint;
- the clip's distractor gallery: report LFW people.

Every photo list goes through ``Splits.check`` before a system sees it: a plan that
reached outside ``report`` stops the run. CFP's tight crops are bordered once by
``model_export.data.read_photo`` and written losslessly under ``build/bench-cache/``
(:func:`worker_copies`), so every system, peers included, reads the same pixels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from model_export import data, splits
from model_export.data import Pair

ROLE = "report"
ENROLL = 3  # photos enrolled per person (the first ones); the rest are probes


@dataclass(frozen=True, slots=True)
class OpenSetPlan:
    """One domain's open set: who is enrolled (with which photos) and who is a stranger."""

    domain: str  # "lfw" or "cfp"
    enrolled: dict[str, list[Path]]  # person -> photos: the first ENROLL enroll, the rest probe
    strangers: dict[str, list[Path]]  # person (never enrolled) -> photos probed
    about: str  # how the people and photos were chosen, for the docs

    def photos(self) -> list[Path]:
        found = {p for ps in self.enrolled.values() for p in ps}
        return sorted(found | {p for ps in self.strangers.values() for p in ps})

    def probes(self) -> int:
        return sum(max(0, len(ps) - ENROLL) for ps in self.enrolled.values())

    def stranger_photos(self) -> int:
        return sum(len(ps) for ps in self.strangers.values())


def hashed(names: Iterable[str]) -> list[str]:
    """Names in a fixed pseudo-random order (sha1 of the name)."""
    return sorted(names, key=lambda n: hashlib.sha1(n.encode()).hexdigest())


def lfw_plan(root: Path, names: set[str], people: int, strangers: int) -> OpenSetPlan:
    """The ``people`` most-photographed of ``names`` enrolled; one photo each of
    ``strangers`` others (in the hashed order) as strangers."""
    by_person = {n: splits.photos(root / "lfw" / n) for n in sorted(names)}
    by_person = {n: ps for n, ps in by_person.items() if ps}
    top = sorted(by_person, key=lambda n: (-len(by_person[n]), n))[:people]
    rest = hashed(set(by_person) - set(top))[:strangers]
    return OpenSetPlan(
        "lfw",
        {n: by_person[n] for n in top},
        {n: by_person[n][:1] for n in rest},
        f"the {len(top)} most-photographed LFW report people enrolled, one photo each of "
        f"{len(rest)} other LFW report people as strangers",
    )


def cfp_plan(root: Path, names: set[str], people: int, strangers: int) -> OpenSetPlan:
    """CFP's frontal photos (its profiles are a plan of their own, ``cfp_profile_plan``):
    in the hashed order, ``people`` enrolled, the next ``strangers`` as strangers with all their
    frontal photos (CFP has few people, so each stranger gives several trials)."""
    frontal = {n: sorted((root / "cfp" / n).glob("frontal_*.jpg")) for n in sorted(names)}
    order = hashed(n for n, ps in frontal.items() if ps)
    chosen, rest = order[:people], order[people : people + strangers]
    return OpenSetPlan(
        "cfp",
        {n: frontal[n] for n in chosen},
        {n: frontal[n] for n in rest},
        f"{len(chosen)} CFP report people enrolled, {len(rest)} other CFP report people as "
        "strangers with all their frontal photos (profiles apart)",
    )


def cfp_profile_plan(root: Path, frontal: OpenSetPlan) -> OpenSetPlan:
    """The CFP plan's people again, searched with their profile photos: each enrolled person
    enrolled with the same first frontal photos, their profiles the mated searches; the
    strangers' profiles the non-mated ones. Where a wrong name is most likely (issue 28):
    a profile must be left unknown rather than named."""

    def profiles(name: str) -> list[Path]:
        return sorted((root / "cfp" / name).glob("profile_*.jpg"))

    enrolled = {n: ps[:ENROLL] + profiles(n) for n, ps in frontal.enrolled.items()}
    strangers = {n: profiles(n) for n in frontal.strangers}
    return OpenSetPlan(
        "cfp-profile",
        enrolled,
        {n: ps for n, ps in strangers.items() if ps},
        f"the same {len(enrolled)} CFP report people enrolled from the same frontal photos, "
        f"searched with their profile photos; the profiles of the same {len(strangers)} "
        "strangers",
    )


def report_plans(
    root: Path,
    s: splits.Splits,
    people: int = 200,
    strangers: int = 1500,
    cfp_people: int = 60,
    cfp_strangers: int = 60,
) -> dict[str, OpenSetPlan]:
    """The open set of each domain, drawn from ``report`` people only, and checked."""
    plans: dict[str, OpenSetPlan] = {}
    lfw = s.names(ROLE, "lfw")
    if lfw and people:
        plans["lfw"] = lfw_plan(root, lfw, people, strangers)
    cfp = s.names(ROLE, "cfp")
    if cfp and cfp_people and (root / "cfp").is_dir():
        plans["cfp"] = cfp_plan(root, cfp, cfp_people, cfp_strangers)
        plans["cfp-profile"] = cfp_profile_plan(root, plans["cfp"])
    for plan in plans.values():
        check(s, plan.photos(), root)
    return plans


@dataclass(frozen=True)
class Inputs:
    """Everything a run reads: the pairs, the open set of each domain, and the file each
    photo is read from (``worker_copies``)."""

    pairs: list[Pair]
    pair_photos: list[Path]
    plans: dict[str, OpenSetPlan]
    copies: dict[Path, Path]  # photo -> the file a worker reads

    def worker_files(self) -> list[Path]:
        return sorted(self.copies.values())

    def originals(self) -> dict[str, str]:
        return {str(w): str(o) for o, w in self.copies.items()}


def prepare(
    root: Path,
    s: splits.Splits,
    pairs: list[Pair],
    cache: Path,
    people: int = 200,
    strangers: int = 1500,
    cfp_people: int = 60,
    cfp_strangers: int = 60,
) -> Inputs:
    """The pairs (checked) and the open sets of report people, with the workers' files."""
    pairs = report_pairs(pairs, s, root)
    pair_photos = sorted({p.left for p in pairs} | {p.right for p in pairs})
    plans = report_plans(root, s, people, strangers, cfp_people, cfp_strangers)
    photos = sorted(set(pair_photos).union(*(p.photos() for p in plans.values())))
    return Inputs(pairs, pair_photos, plans, worker_copies(photos, root, cache))


def check(s: splits.Splits, photos: Iterable[Path], root: Path) -> None:
    """Stop (``SplitError``) on any photo of a person outside ``report``."""
    s.check(photos, ROLE, root)


def verification_pairs(root: Path, given: Path | None) -> tuple[Path, list[Pair]]:
    """The pairs file to name and its pairs: ``given`` whole, else the shared file's report
    folds (``splits.protocol_pairs``: folds 4-5 are calibrate and select people)."""
    if given is not None:
        return given, data.read_pairs(given, root / "lfw")
    return root / splits.PAIRS_FILE, splits.protocol_pairs(root)


def report_pairs(pairs: list[Pair], s: splits.Splits, root: Path) -> list[Pair]:
    check(s, [p for pair in pairs for p in (pair.left, pair.right)], root)
    return pairs


def clip_distractors(root: Path, s: splits.Splits, count: int) -> list[Path]:
    """One photo each of ``count`` LFW report people (hashed order), for the clip's gallery."""
    chosen = []
    for name in hashed(s.names(ROLE, "lfw")):
        photos = splits.photos(root / "lfw" / name)
        if photos:
            chosen.append(photos[0])
        if len(chosen) == count:
            break
    check(s, chosen, root)
    return chosen


def worker_copies(photos: list[Path], root: Path, cache: Path) -> dict[Path, Path]:
    """photo -> the file a worker reads: the photo itself, or for a tight crop its bordered
    copy (``read_photo``), written once as PNG under ``cache`` (keyed by the code that
    borders it)."""
    import cv2

    key = hashlib.sha256(Path(data.__file__).read_bytes()).hexdigest()[:12]
    out: dict[Path, Path] = {}
    for photo in photos:
        if not data.is_tight_crop(photo, root):
            out[photo] = photo
            continue
        rel = photo.resolve().relative_to(root.resolve())
        # not under a folder named cfp: nothing may take the copy for a tight crop again
        rel = Path(f"{rel.parts[0]}-bordered", *rel.parts[1:])
        copy = (cache / f"bordered-{key}" / rel).with_suffix(".png")
        if not copy.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            image = data.read_photo(photo, root)
            part = copy.with_name(copy.stem + ".part.png")
            if not cv2.imwrite(str(part), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
                raise OSError(f"cannot write {part}")
            part.replace(copy)
        out[photo] = copy
    return out
