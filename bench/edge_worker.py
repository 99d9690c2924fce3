"""edge-face as a benchmark worker, in the project's venv: the same jobs as the peers'
(bench/worker_common.py) through a bundle's own device path (detector, aligner, TFLite
encoder with the bundle's post-processing), one thread.

  .venv/bin/python bench/edge_worker.py versions|embed|speed|clip --system '{"bundle": DIR}' ...

With ``"daemon": "on"`` or ``"off"`` in the options, ``clip`` runs the daemon's own frame
path instead of the per-frame loop (:class:`DaemonLoop`): ``edge.pipeline.Pipeline`` and
``edge.tracker.Tracker`` with a real SQLite gallery enrolled through ``edge.enroll``, the
daemon's default config, and ``[pipeline]`` as the default config has it ("on": the
encoder schedule, the motion gate, detection scaled from ``[camera] min_face`` and at
most ``detect_fps`` times a second) or with all four off ("off": every face of every frame embedded, the detector on every frame at
full size, as before issue 23).
"""

from __future__ import annotations

from collections.abc import Callable
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


class DaemonLoop:
    """The daemon's per-frame path with the counters the clip job reports."""

    def __init__(self, bundle: Any, engine: Any, db: Path, scheduled: bool) -> None:
        import sqlite3
        from dataclasses import replace

        from edge.config import Config, PipelineConfig
        from edge.gallery import Gallery
        from edge.service import daemon_pipeline

        config = Config()
        off: dict[str, Any] = {}
        if not scheduled:  # every face of every frame, the detector on every full frame
            config = replace(config, pipeline=PipelineConfig(schedule=False, motion_gate=False,
                                                             detect_fps=0))  # fmt: skip
            off = {"detect_scale": 1.0}
        gallery = Gallery(sqlite3.connect(db, isolation_level=None, check_same_thread=False))
        self.pipeline = daemon_pipeline(config, bundle, engine, gallery, self, camera="bench",
                                        reload_check_s=1e9, **off)  # fmt: skip
        self.names = self.pipeline.matrix.names
        self.events: list[list[str]] = []
        self.stages = {"detect": 0.0, "align": 0.0, "embed": 0.0, "match": 0.0}

    def publish(self, event: Any) -> None:
        self.events.append([event.type, event.person or "", str(event.track_id)])

    def process(self, rgb: NDArray[np.uint8], index: int, timestamp: float) -> None:
        from edge.types import Frame

        self.pipeline.process(Frame(rgb, index, timestamp))
        latency = self.pipeline.stats.latency  # this frame's laps, ms, last in each window
        for stage in self.stages:
            self.stages[stage] += latency[stage][-1] / 1000.0

    @property
    def faces(self) -> int:
        return self.pipeline.stats.faces_seen

    @property
    def detector_calls(self) -> int:
        return self.pipeline.stats.detector_runs

    @property
    def encoder_calls(self) -> int:
        return self.pipeline.stats.embeddings


class Edge:
    def __init__(self, bundle_dir: Path, daemon: str | None = None) -> None:
        cv2.setNumThreads(1)
        self.daemon = daemon
        self._db: Path | None = None
        # the clip job's loop: the daemon's when asked for, else the per-frame loop
        self.clip_loop: Callable[[list[tuple[str, str]]], Any] | None = (
            self._daemon_loop if daemon else None
        )
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

    def _gallery(self, gallery: list[tuple[str, str]]) -> Path:
        """The clip's gallery as a real SQLite file, enrolled once (one photo a person)."""
        import logging
        import tempfile

        from edge.enroll import enroll_photos
        from edge.gallery import Gallery

        if self._db is None:
            logging.getLogger("edge").setLevel(logging.WARNING)
            self._db = Path(tempfile.mkdtemp(prefix="bench-daemon-")) / "gallery.db"
            store = Gallery(self._db)
            for name, photo in gallery:  # a photo the gates refuse leaves its person out
                enroll_photos(store, self.engine, name, [Path(photo)])
            store.close()
        return self._db

    def _daemon_loop(self, gallery: list[tuple[str, str]]) -> Any:
        """The daemon's loop (``"daemon"`` in the options: ``clip_loop``)."""
        return DaemonLoop(self.bundle, self.engine, self._gallery(gallery), self.daemon == "on")


def make(options: dict[str, Any]) -> System:
    return Edge(Path(options["bundle"]), options.get("daemon"))


if __name__ == "__main__":
    main_for(make, report.edge_versions)
