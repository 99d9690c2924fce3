"""Face data on disk: the LFW pairs protocol and folders of people's photos."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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
