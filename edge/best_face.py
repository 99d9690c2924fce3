"""Each live track's best face so far: what a sighting keeps (``[sightings]``).

A track is decided on its k-th vote, which need not be its best face: the sighting keeps
the best embedded face the track has shown up to then, so that enrolling from it
(``edge-face enroll NAME --sighting ID``) starts from a good photo. Best: frontal enough
to be named (``[recognition] max_yaw``) first, then sharp enough and large enough to
enroll (``decision.enrollment_problem``'s bounds), then the largest, then the sharpest.
Only faces the encoder ran on are candidates (they alone have an embedding); the crop is
encoded when a face becomes its track's best, not for every face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge.decision import ENROLL_MIN_FACE_PX, ENROLL_MIN_SHARPNESS, FaceQuality
from edge.images import encode_crop
from edge.types import BBox, RGBImage


@dataclass(frozen=True, slots=True)
class Face:
    vector: NDArray[np.float32]
    quality: FaceQuality
    crop: bytes


class BestFaces:
    def __init__(self, max_yaw: float) -> None:
        self.max_yaw = max_yaw
        self._best: dict[int, tuple[tuple[bool, bool, bool, float, float], Face]] = {}

    def rank(self, q: FaceQuality) -> tuple[bool, bool, bool, float, float]:
        return (abs(q.yaw) <= self.max_yaw, q.sharpness >= ENROLL_MIN_SHARPNESS,
                q.size_px >= ENROLL_MIN_FACE_PX, q.size_px, q.sharpness)  # fmt: skip

    def offer(self, track_id: int, image: RGBImage, box: BBox, vector: NDArray[np.float32],
              quality: FaceQuality) -> None:  # fmt: skip
        """An embedded face of a track: kept when it is the track's best so far."""
        rank = self.rank(quality)
        held = self._best.get(track_id)
        if held is not None and held[0] >= rank:
            return
        crop = encode_crop(image, box)
        if crop is not None:
            self._best[track_id] = (rank, Face(np.array(vector, np.float32), quality, crop))

    def best(self, track_id: int) -> Face | None:
        held = self._best.get(track_id)
        return held[1] if held is not None else None

    def forget(self, live: set[int]) -> None:
        """Drop the tracks that ended."""
        for track_id in [t for t in self._best if t not in live]:
            del self._best[track_id]
