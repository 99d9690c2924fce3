"""How good a face is, measured: its size, its sharpness and how far it is turned (the
gates that use them are in ``edge.decision``).

Sharpness is the variance of the Laplacian of the aligned face (grey), so it is measured
at the encoder's own scale whatever the photo's size. On the default bundle's 112x112
faces of the LFW calibrate people (250x250 JPEGs, often soft) its 1st percentile is 31.6
and its median 134; CFP's larger photos give a median near 1,080; a strong blur of a sharp
photo drops it to about 20. The enrollment gate (``edge.decision.ENROLL_MIN_SHARPNESS``,
10) sits well below every real photo there and refuses smeared ones
(``bench/quality.py``, ``bench/results/quality.json``).

Yaw (:func:`yaw`) is read off the detector's five landmarks: the nose tip's offset from
the eyes' midpoint along the eye line, in inter-eye distances. About 0 for a frontal face;
on the calibrate people's photos (SFace bundle, research/face_table.py) LFW's near-frontal
photos have a median of 0.09 and a 99th percentile of 0.54, CFP's frontal ones 0.03 and
0.12, CFP's profiles a median of 0.59 (94% above 0.35).
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.decision import FaceQuality
from edge.types import AlignedFace, Detection


def sharpness(face: AlignedFace) -> float:
    grey = cv2.cvtColor(np.ascontiguousarray(face.image), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def yaw(det: Detection) -> float:
    """How far the face is turned: the nose tip's signed offset from the eyes' midpoint,
    along the eye line, in inter-eye distances (0 frontal, about 0.5 and more in profile,
    where the far eye's landmark is a guess). Landmarks in YuNet's order: right eye, left
    eye, nose tip, ..."""
    lm = np.asarray(det.landmarks, np.float64).reshape(-1, 2)
    if len(lm) < 3 or not np.isfinite(lm[:3]).all():
        return 0.0
    right, left, nose = lm[0], lm[1], lm[2]
    axis = left - right
    span = max(float(np.linalg.norm(axis)), 1e-6)
    return float(np.dot(nose - (left + right) / 2, axis / span)) / span


def measure(face: AlignedFace) -> FaceQuality:
    """The detector box's shorter side (pixels of the image it was found in), the aligned
    face's sharpness and the detection's yaw."""
    return FaceQuality(face.detection.box.short_side, sharpness(face), yaw(face.detection))
