"""The daemon's pipeline on the Hamilton clip: frames per second, latency per stage
(p50/p95) and peak memory, with one thread and with all cores.

    .venv/bin/python bench/daemon_fps.py [--bundle build/bundle]

Each mode runs in its own process (so peak RSS is its own): every frame of the clip
(decoded as it is read, not timed) goes through detect, align, embed, match and track with a gallery of the
clip's three people and 50 LFW distractors; events go to a null sink. Prints a table and
writes bench/results/daemon_fps.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def measure(bundle_dir: Path, threads: int) -> dict[str, object]:
    import cv2

    cv2.setNumThreads(threads)
    from edge.bundle import load_bundle
    from edge.config import RecognitionConfig
    from edge.engine import load_engine
    from edge.enroll import enroll_photos
    from edge.gallery import Gallery
    from edge.pipeline import Pipeline
    from edge.recognize import policy_for
    from edge.sources import open_source
    from edge.tracker import Tracker, TrackerSettings
    from model_export.calibration import select
    from model_export.data import data_root

    data = data_root()
    bundle = load_bundle(bundle_dir)
    engine = load_engine(bundle, num_threads=threads)
    gallery = Gallery(sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False))
    refs = data / "videos" / "hamilton" / "reference"
    for name, photo in (("Lin-Manuel Miranda", "lin-manuel-miranda.png"), ("Alex Lacamoire", "alex-lacamoire.png"),
                        ("Barack Obama", "obama.jpg")):  # fmt: skip
        enroll_photos(gallery, engine, name, [refs / photo])
    for photo in select(data / "lfw", set(), 60):
        enroll_photos(gallery, engine, f"lfw:{photo.parent.name}", [photo])
    source = open_source(str(data / "videos" / "hamilton" / "short_hamilton_clip.mp4"))

    class Null:
        def publish(self, event: object) -> None:
            pass

    policy = policy_for(bundle.manifest, RecognitionConfig(), min_face=40, cohort=bundle.cohort)
    tracker = Tracker(TrackerSettings(), "clip")
    pipeline = Pipeline(engine, gallery, policy, bundle.manifest.encoder_id, tracker, Null())
    elapsed, frames = 0.0, 0
    while (frame := source.read()) is not None:  # decoding is not timed: a camera delivers frames
        t0 = time.perf_counter()
        pipeline.process(frame)
        elapsed += time.perf_counter() - t0
        frames += 1
    return {
        "threads": threads,
        "frames": frames,
        "fps": frames / elapsed,
        "faces_seen": pipeline.stats.faces_seen,
        "latency_ms": {
            k: {"p50": round(a, 2), "p95": round(b, 2)}
            for k, (a, b) in pipeline.stats.percentiles().items()
        },
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "gallery_people": len(pipeline.matrix.names),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "build" / "bundle")
    parser.add_argument(
        "--threads", type=int, default=None, help=argparse.SUPPRESS
    )  # one mode, in a child
    args = parser.parse_args()
    if args.threads is not None:
        print(json.dumps(measure(args.bundle, args.threads)))
        return
    results = []
    for threads in (1, os.cpu_count() or 1):
        out = subprocess.run([sys.executable, __file__, "--bundle", str(args.bundle), "--threads", str(threads)],
                             capture_output=True, text=True, check=True)  # fmt: skip
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(
        f"{'threads':>7} {'fps':>7} {'RSS MB':>7}  "
        + "  ".join(f"{s + ' p50/p95':>18}" for s in ("detect", "align", "embed", "match", "total"))
    )
    for r in results:
        lat = r["latency_ms"]
        cells = "  ".join(
            f"{lat[s]['p50']:>8.2f}/{lat[s]['p95']:<8.2f}"
            for s in ("detect", "align", "embed", "match", "total")
        )
        print(f"{r['threads']:>7} {r['fps']:>7.1f} {r['peak_rss_mb']:>7.0f}  {cells}")
    target = REPO / "bench" / "results" / "daemon_fps.json"
    target.write_text(json.dumps({"command": "python bench/daemon_fps.py", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                  "load_average": os.getloadavg(), "runs": results}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {target} (clip: {results[0]['frames']} frames, {results[0]['faces_seen']} faces)")


if __name__ == "__main__":
    main()
