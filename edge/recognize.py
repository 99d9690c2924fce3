"""Recognition of every face in an image against the gallery (identify), and one-to-one
comparison of two photos (verify). The daemon's pipeline uses the same pieces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.bundle import Bundle
from edge.config import RecognitionConfig
from edge.engine import FaceEngine, distance
from edge.errors import EdgeError
from edge.gallery import GalleryMatrix
from edge.matcher import Rule, identify_rule, rank
from edge.quality import sharpness
from edge.types import AlignedFace, Detection, Match, RGBImage


@dataclass(frozen=True, slots=True)
class FaceResult:
    box: list[float]
    person: str | None
    distance: float
    tau: float
    known: bool

    def as_dict(self) -> dict[str, Any]:
        d = None if not np.isfinite(self.distance) else round(self.distance, 4)
        return {
            "box": self.box,
            "person": self.person,
            "distance": d,
            "tau": round(self.tau, 4),
            "known": self.known,
        }


def rule_for(bundle: Bundle, matrix: GalleryMatrix, config: RecognitionConfig) -> Rule:
    """The identification rule for this bundle and gallery size (see edge.matcher)."""
    return identify_rule(
        bundle.raw.get("identify"),
        comparisons=len(matrix.vectors),
        strangers_accepted=config.strangers_accepted,
        fallback_tau=bundle.manifest.tau.identify,
        margin=config.margin,
        fixed_tau=config.tau,
    )


def decide(rule: Rule, matrix: GalleryMatrix, metric: str, face: AlignedFace, vector: np.ndarray,
           min_sharpness: float) -> Match:  # fmt: skip
    """The verdict for one face; a face too blurry to trust is never named."""
    match = rule.decide(rank(matrix, vector, metric))
    if match.known and sharpness(face) < min_sharpness:
        return Match(None, match.distance, match.tau, False)
    return match


class Recognizer:
    """Detect, align, embed and decide for every face of an image."""

    def __init__(self, engine: FaceEngine, matrix: GalleryMatrix, rule: Rule, metric: str,
                 min_sharpness: float = 0.0) -> None:  # fmt: skip
        self.engine, self.matrix, self.rule, self.metric = engine, matrix, rule, metric
        self.min_sharpness = min_sharpness

    def faces(self, image: RGBImage, detections: list[Detection] | None = None) -> list[FaceResult]:
        dets = self.engine.detect(image) if detections is None else detections
        aligned = [self.engine.align(image, d) for d in dets]
        results = []
        for face, emb in zip(aligned, self.engine.embed(aligned), strict=True):
            match = decide(
                self.rule, self.matrix, self.metric, face, emb.vector, self.min_sharpness
            )
            results.append(
                FaceResult(
                    face.detection.box.as_list(),
                    match.person,
                    match.distance,
                    match.tau,
                    match.known,
                )
            )
        return results


class NoFaceError(EdgeError):
    """A photo given to verify has no face."""


def largest_embedding(engine: FaceEngine, image: RGBImage, name: str) -> np.ndarray:
    dets = engine.detect(image)
    if not dets:
        raise NoFaceError(f"{name}: no face found")
    face = engine.align(image, max(dets, key=lambda d: d.box.area))
    return engine.embed([face])[0].vector


def compare(
    engine: FaceEngine, a: RGBImage, b: RGBImage, metric: str, tau: float, names: tuple[str, str]
) -> dict[str, Any]:
    """One-to-one: the distance between the largest faces of two photos, and the verdict."""
    va, vb = largest_embedding(engine, a, names[0]), largest_embedding(engine, b, names[1])
    d = float(distance(va, vb, metric)[0, 0])
    return {
        "image1": names[0],
        "image2": names[1],
        "distance": round(d, 4),
        "tau": round(tau, 4),
        "same": d <= tau,
    }
