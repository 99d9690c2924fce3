"""Is a face good enough to enroll? Size and sharpness, with the threshold that failed.

Sharpness is the variance of the Laplacian of the aligned face (grey), so it is measured
at the encoder's own scale whatever the photo's size. On LFW photos (250x250 JPEGs,
often soft) it runs from 2.7 to 103 (1st percentile 8.8, median 40); a sharp phone photo
gives 100-2000; a strong blur of a sharp photo drops it to about 20.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.types import AlignedFace

MIN_FACE_PX = 50  # the detector box's shorter side, in the photo's pixels
MIN_SHARPNESS = 10.0


def sharpness(face: AlignedFace) -> float:
    grey = cv2.cvtColor(np.ascontiguousarray(face.image), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def enrollment_problem(
    face: AlignedFace, min_face: int = MIN_FACE_PX, min_sharpness: float = MIN_SHARPNESS
) -> str | None:
    """Why this face should not be enrolled, or None when it is fine."""
    box = face.detection.box
    size = min(box.width, box.height)
    if size < min_face:
        return f"face too small: {size:.0f} px, at least {min_face} px needed (use a closer or larger photo)"
    sharp = sharpness(face)
    if sharp < min_sharpness:
        return f"face too blurry: sharpness {sharp:.1f}, at least {min_sharpness:g} needed (use a sharper photo)"
    return None
