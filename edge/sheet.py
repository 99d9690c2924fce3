"""Contact sheets: face crops in a grid, each under its number, in one JPEG
(``edge-face sightings --sheet``): people would rather look than read."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from edge.errors import EdgeError

TILE = 128  # pixels a crop is scaled to
LABEL = 22  # pixels of the caption strip
COLUMNS = 8


def _tile(crop: bytes, caption: str) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(crop, np.uint8), cv2.IMREAD_COLOR) if crop else None
    tile = np.full((TILE + LABEL, TILE, 3), 40, np.uint8)
    if image is not None and image.size:
        h, w = image.shape[:2]
        s = TILE / max(h, w)
        small = cv2.resize(
            image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA
        )
        y, x = (TILE - small.shape[0]) // 2, (TILE - small.shape[1]) // 2
        tile[y : y + small.shape[0], x : x + small.shape[1]] = small
    cv2.putText(
        tile,
        caption[:18],
        (4, TILE + 16),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return tile


def write_sheet(path: Path, items: Sequence[tuple[str, bytes]], columns: int = COLUMNS) -> int:
    """Write ``(caption, JPEG crop)`` tiles in a grid to ``path``; returns the tile count."""
    if not items:
        raise EdgeError("nothing to put on a contact sheet")
    tiles = [_tile(crop, caption) for caption, crop in items]
    columns = min(columns, len(tiles))
    blank = np.zeros_like(tiles[0])
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    rows[-1] = rows[-1] + [blank] * (columns - len(rows[-1]))
    sheet = np.vstack([np.hstack(r) for r in rows])
    ok, data = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise EdgeError(f"cannot encode the contact sheet for {path}")
    try:
        path.write_bytes(data.tobytes())
    except OSError as exc:
        raise EdgeError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return len(tiles)
