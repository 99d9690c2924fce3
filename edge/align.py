"""Alignment: cut each face out of the frame exactly as the encoder was trained to see it.

``dlib-chip`` (the dlib ResNet encoder): the detector's box is mapped to the box
convention of dlib's 5-point landmark model, the landmarks (eye corners, base of the
nose) are found with the numpy re-implementation of that model, and the chip is cut with
dlib's own geometry (similarity transform to dlib's template, padding, float bilinear
sampling, truncation), pixel-identical to ``dlib.get_face_chip``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.boxmap import apply_box_map
from edge.bundle import AlignmentSpec
from edge.chip import chip_transform, extract_chip
from edge.detect.yunet import as_rgb
from edge.landmarks import ShapePredictor
from edge.ports import Aligner
from edge.types import AlignedFace, Detection, RGBImage

logger = logging.getLogger(__name__)


class DlibChipAligner:
    """Detector box -> dlib 5-point landmarks -> dlib face chip."""

    def __init__(
        self,
        predictor: ShapePredictor,
        size: int = 150,
        padding: float = 0.25,
        box_map: dict[str, Any] | None = None,
    ) -> None:
        self.predictor = predictor
        self.size = size
        self.padding = padding
        self.box_map = box_map

    def landmark_box(self, det: Detection) -> tuple[int, int, int, int]:
        """The box the landmark model starts from, as dlib's integer rectangle."""
        if self.box_map is not None:
            rect = apply_box_map(self.box_map, det)
        else:
            b = det.box
            rect = (b.x1, b.y1, b.x2 - 1, b.y2 - 1)
        left, top, right, bottom = (int(np.floor(v + 0.5)) for v in rect)
        return left, top, right, bottom

    def landmarks(self, image: RGBImage, det: Detection) -> NDArray[np.float32]:
        return self.predictor.predict(image, self.landmark_box(det))

    def align(self, image: RGBImage, detection: Detection) -> AlignedFace:
        rgb = as_rgb(image)
        transform = chip_transform(self.landmarks(rgb, detection), self.size, self.padding)
        return AlignedFace(extract_chip(rgb, transform, self.size), detection)


def make_aligner(spec: AlignmentSpec, root: Path) -> Aligner:
    """The aligner a bundle's manifest describes."""
    if spec.type == "dlib-chip":
        if not spec.landmarks_file:
            raise ValueError("a dlib-chip alignment needs alignment.landmarks_file")
        predictor = ShapePredictor.load(root / spec.landmarks_file)
        return DlibChipAligner(predictor, spec.size, spec.padding, spec.box_map)
    raise ValueError(f"alignment type {spec.type!r} is not supported by this edge-face")
