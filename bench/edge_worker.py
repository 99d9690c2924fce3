"""edge-face as a benchmark worker, in the project's venv: the same jobs as the peers'
(bench/worker_common.py) through a bundle's own device path (detector, aligner, TFLite
encoder with the bundle's post-processing), one thread.

  .venv/bin/python bench/edge_worker.py versions|embed|speed|clip --system '{"bundle": DIR}' ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import report
from numpy.typing import NDArray
from worker_common import Found, System, Vector, main_for

from edge.bundle import load_bundle
from edge.engine import load_engine
from edge.images import ImageError, read_image
from edge.quality import yaw
from edge.types import AlignedFace, Detection
from model_export.faces import median_detection


class Edge:
    def __init__(self, bundle_dir: Path) -> None:
        cv2.setNumThreads(1)
        self.bundle = load_bundle(bundle_dir)
        self.engine = load_engine(self.bundle, num_threads=1)
        self.name = self.bundle.manifest.name
        self.metric = self.bundle.manifest.encoder.metric

    def load(self, path: str) -> Any:
        try:
            return read_image(Path(path))
        except ImageError:
            return None

    def detect(self, image: Any) -> list[Found]:
        return [
            Found((d.box.x1, d.box.y1, d.box.x2, d.box.y2), d) for d in self.engine.detect(image)
        ]

    def align(self, image: Any, face: Found) -> AlignedFace:
        return self.engine.align(image, face.native)

    def embed(self, aligned: AlignedFace) -> Vector:
        return np.asarray(self.engine.embed([aligned])[0].vector, np.float64)

    def yaw(self, face: Found) -> float:
        """How far the face is turned, as the device's gate measures it."""
        return yaw(face.native)

    def median(self, faces: list[Found]) -> Found:
        det: Detection = median_detection([f.native for f in faces])
        return Found((det.box.x1, det.box.y1, det.box.x2, det.box.y2), det)

    def from_rgb(self, frame: NDArray[np.uint8]) -> Any:
        return frame


def make(options: dict[str, Any]) -> System:
    return Edge(Path(options["bundle"]))


if __name__ == "__main__":
    main_for(make, report.edge_versions)
