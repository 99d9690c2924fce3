"""The seams of the system: small ``typing.Protocol`` interfaces, so that test fakes need
no base class and back-ends are chosen by the bundle or the config."""

from __future__ import annotations

from typing import Protocol

from edge.types import AlignedFace, Detection, Embedding, Frame, RGBImage


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


class FrameSource(Protocol):
    def read(self) -> Frame | None:
        """The next frame, or None when there is none (end of a file, a failed read)."""
        ...

    def close(self) -> None: ...
