"""edge.quality: the pose proxy on hand-made landmarks, and what measure() returns."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge.quality import measure, sharpness, yaw
from edge.types import AlignedFace, BBox, Detection


def det(right_eye: tuple[float, float], left_eye: tuple[float, float],
        nose: tuple[float, float]) -> Detection:  # fmt: skip
    points = [right_eye, left_eye, nose, (40.0, 70.0), (60.0, 70.0)]
    return Detection(BBox(0, 0, 100, 100), 0.9, np.asarray(points, np.float32))


def test_a_frontal_face_has_no_yaw() -> None:
    assert yaw(det((30, 40), (70, 40), (50, 55))) == pytest.approx(0.0)


def test_yaw_is_the_noses_offset_along_the_eye_line_in_eye_distances() -> None:
    # eyes 40 px apart, nose 20 px towards the left eye: half an inter-eye distance
    assert yaw(det((30, 40), (70, 40), (70, 55))) == pytest.approx(0.5)
    assert yaw(det((30, 40), (70, 40), (10, 55))) == pytest.approx(-1.0)  # the other way
    # the same face rolled by 90 degrees (eye line vertical): the same yaw
    assert yaw(det((40, 30), (40, 70), (55, 70))) == pytest.approx(0.5)
    # and scaled: the proxy has no unit
    assert yaw(det((60, 80), (140, 80), (140, 110))) == pytest.approx(0.5)


def test_degenerate_landmarks_give_a_finite_yaw() -> None:
    assert math.isfinite(yaw(det((50, 40), (50, 40), (50, 55))))
    nan = Detection(BBox(0, 0, 9, 9), 0.9, np.full((5, 2), np.nan, np.float32))
    assert yaw(nan) == 0.0


def test_measure_gives_size_sharpness_and_yaw() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
    face = AlignedFace(image, det((30, 40), (70, 40), (70, 55)))
    q = measure(face)
    assert q.size_px == 100 and q.yaw == pytest.approx(0.5)
    assert q.sharpness == pytest.approx(sharpness(face)) and q.sharpness > 1000  # noise
    flat = AlignedFace(np.full((112, 112, 3), 128, np.uint8), face.detection)
    assert measure(flat).sharpness == 0.0
