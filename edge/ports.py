"""The seams of the system: small ``typing.Protocol`` interfaces, so that test fakes need
no base class (``tests/fakes.py``) and back-ends are chosen by the bundle or the config."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

from edge.types import (
    AlignedFace,
    BBox,
    Detection,
    Embedding,
    Frame,
    GalleryMatrix,
    Match,
    RecognitionEvent,
    RGBImage,
    TrackView,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from edge.decision import FaceQuality


class FaceDetector(Protocol):
    def detect(self, image: RGBImage) -> list[Detection]:
        """Every face in an RGB image, best first."""
        ...


class Aligner(Protocol):
    size: int

    def align(self, image: RGBImage, detection: Detection) -> AlignedFace:
        """The face cut out and warped to the encoder's input frame."""
        ...


class Embedder(Protocol):
    encoder_id: str

    def embed(self, faces: list[AlignedFace]) -> list[Embedding]: ...


class Engine(Protocol):
    """The face stack a bundle describes (``edge.engine.FaceEngine``)."""

    def detect(self, image: RGBImage) -> list[Detection]: ...

    def align(self, image: RGBImage, detection: Detection) -> AlignedFace: ...

    def embed(self, faces: list[AlignedFace]) -> list[Embedding]: ...


class GalleryReader(Protocol):
    """What the daemon reads of the gallery (``edge.gallery.Gallery``)."""

    def matrix(self, encoder_id: str | None = None) -> GalleryMatrix:
        """A snapshot of every embedding (refusing another encoder's)."""
        ...

    def data_version(self) -> int:
        """A number that changes whenever another process commits a change."""
        ...


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds, for intervals only."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()


class FaceTracker(Protocol):
    """Faces followed across frames; one event per encounter (``edge.tracker.Tracker``)."""

    def follow(self, boxes: list[BBox]) -> list[TrackView]:
        """This frame's boxes onto tracks (one view per box)."""
        ...

    def vote(
        self, track_id: int, match: Match, now: float, usable: bool = True
    ) -> list[RecognitionEvent]:
        """One embedding's verdict for a face ``follow`` placed; the events it completes."""
        ...

    def reset(self) -> None:
        """End every track (a scene cut)."""
        ...

    def tracks(self) -> int: ...

    def live(self) -> set[int]: ...


class EventSink(Protocol):
    def publish(self, event: RecognitionEvent) -> None:
        """Hand an event on (the MQTT outbox, or the log); never raises."""
        ...


class SightingRecorder(Protocol):
    def record(
        self,
        event: RecognitionEvent,
        vector: NDArray[np.float32],
        crop: bytes,
        quality: FaceQuality,
    ) -> int | None:
        """Keep what a decided track showed (``edge.sightings``); its id, or None when it
        could not be stored (logged: the event still goes out)."""
        ...


class FrameProcessor(Protocol):
    """What the runner's processing thread calls for every frame (``edge.pipeline``)."""

    def process(self, frame: Frame) -> object: ...


class FrameSource(Protocol):
    def read(self) -> Frame | None:
        """The next frame, or None when there is none (end of a file, a failed read)."""
        ...

    def close(self) -> None: ...
