"""Map a detector's box and five landmarks to the box convention a landmark model was
trained on (dlib's 5-point predictor expects dlib HOG-detector boxes).

A linear map, fitted by least squares at build time (``model_export.boxmap``), in
coordinates normalised by the face's own centre and scale, so one fit holds for any face
size and position. The manifest carries ``{"design": ..., "coef": [[...], ...]}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from edge.types import Detection

DESIGNS = ("box_norm", "boxlm_norm", "lm_norm")
#: how many features each design gives (the rows of its coefficient matrix)
N_FEATURES = {"box_norm": 2, "boxlm_norm": 12, "lm_norm": 11}
Rect = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class BoxMap:
    """The manifest's ``alignment.box_map``: a design and its (features x 4) coefficients,
    checked on load so that a malformed map is a bundle error, not a crash at a face."""

    design: Literal["box_norm", "boxlm_norm", "lm_norm"]
    coef: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        rows = N_FEATURES[self.design]
        if len(self.coef) != rows or any(len(row) != 4 for row in self.coef):
            raise ValueError(f"coef: design {self.design} needs {rows} rows of 4 numbers")
        if not np.all(np.isfinite(np.asarray(self.coef, np.float64))):
            raise ValueError("coef: every value must be a finite number")


def features(design: str, det: Detection) -> tuple[NDArray[np.float64], float, float, float]:
    """The features of one detection, and the frame (cx, cy, scale) its target lives in."""
    b = det.box
    lm = np.asarray(det.landmarks, np.float64).reshape(5, 2)
    if design in ("box_norm", "boxlm_norm"):
        cx, cy, s = (b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2, (b.width + b.height) / 2
        f = [1.0, (b.width - b.height) / s]
        if design == "boxlm_norm":
            f += list(((lm - (cx, cy)) / s).ravel())
        return np.array(f), cx, cy, s
    if design == "lm_norm":
        m = lm.mean(axis=0)
        s = float(np.sqrt(((lm - m) ** 2).sum(axis=1).mean()))
        return np.concatenate([[1.0], ((lm - m) / s).ravel()]), float(m[0]), float(m[1]), s
    raise ValueError(f"unknown box-map design {design!r}; known: {DESIGNS}")


def apply_box_map(box_map: BoxMap, det: Detection) -> Rect:
    """(left, top, right, bottom) in the target convention (right/bottom inclusive)."""
    f, cx, cy, s = features(box_map.design, det)
    out = f @ np.asarray(box_map.coef, np.float64) * s + (cx, cy, cx, cy)
    return float(out[0]), float(out[1]), float(out[2]), float(out[3])
