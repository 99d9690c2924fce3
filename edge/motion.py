"""Is anything happening? A motion gate and a scene-cut detector on a small grey copy of
each frame (issue 23): the detector is skipped while nothing moves and no track is alive,
and a cut (most of the picture changed at once: a camera switched, moved or covered) ends
every track, so a face after the cut is never taken for the one before it.

``look`` compares the frame's copy (``width`` pixels wide, area-averaged, which also
averages sensor noise away) with two others. Against the copy of the frame the detector
last ran on (slow changes add up until they count as motion): a pixel changed when its
grey level moved by more than ``pixel_delta``, and the frame moved when more than
``moving_share`` of the pixels changed. Against the previous frame (a cut is a jump from
one frame to the next): a cut is a grey histogram that changed (Bhattacharyya distance of
32 bins above ``cut_histogram``) together with a picture that no longer lines up
(correlation of 32-pixel-wide copies below ``cut_correlation``). A share of changed pixels
does not tell cuts from motion: on the Hamilton clip its three cuts change 18-21% of the
pixels by 50 grey levels and a person moving up to 9%; the histogram distance is 0.23-0.39
at the cuts and at most 0.055 elsewhere, the correlation 0.01-0.27 at the cuts and at
least 0.69 elsewhere (the street clip: at most 0.011 and at least 0.945).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.types import RGBImage

Scene = Literal["still", "moving", "cut"]


@dataclass(frozen=True, slots=True)
class MotionSettings:
    width: int = 160  # the grey copy's width in pixels
    pixel_delta: int = 20  # grey levels (0-255) a pixel must move to count as changed
    moving_share: float = 0.002  # changed share of the copy that is motion (~50 of 25,600)
    cut_histogram: float = 0.15  # a cut: the histogram moved further than this ...
    cut_correlation: float = 0.5  # ... and the picture correlates less than this

    def __post_init__(self) -> None:
        if self.width < 32:
            raise ValueError(f"width must be >= 32, got {self.width}")
        if not 0 < self.moving_share <= 1:
            raise ValueError(f"moving_share must be in (0, 1], got {self.moving_share}")
        if not 0 < self.cut_histogram <= 1 or not -1 <= self.cut_correlation <= 1:
            raise ValueError("expected cut_histogram in (0, 1] and cut_correlation in [-1, 1]")


def _histogram(grey: NDArray[np.int16]) -> NDArray[np.float32]:
    h = np.bincount((grey // 8).ravel(), minlength=32).astype(np.float32)
    return h / max(float(h.sum()), 1.0)


def _correlation(a: NDArray[np.int16], b: NDArray[np.int16]) -> float:
    size = (32, max(1, round(a.shape[0] * 32 / a.shape[1])))
    x = cv2.resize(a.astype(np.float32), size, interpolation=cv2.INTER_AREA).ravel()
    y = cv2.resize(b.astype(np.float32), size, interpolation=cv2.INTER_AREA).ravel()
    x, y = x - x.mean(), y - y.mean()
    scale = float(np.sqrt(np.dot(x, x) * np.dot(y, y)))
    return float(np.dot(x, y)) / scale if scale > 1e-6 else 1.0


def cut(before: NDArray[np.int16], after: NDArray[np.int16], s: MotionSettings) -> bool:
    """Is ``after`` another shot than ``before`` (grey copies of two frames in a row)?"""
    distance = cv2.compareHist(_histogram(before), _histogram(after), cv2.HISTCMP_BHATTACHARYYA)
    return distance > s.cut_histogram and _correlation(before, after) < s.cut_correlation


class MotionGate:
    def __init__(self, settings: MotionSettings | None = None) -> None:
        self.settings = settings or MotionSettings()
        self._previous: NDArray[np.int16] | None = None
        self._reference: NDArray[np.int16] | None = None

    def _small(self, image: RGBImage) -> NDArray[np.int16]:
        h, w = image.shape[:2]
        width = min(self.settings.width, w)
        height = max(1, round(h * width / w))
        grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
        return cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA).astype(np.int16)

    def look(self, image: RGBImage) -> Scene:
        """This frame against the previous one and the last one detected on."""
        s = self.settings
        small = self._small(image)
        previous, self._previous = self._previous, small
        if previous is None or previous.shape != small.shape:
            self._reference = small
            return "cut" if previous is not None else "moving"
        if cut(previous, small, s):
            self._reference = small
            return "cut"
        reference = self._reference if self._reference is not None else previous
        if np.mean(np.abs(small - reference) > s.pixel_delta) > s.moving_share:
            return "moving"
        return "still"

    def detected(self) -> None:
        """The detector ran on the last frame looked at: it is the new reference."""
        self._reference = self._previous
