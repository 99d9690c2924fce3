"""Face detectors, chosen by the bundle manifest's ``detector.type``."""

from __future__ import annotations

from pathlib import Path

from edge.bundle import DetectorSpec
from edge.ports import FaceDetector


def make_detector(spec: DetectorSpec, root: Path) -> FaceDetector:
    """The detector a bundle names (its heavy import happens here, not at import time)."""
    if spec.type == "yunet":
        from edge.detect.yunet import YuNetDetector

        return YuNetDetector(
            root / spec.file,
            score_threshold=spec.score_threshold,
            nms_threshold=spec.nms_threshold,
            max_side=spec.max_side,
        )
    raise ValueError(f"unknown detector type {spec.type!r}")  # pragma: no cover (Literal)
