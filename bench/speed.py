"""Interleaved per-face timing: the peer (dlib, in its own venv) and edge-face's device
path on the same photos, round after round, so that a noisy machine slows both alike.

A round times every face once on one side: the peer round (HOG detection, 5-point
landmarks, ``face_encodings`` with the known box), then the edge-face round (YuNet
detection, ``engine.align``: landmarks + chip, the int8 encoder's ``vector``, and one
plain int8 pass). Each side warms up untimed first. Every step is timed in wall time
(``perf_counter``) and in process CPU time (``process_time``: less moved by other jobs on a
busy machine); CPU over wall for a round says whether a side used more than one core.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from peer_venv import run_worker

from edge.engine import FaceEngine
from edge.images import read_image
from edge.types import RGBImage
from model_export.faces import nearest_to_centre

Timings = dict[str, list[float]]
Encode = Callable[[RGBImage], NDArray[np.float32]]


@dataclass(frozen=True, slots=True)
class SpeedFace:
    path: Path
    hog_box: tuple[int, int, int, int]  # (top, right, bottom, left), found by the peer's HOG


def as_box(values: NDArray[np.int64]) -> tuple[int, int, int, int]:
    top, right, bottom, left = (int(v) for v in values)
    return top, right, bottom, left


def pick_faces(candidates: list[SpeedFace], count: int) -> list[SpeedFace]:
    """``count`` faces spread evenly over the (sorted) candidates, reproducibly."""
    ordered = sorted(candidates, key=lambda f: str(f.path))
    if len(ordered) <= count:
        return ordered
    picks = np.linspace(0, len(ordered) - 1, count).round().astype(int)
    return [ordered[i] for i in picks]


def _timed(t: Timings, key: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, its wall and CPU milliseconds appended to ``t[key_ms]``, ``t[key_cpu_ms]``."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn(*args)
    t.setdefault(f"{key}_ms", []).append((time.perf_counter() - wall) * 1000.0)
    t.setdefault(f"{key}_cpu_ms", []).append((time.process_time() - cpu) * 1000.0)
    return result


def edge_round(engine: FaceEngine, vector: Encode, raw: Encode, images: list[RGBImage]) -> Timings:
    t: Timings = {}
    for image in images:
        dets = _timed(t, "detect", engine.detect, image)
        det = nearest_to_centre(dets, image.shape)
        if det is None:
            raise RuntimeError("YuNet found no face in a photo picked for timing")
        face = _timed(t, "align", engine.align, image, det)
        _timed(t, "vector", vector, face.image)
        _timed(t, "raw", raw, face.image)
    return t


def peer_round(python: Path, faces_file: Path, out: Path) -> Timings:
    run_worker(python, "speed", "--faces", str(faces_file), "--out", str(out))
    timings: Timings = json.loads(out.read_text())
    return timings


def _edge_timed_round(
    engine: FaceEngine, vector: Encode, raw: Encode, images: list[RGBImage]
) -> Timings:
    cpu, wall = time.process_time(), time.perf_counter()
    timings = edge_round(engine, vector, raw, images)
    timings["cpu_per_wall"] = [(time.process_time() - cpu) / (time.perf_counter() - wall)]
    return timings


def interleaved(
    faces: list[SpeedFace],
    engine: FaceEngine,
    vector: Encode,
    raw: Encode,
    python: Path,
    rounds: int,
) -> list[dict[str, Any]]:
    images = [read_image(f.path) for f in faces]
    for image in images[:3]:  # warm-up, untimed
        det = nearest_to_centre(engine.detect(image), image.shape)
        if det is not None:
            vector(engine.align(image, det).image)
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        faces_file = Path(tmp) / "faces.json"
        rows = [{"path": str(f.path), "box": list(f.hog_box)} for f in faces]
        faces_file.write_text(json.dumps(rows))
        for k in range(rounds):
            load = os.getloadavg()[0]
            peer = peer_round(python, faces_file, Path(tmp) / "round.json")
            edge = _edge_timed_round(engine, vector, raw, images)
            out.append({"round": k + 1, "loadavg_1min": load, "peer": peer, "edge": edge})
            print(
                f"  round {k + 1}/{rounds}: dlib encode {statistics.median(peer['encode_ms']):.1f} ms,"
                f" edge-face vector {statistics.median(edge['vector_ms']):.2f} ms (load {load:.2f})",
                flush=True,
            )
    return out


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per step: the median of the round medians and their min-max; ratios per round."""

    def medians(side: str, key: str) -> list[float]:
        return [statistics.median(r[side][key]) for r in rounds]

    steps = {
        "dlib_detect_hog": medians("peer", "detect_ms"),
        "dlib_landmarks_5pt": medians("peer", "landmarks_ms"),
        "dlib_face_encodings": medians("peer", "encode_ms"),
        "edge_detect_yunet": medians("edge", "detect_ms"),
        "edge_align": medians("edge", "align_ms"),
        "edge_vector": medians("edge", "vector_ms"),
        "edge_int8_pass": medians("edge", "raw_ms"),
        "dlib_face_encodings_cpu": medians("peer", "encode_cpu_ms"),
        "edge_vector_cpu": medians("edge", "vector_cpu_ms"),
    }
    s = steps
    box_to_vector_edge = [a + v for a, v in zip(s["edge_align"], s["edge_vector"], strict=True)]
    full_dlib = [d + e for d, e in zip(s["dlib_detect_hog"], s["dlib_face_encodings"], strict=True)]
    full_edge = [d + b for d, b in zip(s["edge_detect_yunet"], box_to_vector_edge, strict=True)]
    ratios = {
        "encode": [d / e for d, e in zip(s["dlib_face_encodings"], s["edge_vector"], strict=True)],
        "encode_cpu": [
            d / e for d, e in zip(s["dlib_face_encodings_cpu"], s["edge_vector_cpu"], strict=True)
        ],
        "box_to_vector": [
            d / e for d, e in zip(s["dlib_face_encodings"], box_to_vector_edge, strict=True)
        ],
        "detect": [
            d / e for d, e in zip(s["dlib_detect_hog"], s["edge_detect_yunet"], strict=True)
        ],
        "photo_to_vector": [d / e for d, e in zip(full_dlib, full_edge, strict=True)],
    }
    return {
        "ms": {k: spread(v) | {"rounds": v} for k, v in steps.items()},
        "ms_derived": {
            "edge_box_to_vector": spread(box_to_vector_edge),
            "dlib_photo_to_vector": spread(full_dlib),
            "edge_photo_to_vector": spread(full_edge),
        },
        "ratio_dlib_over_edge": {k: spread(v) | {"rounds": v} for k, v in ratios.items()},
        "cpu_per_wall": {
            side: spread([r[side]["cpu_per_wall"][0] for r in rounds]) for side in ("peer", "edge")
        },
    }
