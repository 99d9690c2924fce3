"""Face data on disk: the LFW pairs protocol and folders of people's photos."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.errors import EdgeError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class DataError(EdgeError):
    """Face data is missing or malformed."""


def data_root(env: dict[str, str] | None = None) -> Path:
    """``$EDGE_FACE_DATA``, default ``../shared/faces`` relative to the repository root."""
    env = dict(os.environ) if env is None else env
    if env.get("EDGE_FACE_DATA"):
        return Path(env["EDGE_FACE_DATA"]).resolve()
    return (Path(__file__).resolve().parent.parent.parent / "shared" / "faces").resolve()


@dataclass(frozen=True, slots=True)
class Pair:
    fold: int
    left: Path
    right: Path
    same: bool


def lfw_image(images: Path, name: str, index: int) -> Path:
    return images / name / f"{name}_{index:04d}.jpg"


def read_pairs(pairs_file: Path, images: Path) -> list[Pair]:
    """Parse an LFW pairs file: ``folds<TAB>n``, then per fold n same-person lines
    ``Name i j`` and n different-person lines ``Name1 i Name2 j``; or a ``.json`` pairs
    file (``model-export train``'s held-out pairs: fold, two paths under ``images``, same)."""
    if pairs_file.suffix == ".json":
        return read_json_pairs(pairs_file, images)
    try:
        lines = [ln.split() for ln in pairs_file.read_text().splitlines() if ln.strip()]
    except OSError as exc:
        raise DataError(f"cannot read pairs file {pairs_file}: {exc}") from exc
    try:
        folds, n = int(lines[0][0]), int(lines[0][1])
    except (IndexError, ValueError) as exc:
        raise DataError(f"{pairs_file}: first line must be 'folds<TAB>n'") from exc
    body = lines[1:]
    if len(body) != folds * 2 * n:
        raise DataError(f"{pairs_file}: expected {folds * 2 * n} pairs, found {len(body)}")
    pairs = []
    for i, parts in enumerate(body):
        fold = i // (2 * n)
        if len(parts) == 3:
            name, a, b = parts
            pairs.append(
                Pair(fold, lfw_image(images, name, int(a)), lfw_image(images, name, int(b)), True)
            )
        elif len(parts) == 4:
            n1, a, n2, b = parts
            pairs.append(
                Pair(fold, lfw_image(images, n1, int(a)), lfw_image(images, n2, int(b)), False)
            )
        else:
            raise DataError(f"{pairs_file}: line {i + 2}: expected 3 or 4 fields")
    return pairs


def read_json_pairs(pairs_file: Path, images: Path) -> list[Pair]:
    """``{"pairs": [[fold, "Person/photo.jpg", "Other/photo.jpg", same], ...]}``."""
    import json

    try:
        rows = json.loads(pairs_file.read_text())["pairs"]
        return [Pair(int(f), images / a, images / b, bool(same)) for f, a, b, same in rows]
    except OSError as exc:
        raise DataError(f"cannot read pairs file {pairs_file}: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f'{pairs_file}: not a pairs file ({{"pairs": [[fold, path, path, same], ...]}})'
        ) from exc


def pair_people(pairs: list[Pair]) -> set[str]:
    """The people that appear in the pairs (to keep them out of calibration or training)."""
    return {p.left.parent.name for p in pairs} | {p.right.parent.name for p in pairs}


def list_images(root: Path) -> list[Path]:
    """Image files under a folder, sorted (for reproducible selections)."""
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


#: sources whose photos are tight face crops: a detector needs a border around the face
TIGHT_CROPS = ("cfp",)
#: the border added around a tight crop, as a share of each side (CFP's README: the Haar
#: detector finds a face in 43% of its frontal photos as given, 97% with a 30% border).
#: Black, not replicated: a replicated border puts stripes of the photo's own edge pixels
#: into the aligned face, which made different people alike (make bench, CFP report
#: strangers named by SFace's default rule: 25.46% replicated, commit a4fe931; 1.51% black)
BORDER = 0.30


def is_tight_crop(path: Path, root: Path | None = None) -> bool:
    """Is this photo from a source of tight face crops: ``<source>/<Person>/photo``
    under ``root``, or, without a root, a photo two folders below a ``cfp`` folder?"""
    if root is None:
        return path.parent.parent.name in TIGHT_CROPS
    try:
        return path.resolve().relative_to(root.resolve()).parts[0] in TIGHT_CROPS
    except ValueError:
        return False


def with_border(image: np.ndarray, share: float = BORDER) -> np.ndarray:
    """The image with a black border of ``share`` of its height and width (what an aligner
    puts outside a photo anyway)."""
    import cv2

    h, w = image.shape[:2]
    dy, dx = round(h * share), round(w * share)
    return cv2.copyMakeBorder(image, dy, dy, dx, dx, cv2.BORDER_CONSTANT, value=0)


def read_photo(path: Path, root: Path | None = None) -> np.ndarray:
    """A face photo of the shared data as RGB, with a border when it is a tight crop, so
    every system's detector sees the whole face with some context."""
    from edge.images import read_image

    image = read_image(path)
    return with_border(image) if is_tight_crop(path, root) else image


def generate_pairs(people: dict[str, list[Path]], folds: int = 5, seed: int = 0) -> list[Pair]:
    """Same-person and different-person pairs in equal numbers, people disjoint across
    folds (as LFW's View 2): every two consecutive photos of a person give a same pair."""
    rng = random.Random(seed)
    names = sorted(people)
    folds = max(1, min(folds, len(names) // 2))  # two people at least in every fold
    rng.shuffle(names)
    pairs: list[Pair] = []
    for fold in range(folds):
        members = names[fold::folds]
        same = [
            Pair(fold, photos[i], photos[i + 1], True)
            for n in members
            for photos in [people[n]]
            for i in range(0, len(photos) - 1, 2)
        ]
        diff = []
        for _ in range(len(same)):
            a, b = rng.sample(members, 2)
            diff.append(Pair(fold, rng.choice(people[a]), rng.choice(people[b]), False))
        pairs += same + diff
    return pairs
