"""What every benchmark worker does, whatever the system behind it (edge-face, dlib, SFace).

Imports numpy and the standard library only, so that it runs in the peers' venvs too. A
system is an object with ``load``, ``detect``, ``align``, ``embed``, ``median`` and
``from_rgb`` (see :class:`System`); the three jobs below are the same code for all of them:

- :func:`embed_photos`: every photo once (LFW pairs and the open-set people): the faces
  found, the vector of the face nearest the centre (for pairs; from the median face of
  the set where none was found) and of the largest face (for identification).
- :func:`speed_round`: one timed round over given photos, per stage, wall and CPU time.
- :func:`clip_run`: a clip end to end (detect, align, embed, match against a small
  gallery) from decoded frames, as fast as it goes and at its own frame rate, with the
  counts of detector and encoder calls and the process's peak memory.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Found:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
    native: Any  # the system's own record of the face (a dlib box, a YuNet row, ...)

    @property
    def area(self) -> float:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])


class System(Protocol):
    name: str
    metric: str  # "euclidean" or "cosine" (1 - cosine similarity)

    def load(self, path: str) -> Any: ...
    def detect(self, image: Any) -> list[Found]: ...
    def align(self, image: Any, face: Found) -> Any: ...
    def embed(self, aligned: Any) -> Vector: ...
    def median(self, faces: list[Found]) -> Found: ...
    def from_rgb(self, frame: NDArray[np.uint8]) -> Any: ...


def log(message: str) -> None:
    print(f"  [{Path(sys.argv[0]).stem}] {message}", file=sys.stderr, flush=True)


def nearest_to_centre(faces: list[Found], shape: tuple[int, ...]) -> Found:
    cy, cx = shape[0] / 2, shape[1] / 2
    return min(
        faces,
        key=lambda f: ((f.box[0] + f.box[2]) / 2 - cx) ** 2 + ((f.box[1] + f.box[3]) / 2 - cy) ** 2,
    )


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def distances(vector: Vector, gallery: NDArray[np.float64], metric: str) -> NDArray[np.float64]:
    if metric == "cosine":
        a = vector / max(float(np.linalg.norm(vector)), 1e-12)
        g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
        return np.asarray(1.0 - g @ a)
    return np.asarray(np.linalg.norm(gallery - vector, axis=1))


def peak_rss_mb() -> float:
    """The process's peak resident memory: VmHWM, which starts afresh at exec (ru_maxrss
    would carry over the parent's peak from before the fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def embed_photos(system: System, paths: list[str], out: Path) -> None:
    n = len(paths)
    centre: list[Vector | None] = [None] * n
    largest: list[Vector | None] = [None] * n
    largest_yaw = np.full(n, np.nan)  # a system that measures pose (``yaw``): edge-face
    pose = getattr(system, "yaw", None)
    n_faces = np.zeros(n, np.int64)
    no_face, unreadable = np.zeros(n, bool), np.zeros(n, bool)
    det_ms, align_ms, embed_ms = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    found_centres: list[Found] = []
    pending: list[int] = []
    start = time.perf_counter()
    for i, path in enumerate(paths):
        image = system.load(path)
        if image is None:
            unreadable[i] = True
            continue
        t0 = time.perf_counter()
        faces = system.detect(image)
        det_ms[i], n_faces[i] = ms_since(t0), len(faces)
        if faces:
            face = nearest_to_centre(faces, image.shape)
            found_centres.append(face)
            t0 = time.perf_counter()
            aligned = system.align(image, face)
            align_ms[i] = ms_since(t0)
            t0 = time.perf_counter()
            centre[i] = system.embed(aligned)
            embed_ms[i] = ms_since(t0)
            big = max(faces, key=lambda f: f.area)
            largest[i] = centre[i] if big is face else system.embed(system.align(image, big))
            if pose is not None:
                largest_yaw[i] = pose(big)
        else:
            pending.append(i)
        if (i + 1) % 250 == 0 or i + 1 == n:
            rate = (i + 1) / (time.perf_counter() - start)
            log(
                f"{system.name}: {i + 1}/{n} photos, {rate:.1f}/s, ~{(n - i - 1) / rate / 60:.1f} min left"
            )
    if pending and found_centres:
        fallback = system.median(found_centres)
        for i in pending:
            no_face[i] = True
            centre[i] = system.embed(system.align(system.load(paths[i]), fallback))
    else:
        unreadable[pending] = True
    dim = next((len(v) for v in centre if v is not None), 1)
    nan = np.full(dim, np.nan)
    np.savez(
        out,
        paths=np.array(paths),
        centre=np.stack([nan if v is None else v for v in centre]),
        largest=np.stack([nan if v is None else v for v in largest]),
        largest_yaw=largest_yaw,
        n_faces=n_faces,
        no_face=no_face,
        unreadable=unreadable,
        detect_ms=det_ms,
        align_ms=align_ms,
        embed_ms=embed_ms,
    )


Timings = dict[str, list[float]]


def _timed(t: Timings, key: str, fn: Callable[..., Any], *args: Any) -> Any:
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn(*args)
    t.setdefault(f"{key}_ms", []).append(ms_since(wall))
    t.setdefault(f"{key}_cpu_ms", []).append((time.process_time() - cpu) * 1000.0)
    return result


def speed_round(
    system: System,
    paths: list[str],
    out: Path,
    warmup: int = 3,
    extra: Callable[[Any, Found], Callable[[], Any]] | None = None,
) -> None:
    """Per photo: detect (whole photo), align and embed (the face nearest the centre);
    ``extra`` gives one more call per face to time (dlib's own ``face_encodings``)."""
    images = [system.load(p) for p in paths]
    faces = []
    for image in images:  # untimed: which face to time, and a warm-up
        found = system.detect(image)
        if not found:
            raise RuntimeError(f"{system.name} found no face in a photo picked for timing")
        faces.append(nearest_to_centre(found, image.shape))
    for image, face in list(zip(images, faces, strict=True))[:warmup]:
        system.embed(system.align(image, face))
    t: Timings = {}
    cpu, wall = time.process_time(), time.perf_counter()
    for image, face in zip(images, faces, strict=True):
        _timed(t, "detect", system.detect, image)
        aligned = _timed(t, "align", system.align, image, face)
        _timed(t, "embed", system.embed, aligned)
        if extra is not None:
            _timed(t, "combined", extra(image, face))
    t["cpu_per_wall"] = [(time.process_time() - cpu) / (time.perf_counter() - wall)]
    t["peak_rss_mb"] = [peak_rss_mb()]
    out.write_text(json.dumps(t))


def read_frames(path: Path, limit: int | None) -> Iterator[NDArray[np.uint8]]:
    """Frames of an .npy file (N, H, W, 3), read one at a time (not memory-mapped, so
    that the file does not count in the process's memory)."""
    with path.open("rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        count = shape[0] if limit is None else min(limit, shape[0])
        size = int(np.prod(shape[1:]))
        for _ in range(count):
            yield np.frombuffer(fh.read(size), dtype).reshape(shape[1:]).copy()


def enroll(system: System, gallery: list[tuple[str, str]]) -> tuple[list[str], NDArray[np.float64]]:
    names, vectors = [], []
    for name, path in gallery:
        image = system.load(path)
        faces = system.detect(image) if image is not None else []
        if faces:
            names.append(name)
            vectors.append(system.embed(system.align(image, max(faces, key=lambda f: f.area))))
    return names, np.stack(vectors)


class FrameLoop:
    """The per-frame loop every peer's tutorial runs: detect every face of every frame,
    align and embed each, find its nearest enrolled person. A system may bring its own
    loop (``System.clip_loop``: edge-face's daemon, bench/edge_worker.py) with the same
    ``process`` and counters."""

    def __init__(self, system: System, names: list[str], matrix: NDArray[np.float64]) -> None:
        self.system, self.names, self.matrix = system, names, matrix
        self.stages = {"detect": 0.0, "align": 0.0, "embed": 0.0, "match": 0.0}
        self.faces = self.detector_calls = self.encoder_calls = 0
        self.events: list[list[str]] = []  # the per-frame loop decides nothing
        self.nearest = ""

    def process(self, rgb: NDArray[np.uint8], index: int, timestamp: float) -> None:
        image = self.system.from_rgb(rgb)
        t0 = time.perf_counter()
        found = self.system.detect(image)
        self.stages["detect"] += time.perf_counter() - t0
        self.detector_calls += 1
        for face in found:
            a0 = time.perf_counter()
            aligned = self.system.align(image, face)
            a1 = time.perf_counter()
            vector = self.system.embed(aligned)
            a2 = time.perf_counter()
            self.nearest = self.names[
                int(np.argmin(distances(vector, self.matrix, self.system.metric)))
            ]
            a3 = time.perf_counter()
            self.stages["align"] += a1 - a0
            self.stages["embed"] += a2 - a1
            self.stages["match"] += a3 - a2
        self.faces += len(found)
        self.encoder_calls += len(found)


def loop_maker(system: System, gallery: list[tuple[str, str]]) -> Callable[[], Any]:
    """A fresh loop for each pass: the system's own (``clip_loop(gallery)``, which enrolls
    the gallery its own way) or the per-frame loop over the gallery enrolled here."""
    own = getattr(system, "clip_loop", None)
    if own is not None:
        return lambda: own(gallery)
    names, matrix = enroll(system, gallery)
    return lambda: FrameLoop(system, names, matrix)


def paced(loop: Any, frames: Path, fps: float, limit: int | None) -> dict[str, float]:
    """The clip at its own frame rate, as a live camera delivers it: at each moment the
    newest frame is processed (frames that arrived meanwhile are dropped, as a camera
    reader that keeps only the latest does). CPU seconds are counted around processing
    only, so reading the file costs nothing; sleeping costs nothing."""
    clip = np.load(frames, mmap_mode="r")
    n = len(clip) if limit is None else min(limit, len(clip))
    cpu, processed, last = 0.0, 0, -1
    start = time.perf_counter()
    while True:
        index = int((time.perf_counter() - start) * fps)
        if index >= n:
            break
        if index == last:
            time.sleep(max(0.0, start + (last + 1) / fps - time.perf_counter()))
            continue
        rgb = np.array(clip[index])
        c0 = time.process_time()
        loop.process(rgb, index, index / fps)
        cpu += time.process_time() - c0
        processed, last = processed + 1, index
    seconds = n / fps
    return {
        "video_s": seconds,
        "cpu_s": cpu,
        "cpu_per_video_s": cpu / seconds,
        "frames_processed": processed,
        "frames_dropped": n - processed,
    }


def clip_run(
    system: System,
    frames: Path,
    gallery: list[tuple[str, str]],
    out: Path,
    limit: int | None,
    pace: float | None = None,
) -> None:
    """Every frame through the system's loop as fast as it goes (frames are decoded
    beforehand, as a camera delivers them; converting them to the system's colour order
    is not timed), then, with ``pace`` (frames per second), once more at the clip's own
    frame rate for the CPU it costs (:func:`paced`). Writes the figures and the process's
    peak memory."""
    make = loop_maker(system, gallery)
    loop = make()
    count, elapsed = 0, 0.0
    for rgb in read_frames(frames, limit):
        t0 = time.perf_counter()
        loop.process(rgb, count, count / (pace or 30.0))
        elapsed += time.perf_counter() - t0
        count += 1
    result: dict[str, Any] = {
        "frames": count,
        "faces": loop.faces,
        "fps": count / elapsed,
        "ms_per_frame": 1000.0 * elapsed / count,
        "stage_ms_per_frame": {k: 1000.0 * v / count for k, v in loop.stages.items()},
        "detector_calls": loop.detector_calls,
        "encoder_calls": loop.encoder_calls,
        "events": loop.events,
        "gallery": len(loop.names),
        "peak_rss_mb": peak_rss_mb(),  # before the paced pass, whose memory-mapped frames count
    }
    if pace:
        result["paced"] = paced(make(), frames, pace, limit)
    out.write_text(json.dumps(result))


def main_for(
    make: Callable[[dict[str, Any]], System],
    versions: Callable[[], dict[str, Any]],
    extra: Callable[[System], Callable[[Any, Found], Callable[[], Any]] | None] = lambda s: None,
) -> None:
    """The command line every worker shares: ``versions``, ``embed``, ``speed``, ``clip``;
    the system's own options come as one JSON argument (``--system '{...}'``)."""
    import argparse

    parser = argparse.ArgumentParser(description="benchmark worker (see bench/worker_common.py)")
    parser.add_argument("command", choices=["versions", "embed", "speed", "clip"])
    parser.add_argument("--system", default="{}", help="the system's options, as JSON")
    parser.add_argument("--images", type=Path, help="a text file, one photo path a line")
    parser.add_argument("--frames", type=Path, help="decoded frames, .npy (N, H, W, 3) RGB")
    parser.add_argument("--gallery", type=Path, help='JSON [["name", "photo"], ...]')
    parser.add_argument("--limit", type=int, help="at most this many frames")
    parser.add_argument("--pace", type=float, help="clip: also run it at this frame rate")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.command == "versions":
        print(json.dumps(versions()))
        return
    system = make(json.loads(args.system))
    if args.command == "clip":
        gallery = [tuple(g) for g in json.loads(args.gallery.read_text())]
        clip_run(system, args.frames, gallery, args.out, args.limit, args.pace)  # type: ignore[arg-type]
        return
    paths = [p for p in args.images.read_text().splitlines() if p]
    if args.command == "embed":
        embed_photos(system, paths, args.out)
    else:
        speed_round(system, paths, args.out, extra=extra(system))
