"""How good a face is, measured: its size and its sharpness (the gates that use them are
in ``edge.decision``).

Sharpness is the variance of the Laplacian of the aligned face (grey), so it is measured
at the encoder's own scale whatever the photo's size. On the default bundle's 112x112
faces of the LFW calibrate people (250x250 JPEGs, often soft) its 1st percentile is 31.6
and its median 134; CFP's larger photos give a median near 1,080; a strong blur of a sharp
photo drops it to about 20. The enrollment gate (``edge.decision.ENROLL_MIN_SHARPNESS``,
10) sits well below every real photo there and refuses smeared ones
(``bench/quality.py``, ``bench/results/quality.json``).
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.decision import FaceQuality
from edge.types import AlignedFace


def sharpness(face: AlignedFace) -> float:
    grey = cv2.cvtColor(np.ascontiguousarray(face.image), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def measure(face: AlignedFace) -> FaceQuality:
    """The detector box's shorter side (pixels of the image it was found in) and the
    aligned face's sharpness."""
    return FaceQuality(face.detection.box.short_side, sharpness(face))
