"""The face stack a bundle describes: detector, aligner and embedder, loaded once.

Everything that turns photos into embeddings (enrollment, identify, verify, the daemon,
and the export stage's calibration and evaluation) goes through this one path, so the
device and the evaluation preprocess faces identically.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.align import make_aligner
from edge.bundle import Bundle
from edge.detect import make_detector
from edge.embedder import TFLiteEmbedder
from edge.ports import Aligner, Embedder, FaceDetector
from edge.types import AlignedFace, Detection, Embedding, RGBImage


@dataclass(frozen=True, slots=True)
class FaceEngine:
    detector: FaceDetector
    aligner: Aligner
    embedder: Embedder

    def detect(self, image: RGBImage) -> list[Detection]:
        return self.detector.detect(image)

    def align(self, image: RGBImage, detection: Detection) -> AlignedFace:
        return self.aligner.align(image, detection)

    def embed(self, faces: list[AlignedFace]) -> list[Embedding]:
        return self.embedder.embed(faces) if faces else []


def load_engine(bundle: Bundle, num_threads: int = 1, runtime: str | None = None) -> FaceEngine:
    m = bundle.manifest
    embedder = TFLiteEmbedder(
        bundle.path(m.encoder.file),
        m.encoder,
        m.encoder_id,
        num_threads=num_threads,
        runtime=runtime,
    )
    return FaceEngine(
        detector=make_detector(m.detector, bundle.root),
        aligner=make_aligner(m.alignment, bundle.root),
        embedder=embedder,
    )
