"""The daemon's k-of-n agreement measured per encounter (issue 28): how often a person
walking past the camera is given a name, as a household sees it, not per photo.

An *encounter* is one short clip through the daemon's own per-frame path
(``edge.pipeline.Pipeline``: detect, skip small faces, align, embed, the bundle's rule,
the pose gate, then ``edge.tracker.Tracker``'s k of n), with a fresh tracker each, against
a real SQLite gallery enrolled through ``edge.enroll`` with the report plans' enrolled
people (``report_data``: report people only):

- **clips made of photos**: each photo of the open-set plans becomes a clip of ``FRAMES``
  frames in which the face comes nearer the camera (it grows from about 0.55 to 0.95 of the
  frame's height and drifts sideways), with the light changing a little, sensor noise and
  JPEG compression, every frame different; a stranger's clip is a *non-mated encounter*,
  the first probe photo of each enrolled person a *mated* one;
- **the street clip** (``videos/street``, pedestrians nobody enrolled) with the LFW plan's
  gallery: its tracks, and the names it gave.

An encounter *names* someone when the tracker publishes a ``recognized`` event in it. The
figures: strangers' encounters named (the encounter-level false-name rate), mated
encounters named right, wrong, or left unknown, with 95% intervals (bootstrap by person,
widened to Wilson). Clips are cut into chunks that run in parallel processes, one thread
each.

    .venv/bin/python bench/encounters.py [--bundle build/bundle-sface] [--workers N]
        [--limit N] [--out FILE]

``make bench`` runs it from ``suite.py`` for the default bundle; alone it prints its
table and writes ``--out`` (nothing by default).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import intervals
import numpy as np
import report_data
from numpy.typing import NDArray

FRAMES = 8  # frames per clip: enough for k of n (3 of 5) and for `unknown` (8)
FPS = 10.0
WIDTH, HEIGHT = 640, 480
STREET = Path("videos") / "street" / "video.mp4"
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Clip:
    """One encounter: the photo it is made of, whose it is, and in which plan."""

    domain: str
    kind: str  # "mated" or "stranger"
    person: str
    photo: str  # the photo as the plans name it
    file: str  # the file read (a tight crop's bordered copy)


def clips_for(plans: dict[str, report_data.OpenSetPlan], copies: dict[Path, Path]) -> list[Clip]:
    """Every stranger photo of every plan, and the first probe photo of every enrolled
    person."""
    out: list[Clip] = []
    for domain, plan in plans.items():
        for person, photos in plan.enrolled.items():
            for photo in photos[report_data.ENROLL :][:1]:
                out.append(Clip(domain, "mated", person, str(photo), str(copies[photo])))
        for person, photos in plan.strangers.items():
            for photo in photos:
                out.append(Clip(domain, "stranger", person, str(photo), str(copies[photo])))
    return out


def frames_of(image: NDArray[np.uint8], seed: int, count: int = FRAMES) -> list[NDArray[np.uint8]]:
    """A photo as ``count`` camera frames of a face coming nearer (RGB, WIDTH x HEIGHT)."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    drift = rng.uniform(-0.08, 0.08) * WIDTH
    out = []
    for i in range(count):
        t = i / max(count - 1, 1)
        scale = (0.55 + 0.40 * t) * HEIGHT / max(h, w)
        face = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                          interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)  # fmt: skip
        canvas = np.full((HEIGHT, WIDTH, 3), 96, np.float32)
        fh, fw = face.shape[:2]
        cx = WIDTH / 2 + drift * (t - 0.5) + rng.normal(0, 2)
        cy = HEIGHT / 2 + rng.normal(0, 2)
        x0, y0 = round(cx - fw / 2), round(cy - fh / 2)
        sx, sy = max(0, -x0), max(0, -y0)
        ex, ey = min(fw, WIDTH - x0), min(fh, HEIGHT - y0)
        canvas[y0 + sy : y0 + ey, x0 + sx : x0 + ex] = face[sy:ey, sx:ex]
        canvas = canvas * rng.uniform(0.88, 1.12) + rng.normal(0, 3, canvas.shape)
        frame = np.clip(canvas, 0, 255).astype(np.uint8)
        ok, jpeg = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            raise RuntimeError("cannot encode a frame as JPEG")
        out.append(np.ascontiguousarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1]))
    return out


def seed_of(clip: Clip) -> int:
    return int.from_bytes(hashlib.sha1(clip.photo.encode()).digest()[:4], "big")


class _Events:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish(self, event: Any) -> None:
        self.events.append(event)


def _pipeline(bundle_dir: str, gallery_db: str) -> tuple[Any, Any, _Events]:
    """The daemon's pipeline on a bundle and a gallery file, with the default config."""
    import cv2

    from edge.bundle import load_bundle
    from edge.config import Config
    from edge.engine import load_engine
    from edge.gallery import Gallery
    from edge.motion import MotionGate
    from edge.schedule import EmbedSchedule
    from edge.service import daemon_pipeline, tracker_settings
    from edge.tracker import Tracker

    cv2.setNumThreads(1)
    config = Config()
    bundle = load_bundle(Path(bundle_dir))
    sink = _Events()
    gallery = Gallery(sqlite3.connect(gallery_db, isolation_level=None, check_same_thread=False))
    pipeline = daemon_pipeline(config, bundle, load_engine(bundle, num_threads=1), gallery, sink,
                               camera="bench", reload_check_s=1e9)  # fmt: skip

    def fresh() -> None:
        pipeline.tracker = Tracker(tracker_settings(config), "bench")
        pipeline.schedule = EmbedSchedule(pipeline.schedule.settings)
        pipeline.motion = MotionGate(pipeline.motion.settings) if pipeline.motion else None

    return pipeline, fresh, sink


def run_chunk(
    bundle_dir: str, galleries: dict[str, str], clips: list[Clip]
) -> list[dict[str, Any]]:
    """Each clip through the pipeline of its domain's gallery: the names published, and
    whether ``unknown`` fired."""
    from edge.images import read_image
    from edge.types import Frame

    logging.getLogger("edge").setLevel(logging.WARNING)
    pipes = {d: _pipeline(bundle_dir, db) for d, db in galleries.items()}
    out = []
    for clip in clips:
        pipeline, fresh, sink = pipes[clip.domain]
        fresh()
        sink.events.clear()
        image = read_image(Path(clip.file))
        for i, frame in enumerate(frames_of(image, seed_of(clip))):
            pipeline.process(Frame(frame, i, i / FPS))
        named = sorted({e.person for e in sink.events if e.type == "recognized"})
        unknown = any(e.type == "unknown" for e in sink.events)
        out.append(asdict(clip) | {"named": named, "unknown": unknown})
    return out


def street(bundle_dir: str, gallery_db: str, video: Path) -> dict[str, Any]:
    """The street clip, every frame, through the pipeline: tracks, events, names."""
    from edge.sources import open_source

    logging.getLogger("edge").setLevel(logging.WARNING)
    pipeline, _, sink = _pipeline(bundle_dir, gallery_db)
    source = open_source(str(video))
    frames = 0
    while (frame := source.read()) is not None:
        pipeline.process(frame)
        frames += 1
    source.close()
    return {
        "frames": frames,
        "tracks": pipeline.tracker.started(),
        "recognized": sorted(e.person for e in sink.events if e.type == "recognized"),
        "unknown_events": sum(e.type == "unknown" for e in sink.events),
        "gallery_people": len(pipeline.matrix.names),
    }


def enroll(bundle_dir: Path, plans: dict[str, report_data.OpenSetPlan],
           copies: dict[Path, Path], folder: Path) -> dict[str, str]:  # fmt: skip
    """One SQLite gallery file per plan, each enrolled person from their first photos,
    through ``edge.enroll`` (a photo without exactly one face is refused, as by the CLI)."""
    from edge.bundle import load_bundle
    from edge.engine import load_engine
    from edge.enroll import enroll_photos
    from edge.gallery import Gallery

    engine = load_engine(load_bundle(bundle_dir), num_threads=1)
    out = {}
    for domain, plan in plans.items():
        db = folder / f"{domain}.sqlite"
        with Gallery(db) as gallery:
            for person, photos in plan.enrolled.items():
                enroll_photos(
                    gallery, engine, person, [copies[p] for p in photos[: report_data.ENROLL]]
                )
            out[domain] = str(db)
    return out


def _rate_by_person(
    rows: list[dict[str, Any]], hit: Callable[[dict[str, Any]], bool]
) -> intervals.Rate:
    people: dict[str, list[int]] = {}
    for r in rows:
        k_n = people.setdefault(r["person"], [0, 0])
        k_n[0] += int(hit(r))
        k_n[1] += 1
    k, n = zip(*people.values(), strict=True) if people else ((), ())
    return intervals.by_person(np.array(k, int), np.array(n, int))


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per domain: strangers' encounters named; mated encounters named right, wrong, left
    unknown."""
    out: dict[str, Any] = {}
    for domain in sorted({r["domain"] for r in rows}, key=["lfw", "cfp", "cfp-profile"].index):
        strangers = [r for r in rows if r["domain"] == domain and r["kind"] == "stranger"]
        mated = [r for r in rows if r["domain"] == domain and r["kind"] == "mated"]
        out[domain] = {
            "strangers_named": _rate_by_person(strangers, lambda r: bool(r["named"])),
            "strangers_unknown_event": _rate_by_person(strangers, lambda r: r["unknown"]),
            "named_right": _rate_by_person(mated, lambda r: r["named"] == [r["person"]]),
            "wrong_name": _rate_by_person(
                mated, lambda r: any(n != r["person"] for n in r["named"])
            ),
            "left_unknown": _rate_by_person(mated, lambda r: not r["named"]),
            "named_as": sorted({(r["person"], n) for r in strangers for n in r["named"]}),
        }
    return out


def measure(bundle_dir: Path, plans: dict[str, report_data.OpenSetPlan],
            copies: dict[Path, Path], root: Path, workers: int = 0, limit: int = 0,
            progress: Progress = print) -> dict[str, Any]:  # fmt: skip
    """Every encounter of the plans, and the street clip, for one bundle."""
    started = time.time()
    clips = clips_for(plans, copies)
    if limit:
        clips = clips[::max(1, len(clips) // limit)][:limit]  # fmt: skip
    workers = workers or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-encounters-") as tmp:
        progress(f"encounters: enrolling {sum(len(p.enrolled) for p in plans.values())} people")
        galleries = enroll(bundle_dir, plans, copies, Path(tmp))
        chunks = [clips[i::workers] for i in range(workers)]
        progress(f"encounters: {len(clips)} clips of {FRAMES} frames, {workers} processes")
        pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"))
        with pool:
            jobs = [pool.submit(run_chunk, str(bundle_dir), galleries, c) for c in chunks]
            street_job = pool.submit(street, str(bundle_dir), galleries["lfw"], root / STREET)
            rows = [r for j in jobs for r in j.result()]
            on_street = street_job.result()
    rows.sort(key=lambda r: (r["domain"], r["kind"], r["photo"]))
    return {
        "bundle": str(bundle_dir),
        "frames_per_clip": FRAMES,
        "fps": FPS,
        "frame_size": [WIDTH, HEIGHT],
        "clips": len(rows),
        "domains": summarise(rows),
        "street": on_street,
        "seconds": round(time.time() - started, 1),
    }


def table(result: dict[str, Any]) -> str:
    lines = [
        "| domain | strangers' encounters named | mated: named right | wrong name | left unknown |",
        "|---|---|---|---|---|",
    ]
    for domain, d in result["domains"].items():
        cells = [
            intervals.counted(d[k])
            for k in ("strangers_named", "named_right", "wrong_name", "left_unknown")
        ]
        lines.append(f"| {domain} | " + " | ".join(cells) + " |")
    s = result["street"]
    lines.append(
        f"\nstreet clip: {s['frames']} frames, {s['tracks']} tracks, "
        f"{len(s['recognized'])} named ({', '.join(s['recognized']) or 'none'}), "
        f"{s['unknown_events']} unknown events; gallery of {s['gallery_people']} people"
    )
    return "\n".join(lines)


def main() -> None:
    from model_export import splits
    from model_export.data import data_root

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, default=Path("build/bundle-sface"))
    p.add_argument("--workers", type=int, default=0, help="processes (default: every core)")
    p.add_argument(
        "--limit", type=int, default=0, help="at most N clips, evenly drawn (quick runs)"
    )
    p.add_argument("--out", type=Path, help="write the result here as JSON")
    args = p.parse_args()
    root, s = data_root(), splits.load()
    plans = report_data.report_plans(root, s)
    photos = sorted(set().union(*(pl.photos() for pl in plans.values())))
    copies = report_data.worker_copies(photos, root, Path("build") / "bench-cache")
    result = measure(args.bundle, plans, copies, root, args.workers, args.limit)
    print(table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
