"""Alignment: cut each face out of the frame exactly as the encoder was trained to see it.

``dlib-chip`` (the dlib ResNet encoder): the detector's box is mapped to the box
convention of dlib's 5-point landmark model, the landmarks (eye corners, base of the
nose) are found with the numpy re-implementation of that model, and the chip is cut with
dlib's own geometry (similarity transform to dlib's template, padding, float bilinear
sampling, truncation), pixel-identical to ``dlib.get_face_chip``.

``similarity`` (ArcFace-style encoders such as SFace): the detector's own five landmarks
are mapped onto the bundle's template (for SFace the standard 112x112 ArcFace points) by
the least-squares similarity transform (Umeyama), and the face is warped with bilinear
interpolation, as ``cv2.FaceRecognizerSF.alignCrop`` does. No landmark model is needed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from edge.boxmap import BoxMap, apply_box_map
from edge.bundle import AlignmentSpec
from edge.chip import chip_transform, extract_chip
from edge.detect.yunet import as_rgb
from edge.landmarks import ShapePredictor
from edge.ports import Aligner
from edge.types import AlignedFace, Detection, RGBImage

# The five points of the standard 112x112 ArcFace crop (insightface; OpenCV's alignCrop),
# in YuNet's order: right eye, left eye, nose tip, right and left mouth corners.
ARCFACE_112 = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)

logger = logging.getLogger(__name__)


class DlibChipAligner:
    """Detector box -> dlib 5-point landmarks -> dlib face chip."""

    def __init__(
        self,
        predictor: ShapePredictor,
        size: int = 150,
        padding: float = 0.25,
        box_map: BoxMap | None = None,
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


def similarity_transform(
    src: NDArray[np.floating], dst: NDArray[np.floating]
) -> NDArray[np.float64]:
    """The 2x3 similarity (rotation, uniform scale, translation) that maps ``src`` points
    onto ``dst`` points in the least-squares sense (Umeyama 1991, without reflection)."""
    src64 = np.asarray(src, np.float64).reshape(-1, 2)
    dst64 = np.asarray(dst, np.float64).reshape(-1, 2)
    ms, md = src64.mean(axis=0), dst64.mean(axis=0)
    s, d = src64 - ms, dst64 - md
    cov = d.T @ s / len(s)
    u, sv, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(cov) < 0:
        sign[1] = -1
    rot = u @ np.diag(sign) @ vt
    var = (s**2).sum() / len(s)
    scale = float((sv * sign).sum() / var) if var > 0 else 1.0
    out = np.empty((2, 3))
    out[:, :2] = scale * rot
    out[:, 2] = md - scale * rot @ ms
    return out


class SimilarityAligner:
    """The detector's five landmarks -> a similarity warp onto the template."""

    def __init__(self, size: int = 112, template: list[list[float]] | None = None) -> None:
        self.size = size
        points = template if template is not None else ARCFACE_112
        self.template = np.asarray(points, np.float64).reshape(5, 2)

    def transform(self, detection: Detection) -> NDArray[np.float64]:
        return similarity_transform(detection.landmarks, self.template)

    def align(self, image: RGBImage, detection: Detection) -> AlignedFace:
        import cv2

        rgb = as_rgb(image)
        chip = cv2.warpAffine(
            rgb, self.transform(detection), (self.size, self.size), flags=cv2.INTER_LINEAR
        )
        return AlignedFace(np.ascontiguousarray(chip, dtype=np.uint8), detection)


def make_aligner(spec: AlignmentSpec, root: Path) -> Aligner:
    """The aligner a bundle's manifest describes."""
    if spec.type == "dlib-chip":
        if not spec.landmarks_file:
            raise ValueError("a dlib-chip alignment needs alignment.landmarks_file")
        predictor = ShapePredictor.load(root / spec.landmarks_file)
        return DlibChipAligner(predictor, spec.size, spec.padding, spec.box_map)
    if spec.type == "similarity":
        return SimilarityAligner(spec.size, spec.template)
    raise ValueError(f"alignment type {spec.type!r} is not supported by this edge-face")
