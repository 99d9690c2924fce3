"""Which photos calibrate, check and guard a bundle: deterministic, disjoint selections of
people who are not in the evaluation pairs (so the reported accuracy stays held out)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from model_export.data import IMAGE_SUFFIXES, DataError


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
    root: Path, exclude: set[str], calibration: int = 300, check: int = 200
) -> tuple[list[Path], list[Path], list[Path]]:
    """(calibration photos, held-out photos for the float-vs-int8 check, golden photos).

    The three sets are disjoint in people. Golden: 8 people with two photos each, so
    the golden distance matrix holds both same-person and different-person pairs.
    """
    cal = select(root, exclude, calibration)
    used = {p.parent.name for p in cal}
    chk = select(root, exclude | used, check)
    used |= {p.parent.name for p in chk}
    golden = select(root, exclude | used, 16, per_person=2)
    return cal, chk, golden
