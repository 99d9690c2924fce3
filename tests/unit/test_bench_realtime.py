"""bench/worker_common.py's clip job (the per-frame loop, the paced pass) and
bench/daemon_fps.py's checks, on a fake system: what the real-time table counts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import daemon_fps
import worker_common
from worker_common import Found


class TwoFaces:
    """A system that finds two faces in every frame."""

    name, metric = "fake", "euclidean"

    def load(self, path: str) -> Any:
        return np.zeros((8, 8, 3), np.uint8)

    def detect(self, image: Any) -> list[Found]:
        return [Found((0, 0, 4, 4), None), Found((4, 4, 8, 8), None)]

    def align(self, image: Any, face: Found) -> Any:
        return face

    def embed(self, aligned: Any) -> np.ndarray:
        return np.array([aligned.box[0], 1.0])

    def median(self, faces: list[Found]) -> Found:
        return faces[0]

    def from_rgb(self, frame: Any) -> Any:
        return frame


def test_the_clip_job_counts_calls_and_plays_the_clip_at_its_pace(tmp_path: Path) -> None:
    frames = tmp_path / "clip.npy"
    np.save(frames, np.zeros((12, 8, 8, 3), np.uint8))
    out = tmp_path / "out.json"
    worker_common.clip_run(TwoFaces(), frames, [("a", "a.jpg")], out, None, pace=100.0)
    r = json.loads(out.read_text())
    assert r["frames"] == 12 and r["faces"] == 24
    assert r["detector_calls"] == 12 and r["encoder_calls"] == 24
    paced = r["paced"]
    assert paced["video_s"] == 0.12
    assert paced["frames_processed"] + paced["frames_dropped"] == 12
    assert paced["frames_processed"] >= 1
    assert paced["cpu_per_video_s"] == paced["cpu_s"] / 0.12


def test_a_system_may_bring_its_own_loop(tmp_path: Path) -> None:
    class Own(TwoFaces):
        def clip_loop(self, gallery: list[tuple[str, str]]) -> Any:
            loop = worker_common.FrameLoop(self, ["own"], np.zeros((1, 2)))
            loop.events = [["recognized", "own", "1"]]
            return loop

    frames = tmp_path / "clip.npy"
    np.save(frames, np.zeros((3, 8, 8, 3), np.uint8))
    out = tmp_path / "out.json"
    worker_common.clip_run(Own(), frames, [], out, 2)
    r = json.loads(out.read_text())
    assert r["frames"] == 2 and r["gallery"] == 1 and r["events"] == [["recognized", "own", "1"]]
    assert "paced" not in r


def _run(fps: float, enc: int, cpu: float) -> dict[str, Any]:
    return {"fps": fps, "encoder_calls": enc, "cpu_per_video_s": cpu}


def test_the_checks_compare_on_with_off_in_the_same_run() -> None:
    results = {
        "hamilton": {"daemon-on": _run(90.0, 50, 0.2), "daemon-off": _run(30.0, 500, 0.9)},
        "idle": {"daemon-on": _run(2000.0, 0, 0.01), "daemon-off": _run(100.0, 0, 0.3)},
    }
    pi = {"boards": {"pi4": {"fps": 16.0}}}
    c = daemon_fps.checks(results, pi)
    assert c["figures"]["hamilton_fps_ratio"] == 3.0
    assert c["figures"]["hamilton_encoder_ratio"] == 10.0
    assert c["figures"]["idle_fps_ratio"] == 20.0
    assert all(c["met"].values())
    assert c["figures"]["cpu_ratio_by_clip"]["idle"] == 0.01 / 0.3
    results["hamilton"]["daemon-on"]["cpu_per_video_s"] = 0.6  # 2/3 of off: not <= 1/3
    assert not daemon_fps.checks(results, pi)["met"]["hamilton_cpu_ratio"]
    assert not daemon_fps.checks(results, {"boards": {"pi4": {"fps": 14.9}}})["met"][
        "pi4_hamilton_fps"
    ]
