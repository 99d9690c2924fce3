"""In-memory fakes of the ports in ``edge.ports``, for fast unit tests of the pipeline and
the per-face path. They hold no logic of the product: a scripted camera scene, a gallery in
a dict, a clock that moves when told, a list of published events."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from edge.gallery import EncoderMismatchError
from edge.types import (
    AlignedFace,
    BBox,
    Detection,
    Embedding,
    Frame,
    GalleryMatrix,
    RecognitionEvent,
    RGBImage,
)

ENCODER = "fake-encoder"
SIZE = 16  # the fake aligned face's side, in pixels


@dataclass(frozen=True)
class FakeFace:
    """One face in a scripted frame: where the detector finds it, the embedding the
    encoder gives it, and whether its aligned crop is sharp (a checkerboard) or flat."""

    box: BBox
    vector: tuple[float, ...]
    sharp: bool = True


_SHARP = (np.indices((SIZE, SIZE)).sum(axis=0) % 2 * 255).astype(np.uint8)


class FakeEngine:
    """Detector, aligner and encoder of a scripted scene: each ``detect`` call takes the
    next frame's faces from ``scene`` (no faces once it runs out). Counts every call."""

    def __init__(self, scene: list[list[FakeFace]] | None = None) -> None:
        self.scene: deque[list[FakeFace]] = deque(scene or [])
        self.calls = {"detect": 0, "align": 0, "embed": 0}
        self._faces: dict[int, FakeFace] = {}
        self._last: list[FakeFace] = []
        # the width of the frames the scene's boxes are given in, for a pipeline that
        # detects on a scaled-down copy (None: boxes are taken as they are)
        self.width: int | None = None

    def add(self, *faces: FakeFace) -> None:
        """Script one more frame."""
        self.scene.append(list(faces))

    def detect(self, image: RGBImage) -> list[Detection]:
        _check(image)
        self.calls["detect"] += 1
        faces = self.scene.popleft() if self.scene else []
        f = image.shape[1] / self.width if self.width else 1.0  # a scaled-down frame
        found = []
        self._faces.clear()  # ids of freed detections are reused: keep this frame's only
        for face in faces:
            b = face.box
            det = Detection(
                BBox(b.x1 * f, b.y1 * f, b.x2 * f, b.y2 * f), 0.9, np.zeros((5, 2), np.float32)
            )
            self._faces[id(det)] = face
            found.append(det)
        self._last = faces
        return found

    def _face(self, detection: Detection) -> FakeFace:
        """The scripted face a detection is (mapped back to the frame's pixels, it is a
        new object: the face whose box it matches)."""
        face = self._faces.get(id(detection))
        if face is not None:
            return face
        b = detection.box
        return min(self._last, key=lambda f: abs(f.box.x1 - b.x1) + abs(f.box.y1 - b.y1))

    def align(self, image: RGBImage, detection: Detection) -> AlignedFace:
        _check(image)
        self.calls["align"] += 1
        face = self._face(detection)
        grey = _SHARP if face.sharp else np.full((SIZE, SIZE), 128, np.uint8)
        return AlignedFace(np.repeat(grey[:, :, None], 3, axis=2), detection)

    def embed(self, faces: list[AlignedFace]) -> list[Embedding]:
        self.calls["embed"] += len(faces)
        return [
            Embedding(np.asarray(self._face(f.detection).vector, np.float32), ENCODER)
            for f in faces
        ]


def _check(image: object) -> None:
    """What the real detector and aligner would refuse (OpenCV raises on these)."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.dtype != np.uint8:
        raise TypeError(f"expected an RGB uint8 image, got {type(image).__name__}")


class FakeGallery:
    """People and their embeddings in a dict; ``data_version`` changes on every edit,
    as SQLite's does when another process commits."""

    def __init__(
        self, people: dict[str, list[tuple[float, ...]]] | None = None, encoder: str = ENCODER
    ) -> None:
        self.people = {name: list(vs) for name, vs in (people or {}).items()}
        self.encoder = encoder
        self.version = 0
        self.calls = {"matrix": 0, "data_version": 0}
        self.broken = False

    def enroll(self, name: str, *vectors: tuple[float, ...]) -> None:
        self.people.setdefault(name, []).extend(vectors)
        self.version += 1

    def matrix(self, encoder_id: str | None = None) -> GalleryMatrix:
        self.calls["matrix"] += 1
        if self.broken:
            raise RuntimeError("the fake gallery is broken")
        if encoder_id is not None and self.people and encoder_id != self.encoder:
            raise EncoderMismatchError(f"made by encoder {self.encoder}, not {encoder_id}")
        if not self.people:
            return GalleryMatrix.empty()
        names = sorted(self.people)
        owner = [i for i, n in enumerate(names) for _ in self.people[n]]
        vectors = np.asarray([v for n in names for v in self.people[n]], np.float32)
        return GalleryMatrix(names, np.asarray(owner, np.intp), vectors, self.encoder)

    def data_version(self) -> int:
        self.calls["data_version"] += 1
        return self.version


@dataclass
class FakeClock:
    now: float = 1000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class ListSink:
    events: list[RecognitionEvent] = field(default_factory=list)

    def publish(self, event: RecognitionEvent) -> None:
        self.events.append(event)


def frame(index: int, timestamp: float, size: tuple[int, int] = (120, 160)) -> Frame:
    """A blank frame (the fake engine does not look at pixels)."""
    return Frame(np.zeros((*size, 3), np.uint8), index, timestamp, "door")
