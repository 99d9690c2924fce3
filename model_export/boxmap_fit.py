"""Fit the box map (``model_export/boxmap.json``): YuNet's box and five points to the box
dlib's HOG detector would give, the box dlib's 5-point landmark model was trained on.

    python -m model_export.boxmap_fit [--out model_export/boxmap.json]

Needs dlib (the ``dlib-bin`` wheel of the dev extra), only here: the device never runs
dlib. Fits on LFW photos of ``calibrate`` people (data/splits.json; also at half and
double size, so the fit sees other face sizes), and chooses the design on photos of
``select`` people: how far the landmarks started from the mapped box land from those
started from dlib's own HOG box, against starting from YuNet's raw box. Report people
are never read.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.boxmap import DESIGNS, BoxMap, apply_box_map, features
from edge.detect.yunet import YuNetDetector
from edge.images import read_image
from edge.landmarks import ShapePredictor
from edge.types import BBox, Detection
from model_export.assets import YUNET, face_recognition_models_file, wheel_asset
from model_export.calibration import select
from model_export.data import data_root
from model_export.landmark_import import read_shape_predictor
from model_export.splits import load

logger = logging.getLogger(__name__)
Rect = tuple[float, float, float, float]


def fit_box_map(dets: list[Detection], rects: list[Rect], design: str) -> dict[str, Any]:
    """Least squares of the HOG rect, in each face's own frame (centre, scale)."""
    xs, ys = [], []
    for det, rect in zip(dets, rects, strict=True):
        f, cx, cy, s = features(design, det)
        xs.append(f)
        ys.append((np.asarray(rect) - (cx, cy, cx, cy)) / s)
    coef, *_ = np.linalg.lstsq(np.stack(xs), np.stack(ys), rcond=None)
    return {"design": design, "coef": coef.tolist(), "n_fit": len(xs)}


def pairs_of(
    paths: list[Path], scales: tuple[float, ...]
) -> tuple[list[Detection], list[Rect], list[np.ndarray]]:
    """(YuNet detection, HOG rect, image) for faces both detectors agree on."""
    import dlib  # type: ignore[import-untyped]

    hog = dlib.get_frontal_face_detector()
    yunet = YuNetDetector(wheel_asset(YUNET), score_threshold=0.6)
    dets, rects, images = [], [], []
    for path in paths:
        base = read_image(path)
        for scale in scales:
            image = (
                base
                if scale == 1
                else cv2.resize(base, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            )
            found = yunet.detect(image)
            boxes = hog(image, 1)
            if not found or not len(boxes):
                continue
            det = found[0]
            best = max(
                boxes,
                key=lambda r: det.box.iou(BBox(r.left(), r.top(), r.right() + 1, r.bottom() + 1)),
            )
            if (
                det.box.iou(BBox(best.left(), best.top(), best.right() + 1, best.bottom() + 1))
                < 0.3
            ):
                continue
            dets.append(det)
            rects.append((best.left(), best.top(), best.right(), best.bottom()))
            images.append(image)
    return dets, rects, images


def landmark_shift(
    sp: ShapePredictor,
    dets: list[Detection],
    rects: list[Rect],
    images: list[np.ndarray],
    box_map: dict[str, Any] | None,
) -> float:
    """Mean landmark distance (in units of the outer eye-corner distance) from the
    landmarks dlib's own HOG box gives."""
    shifts = []
    for det, rect, image in zip(dets, rects, images, strict=True):
        ref = sp.predict(image, rect)
        if box_map is None:
            start = (det.box.x1, det.box.y1, det.box.x2 - 1, det.box.y2 - 1)
        else:
            coef = tuple(tuple(row) for row in box_map["coef"])
            start = apply_box_map(BoxMap(box_map["design"], coef), det)
        ours = sp.predict(image, tuple(float(np.floor(v + 0.5)) for v in start))
        eyes = float(np.linalg.norm(ref[0] - ref[2]))
        shifts.append(float(np.linalg.norm(ours - ref, axis=1).mean()) / max(eyes, 1.0))
    return float(np.mean(shifts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("boxmap.json"))
    parser.add_argument("--fit", type=int, default=1500, help="photos to fit on")
    parser.add_argument("--test", type=int, default=500, help="held-out photos")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root, splits = data_root(), load()
    everyone = {d.name for d in (root / "lfw").iterdir() if d.is_dir()}
    train = select(root / "lfw", everyone - splits.names("calibrate", "lfw"), args.fit)
    test = select(root / "lfw", everyone - splits.names("select", "lfw"), args.test)
    splits.check(train, "calibrate", root)
    splits.check(test, "select", root)
    dets, rects, _ = pairs_of(train, (0.5, 1.0, 2.0))
    t_dets, t_rects, t_images = pairs_of(test, (1.0,))
    sp = ShapePredictor(
        read_shape_predictor(face_recognition_models_file("shape_predictor_5_face_landmarks.dat"))
    )
    results = {"raw YuNet box": landmark_shift(sp, t_dets, t_rects, t_images, None)}
    maps = {}
    for design in DESIGNS:
        maps[design] = fit_box_map(dets, rects, design)
        results[design] = landmark_shift(sp, t_dets, t_rects, t_images, maps[design])
    for name, value in results.items():
        logger.info(
            "%-14s landmark shift %.4f eye-corner distances (%d held-out faces)",
            name,
            value,
            len(t_dets),
        )
    chosen = min(DESIGNS, key=lambda d: results[d])
    record = {"chosen": {**maps[chosen], "fitted_on": f"{len(dets)} YuNet/HOG face pairs (LFW calibrate people, at 0.5x, 1x, 2x)",
                         "chosen_on": f"{len(t_dets)} faces of LFW select people",
                         "held_out_landmark_shift": results}}  # fmt: skip
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    logger.info("chose %s; wrote %s", chosen, args.out)


if __name__ == "__main__":
    main()
