"""The values that cross module boundaries: frozen, slotted dataclasses, never bare tuples.

Images are RGB ``NDArray[np.uint8]`` of shape (height, width, 3); points are (x, y) in
pixels of the image they came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

RGBImage = NDArray[np.uint8]
Points = NDArray[np.float32]  # shape (N, 2), (x, y)


@dataclass(frozen=True, slots=True)
class Frame:
    image: RGBImage
    index: int
    timestamp: float  # seconds, time.time() when captured
    camera: str = "camera"


@dataclass(frozen=True, slots=True)
class BBox:
    """An axis-aligned box, corners in pixels: (x1, y1) top-left, (x2, y2) bottom-right."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def short_side(self) -> float:
        return min(self.width, self.height)

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    def iou(self, other: BBox) -> float:
        w = min(self.x2, other.x2) - max(self.x1, other.x1)
        h = min(self.y2, other.y2) - max(self.y1, other.y1)
        inter = max(0.0, w) * max(0.0, h)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def as_list(self) -> list[float]:
        return [round(self.x1, 1), round(self.y1, 1), round(self.x2, 1), round(self.y2, 1)]


@dataclass(frozen=True, slots=True)
class Detection:
    """A face found by the detector, with its five landmarks in the detector's order
    (YuNet: right eye, left eye, nose tip, right mouth corner, left mouth corner)."""

    box: BBox
    score: float
    landmarks: Points


@dataclass(frozen=True, slots=True)
class AlignedFace:
    """A face crop in the encoder's input frame (size x size RGB), and where it came from."""

    image: RGBImage
    detection: Detection


@dataclass(frozen=True, slots=True)
class Embedding:
    """A face descriptor as the bundle's metric expects it, and the encoder that made it."""

    vector: NDArray[np.float32]
    encoder_id: str


@dataclass(frozen=True, slots=True)
class Match:
    """The decision for one face: ``known`` iff the nearest person is within tau."""

    person: str | None
    distance: float
    tau: float
    known: bool


@dataclass(frozen=True, slots=True)
class RecognitionEvent:
    """One encounter's verdict, as published: ``recognized`` (a person won k of the last
    n frames of a track) or ``unknown`` (a track seen long enough without a match)."""

    event_id: str  # uuid4 hex: consumers drop duplicates by it
    type: Literal["recognized", "unknown"]
    person: str | None
    distance: float  # the best distance of the deciding frames
    tau: float
    camera: str
    track_id: int
    box: BBox
    frames: int  # frames the track had been seen when the event fired
    time: float  # unix time of the deciding frame
    crop_jpeg: bytes | None = None
    sighting_id: int | None = None  # the sightings store's row ([sightings] enabled)


@dataclass(frozen=True, slots=True)
class GalleryMatrix:
    """Every enrolled embedding as one matrix, for matching: row i belongs to
    ``names[owner[i]]``. A snapshot: the gallery file may change after it was read."""

    names: list[str]
    owner: NDArray[np.intp]
    vectors: NDArray[np.float32]
    encoder_id: str | None
    skipped: int = 0  # rows that could not be read (logged)
    # negative feedback (`edge-face not NAME`): faces that are NOT names[impostor_owner[j]]
    # (None when there are none)
    impostors: NDArray[np.float32] | None = None
    impostor_owner: NDArray[np.intp] | None = None

    @staticmethod
    def empty() -> GalleryMatrix:
        return GalleryMatrix([], np.zeros(0, np.intp), np.zeros((0, 0), np.float32), None, 0)


#: where a track stands (``edge.tracker``): no vote yet, voting, a named track whose
#: re-check failed, decided as unknown, named
TrackState = Literal["new", "undecided", "doubt", "unknown", "recognized"]


@dataclass(frozen=True, slots=True)
class TrackView:
    """A face of this frame as its track sees it (``Tracker.follow``)."""

    track_id: int
    state: TrackState
    regained: bool  # the track was missed in the frame before this one
