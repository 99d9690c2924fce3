"""What a bundle is fitted on: only the ``calibrate`` people of the frozen splits
(``model_export.splits``), never people a figure is reported on.

- ``calibration_sets``: deterministic, people-disjoint photo sets for the int8
  calibration, the float-vs-int8 check and the golden faces (LFW calibrate people);
- ``calibrate_people``: the calibrate people of LFW and CFP (CFP's near-frontal photos:
  a door camera sees faces from the front; profiles are left out), minus the people a
  trained encoder learnt from;
- ``calibrate_pairs``: same- and different-person pairs of those people, on which tau
  and mirror averaging are fitted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from model_export.data import IMAGE_SUFFIXES, DataError, Pair, generate_pairs, pair_people
from model_export.encoders import EncoderError
from model_export.splits import SOURCES, load

#: CFP photos used: the near-frontal ones (``frontal_NN.jpg``)
CFP_PHOTOS = "frontal_"


def _people(root: Path, exclude: set[str]) -> list[Path]:
    """Person folders in a stable pseudo-random order (by the hash of the name), so a
    selection spreads over the alphabet and does not change when folders are added."""
    folders = [d for d in root.iterdir() if d.is_dir() and d.name not in exclude]
    return sorted(folders, key=lambda d: hashlib.sha1(d.name.encode()).hexdigest())


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def select(root: Path, exclude: set[str], count: int, per_person: int = 1) -> list[Path]:
    """``count`` photos, the first ``per_person`` of each person in the stable order."""
    chosen: list[Path] = []
    for folder in _people(root, exclude):
        images = _images(folder)
        if len(images) < per_person:
            continue
        chosen.extend(images[:per_person])
        if len(chosen) >= count:
            return chosen[:count]
    if not chosen:
        raise DataError(f"no photos to select under {root} (one folder per person expected)")
    return chosen


def calibration_sets(
    root: Path, people: set[str] | None, calibration: int = 300, check: int = 200
) -> tuple[list[Path], list[Path], list[Path]]:
    """(calibration photos, held-out photos for the float-vs-int8 check, golden photos)
    of ``people`` under ``root`` (None: every person there).

    The three sets are disjoint in people. Golden: 8 people with two photos each, so
    the golden distance matrix holds both same-person and different-person pairs.
    """
    others = set() if people is None else {d.name for d in root.iterdir() if d.is_dir()} - people
    cal = select(root, others, calibration)
    others |= {p.parent.name for p in cal}
    chk = select(root, others, check)
    others |= {p.parent.name for p in chk}
    golden = select(root, others, 16, per_person=2)
    return cal, chk, golden


def calibrate_people(data_root: Path, exclude: Iterable[str] = ()) -> dict[str, list[Path]]:
    """``source/Name`` -> photos of every calibrate person (LFW; CFP's frontal photos),
    minus ``exclude`` (keys, or bare LFW names as older training records list them)."""
    skip = {k if "/" in k else f"lfw/{k}" for k in exclude}
    splits = load()
    found: dict[str, list[Path]] = {}
    for source in SOURCES:
        for key in splits.people("calibrate", source):
            if key in skip:
                continue
            folder = data_root / key
            photos = _images(folder) if folder.is_dir() else []
            if source == "cfp":
                photos = [p for p in photos if p.name.startswith(CFP_PHOTOS)]
            if photos:
                found[key] = photos
    if not found:
        raise DataError(f"no calibrate people with photos under {data_root} (data/splits.json)")
    return found


def calibrate_pairs(people: dict[str, list[Path]], seed: int = 0) -> list[Pair]:
    """Same- and different-person pairs of the people with two photos or more."""
    multi = {k: v for k, v in people.items() if len(v) >= 2}
    if len(multi) < 4:
        raise DataError(f"only {len(multi)} calibrate people have two photos: too few for pairs")
    return generate_pairs(multi, seed=seed)


def fitting_people(
    data_root: Path, calibration_root: Path | None, train_dir: Path | None
) -> tuple[dict[str, list[Path]], set[str] | None]:
    """The people a bundle is fitted on (key -> photos), minus those a trained encoder
    learnt from, and by folder name those among them under the calibration root (None:
    every folder of a --calibration DIR of the user's own)."""
    trained = trained_people(train_dir)
    if calibration_root is None:
        people = calibrate_people(data_root, exclude=trained)
        return people, {k.split("/", 1)[1] for k in people if k.startswith("lfw/")}
    root = calibration_root
    people = {
        f"{root.name}/{d.name}": sorted(p for p in d.iterdir() if p.is_file())
        for d in sorted(root.iterdir())
        if d.is_dir() and d.name not in trained and f"lfw/{d.name}" not in trained
    }
    return {k: v for k, v in people.items() if v}, None


def trained_people(train_dir: Path | None) -> set[str]:
    """The people a trained encoder learnt from (``train_people.txt``), as written."""
    if train_dir is None or not (train_dir / "train_people.txt").is_file():
        return set()
    return set((train_dir / "train_people.txt").read_text().split("\n")) - {""}


def check_held_out(train_dir: Path, pairs: list[Any], pairs_file: Path) -> None:
    """Refuse to evaluate (or fit tau) on pairs of people a trained encoder learnt from."""
    trained = {k.rsplit("/", 1)[-1] for k in trained_people(train_dir)}  # keys or bare names
    if not pairs or not trained:
        return
    shared = pair_people(pairs) & trained
    if shared:
        raise EncoderError(
            f"{pairs_file}: {len(shared)} of the people in these pairs (e.g. {sorted(shared)[0]}) "
            f"were in the encoder's training set, so the accuracy would not be held out: "
            f"evaluate on {train_dir / 'val_pairs.json'} (the default) or on other people"
        )
