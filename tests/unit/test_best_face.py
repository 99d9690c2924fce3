from __future__ import annotations

import numpy as np

from edge.best_face import BestFaces
from edge.decision import FaceQuality
from edge.types import BBox

IMAGE = np.full((200, 200, 3), 128, np.uint8)
BOX = BBox(10, 10, 110, 110)


def offer(
    best: BestFaces, track: int, size: float, sharpness: float, yaw: float, tag: float
) -> None:
    best.offer(track, IMAGE, BOX, np.array([tag], np.float32), FaceQuality(size, sharpness, yaw))


def test_frontal_first_then_sharp_then_large() -> None:
    best = BestFaces(max_yaw=0.5)
    offer(best, 1, 150, 80, 0.9, 1)  # large and sharp, but turned: never named
    offer(best, 1, 60, 30, 0.1, 2)  # frontal: better
    offer(best, 1, 200, 5, 0.0, 3)  # frontal and large, but too blurry to enroll
    offer(best, 1, 70, 20, -0.2, 4)  # frontal, sharp, larger: the best
    offer(best, 1, 65, 90, 0.0, 5)  # sharper but smaller
    face = best.best(1)
    assert face is not None and face.vector.tolist() == [4.0] and face.crop[:2] == b"\xff\xd8"
    assert best.best(2) is None
    best.forget({2})
    assert best.best(1) is None


def test_a_face_the_box_misses_is_not_kept() -> None:
    best = BestFaces(max_yaw=0.5)
    best.offer(1, IMAGE, BBox(300, 300, 400, 400), np.zeros(2, np.float32), FaceQuality(99, 99, 0))
    assert best.best(1) is None
