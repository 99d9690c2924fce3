"""The face stack a bundle describes: detector, aligner and embedder, loaded once.

Everything that turns photos into embeddings (enrollment, identify, verify, the daemon,
and the export stage's calibration and evaluation) goes through this one path, so the
device and the evaluation preprocess faces identically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def distance(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Distances between rows of ``a`` and rows of ``b`` by the bundle's metric.

    ``euclidean``: ||a - b||. ``cosine``: 1 - cos(a, b) (vectors need not be unit length).
    """
    a2, b2 = np.atleast_2d(a).astype(np.float32), np.atleast_2d(b).astype(np.float32)
    if metric == "cosine":
        an = a2 / np.maximum(np.linalg.norm(a2, axis=1, keepdims=True), 1e-12)
        bn = b2 / np.maximum(np.linalg.norm(b2, axis=1, keepdims=True), 1e-12)
        return 1.0 - an @ bn.T
    sq = (a2**2).sum(1)[:, None] + (b2**2).sum(1)[None, :] - 2 * a2 @ b2.T
    return np.sqrt(np.maximum(sq, 0.0))
