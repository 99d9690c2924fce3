"""Is it the same picture? A 64-bit difference hash finds candidates quickly; the pixels
confirm (a re-encoded copy differs by a few grey levels, a look-alike by tens)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

#: mean absolute difference (grey levels, 64x64) under which two pictures are one image:
#: LFW's Bart_Hendricks_0001 and Ricky_Ray_0001 (one photo, two names) differ by 3.0;
#: Gabrielle_Rose_0001 and Martha_Bowen_0001 (same difference hash) by 71.6
SAME_PICTURE = 12.0


def _grey(path: Path, size: tuple[int, int]) -> NDArray[np.float64]:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"{path}: not an image OpenCV can decode")
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA).astype(np.float64)


def difference_hash(path: Path) -> int:
    """64 bits: is each pixel of a 9x8 thumbnail brighter than its left neighbour."""
    g = _grey(path, (9, 8))
    bits = (g[:, 1:] > g[:, :-1]).ravel()
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def same_picture(a: Path, b: Path) -> bool:
    return float(np.abs(_grey(a, (64, 64)) - _grey(b, (64, 64))).mean()) < SAME_PICTURE
