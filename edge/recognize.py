"""The per-face path, shared by the daemon's pipeline and the ``identify`` verb: detect,
skip faces too small to look at, align, embed, measure and decide (``edge.decision``);
and one-to-one comparison of two photos (``verify``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.bundle import Manifest
from edge.config import RecognitionConfig
from edge.decision import Cohort, Decider, FaceQuality, Policy, distance
from edge.errors import EdgeError
from edge.ports import Engine
from edge.quality import measure
from edge.stats import Stopwatch
from edge.types import AlignedFace, Match, RGBImage


@dataclass(frozen=True, slots=True)
class FaceResult:
    """One face of an image: where it is, how good it is and the verdict."""

    face: AlignedFace
    quality: FaceQuality
    match: Match

    def as_dict(self) -> dict[str, Any]:
        m = self.match
        d = round(m.distance, 4) if np.isfinite(m.distance) else None
        box = self.face.detection.box.as_list()
        return {"box": box, "person": m.person, "distance": d, "tau": round(m.tau, 4),
                "known": m.known, "yaw": round(self.quality.yaw, 3)}  # fmt: skip


class Recognizer:
    """Every face of an image through the engine and the decider (a gallery snapshot
    with its rule): the one per-face path of the daemon and the CLI."""

    def __init__(self, engine: Engine, decider: Decider) -> None:
        self.engine, self.decider = engine, decider

    def faces(self, image: RGBImage, watch: Stopwatch | None = None) -> list[FaceResult]:
        watch = watch or Stopwatch()
        policy = self.decider.policy
        detections = [d for d in self.engine.detect(image) if policy.looked_at(d.box)]
        watch.lap("detect")
        faces = [self.engine.align(image, d) for d in detections]
        qualities = [measure(f) for f in faces]
        watch.lap("align")
        embeddings = self.engine.embed(faces)
        watch.lap("embed")
        results = [
            FaceResult(face, q, self.decider.decide(e.vector, q))
            for face, q, e in zip(faces, qualities, embeddings, strict=True)
        ]
        watch.lap("match")
        return results


class NoFaceError(EdgeError):
    """A photo given to verify has no face."""


def largest_embedding(engine: Engine, image: RGBImage, name: str) -> NDArray[np.float32]:
    dets = engine.detect(image)
    if not dets:
        raise NoFaceError(f"{name}: no face found")
    face = engine.align(image, max(dets, key=lambda d: d.box.area))
    return engine.embed([face])[0].vector


def compare(engine: Engine, a: RGBImage, b: RGBImage, policy: Policy,
            names: tuple[str, str]) -> dict[str, Any]:  # fmt: skip
    """One-to-one: the distance between the largest faces of two photos, and the verdict."""
    va, vb = largest_embedding(engine, a, names[0]), largest_embedding(engine, b, names[1])
    d = float(distance(va, vb, policy.metric)[0, 0])
    return {"image1": names[0], "image2": names[1], "distance": round(max(d, 0.0), 4),
            "tau": round(policy.verify_threshold(), 4), "same": policy.same(d)}  # fmt: skip


def policy_for(
    manifest: Manifest,
    config: RecognitionConfig,
    min_face: float = 0.0,
    cohort: Cohort | None = None,
) -> Policy:
    """The decision rule of a bundle as the config adjusts it (``min_face``: the daemon's
    ``[camera] min_face``; photos given to ``identify`` are looked at whatever their size;
    ``cohort``: the bundle's, ``Bundle.cohort``)."""
    return Policy(
        metric=manifest.encoder.metric,
        verify_tau=manifest.tau.verify,
        identify_tau=manifest.tau.identify,
        open_set=manifest.identify,
        strangers_accepted=config.strangers_accepted,
        tau=config.tau,
        margin=config.margin,
        min_sharpness=config.min_sharpness,
        max_yaw=config.max_yaw,
        min_face=min_face,
        cohort=cohort,
    )
