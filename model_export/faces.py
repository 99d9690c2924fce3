"""Aligned face crops from photo sets, through the device's own detector and aligner.

Used by calibration, the quantization check, evaluation and the golden check, so every
one of them sees the faces exactly as the device will.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from edge.images import ImageError
from edge.ports import Aligner, FaceDetector
from edge.types import BBox, Detection
from model_export.data import read_photo

logger = logging.getLogger(__name__)


def nearest_to_centre(dets: list[Detection], shape: tuple[int, ...]) -> Detection | None:
    """The face whose box centre is closest to the image centre (LFW's convention)."""
    if not dets:
        return None
    cy, cx = shape[0] / 2, shape[1] / 2
    return min(dets, key=lambda d: (d.box.center[0] - cx) ** 2 + (d.box.center[1] - cy) ** 2)


def median_detection(dets: list[Detection]) -> Detection:
    """The median box and landmarks of many faces: the fallback for a same-size, centred
    photo set (LFW) where the detector found nothing."""
    boxes = np.array([[d.box.x1, d.box.y1, d.box.x2, d.box.y2] for d in dets])
    box = np.median(boxes, axis=0)
    landmarks = np.median(np.stack([d.landmarks for d in dets]), axis=0).astype(np.float32)
    return Detection(BBox(*(float(v) for v in box)), 0.0, landmarks)


@dataclass(frozen=True, slots=True)
class Crops:
    paths: list[Path]
    chips: NDArray[np.uint8]  # (N, size, size, 3)
    no_face: list[Path]  # aligned from the fallback box
    unreadable: list[Path]  # left out


def crops_for(
    paths: Iterable[Path], detector: FaceDetector, aligner: Aligner, desc: str = "faces"
) -> Crops:
    """One aligned crop per photo: the face nearest the centre; for a photo where no face
    is found, the median detection of the set (reported in ``no_face``)."""
    chips: dict[Path, np.ndarray] = {}
    dets: list[Detection] = []
    pending: list[Path] = []
    unreadable: list[Path] = []
    paths = list(paths)
    for path in tqdm(paths, desc=desc, unit="img", leave=False, mininterval=2):
        try:
            image = read_photo(path)
        except ImageError as exc:
            logger.warning("%s", exc)
            unreadable.append(path)
            continue
        det = nearest_to_centre(detector.detect(image), image.shape)
        if det is None:
            pending.append(path)
            continue
        dets.append(det)
        chips[path] = aligner.align(image, det).image
    no_face = pending if dets else []
    if not dets:
        unreadable.extend(pending)
    else:
        fallback = median_detection(dets)
        for path in pending:
            chips[path] = aligner.align(read_photo(path), fallback).image
    if no_face:
        logger.info(
            "%d of %d %s: no face found, aligned from the median box",
            len(no_face),
            len(paths),
            desc,
        )
    used = [p for p in paths if p in chips]
    size = aligner.size
    array = np.stack([chips[p] for p in used]) if used else np.zeros((0, size, size, 3), np.uint8)
    return Crops(used, array, no_face, unreadable)
