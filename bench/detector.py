"""Detector benchmark: faces found on LFW, false faces on scenes without people, and
milliseconds per image, for the bundle's detector (YuNet).

    .venv/bin/python bench/detector.py [--bundle build/bundle]

Prints a table and writes bench/results/detector.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import cv2

from edge.bundle import load_bundle
from edge.detect import make_detector
from edge.images import read_image
from model_export.data import data_root, list_images

REPO = Path(__file__).resolve().parent.parent


def run(bundle_dir: Path) -> dict[str, object]:
    cv2.setNumThreads(1)
    bundle = load_bundle(bundle_dir)
    detector = make_detector(bundle.manifest.detector, bundle.root)
    root = data_root()
    out: dict[str, object] = {
        "detector": bundle.raw["detector"],
        "machine": platform.processor() or platform.machine(),
    }
    for name in ("lfw", "nonfaces", "nonfaces_hard"):
        photos = list_images(root / name)
        counts, times = [], []
        for path in photos:
            image = read_image(path)
            t0 = time.perf_counter()
            counts.append(len(detector.detect(image)))
            times.append((time.perf_counter() - t0) * 1000)
        out[name] = {
            "images": len(photos),
            "with_a_face": sum(c > 0 for c in counts),
            "faces": sum(counts),
            "found_rate": sum(c > 0 for c in counts) / len(photos),
            "ms_median": statistics.median(times),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "build" / "bundle")
    args = parser.parse_args()
    result = run(args.bundle)
    print(f"{'set':<14} {'images':>7} {'with a face':>12} {'faces':>6} {'rate':>8} {'ms/img':>7}")
    for name in ("lfw", "nonfaces", "nonfaces_hard"):
        r = result[name]
        assert isinstance(r, dict)
        print(
            f"{name:<14} {r['images']:>7} {r['with_a_face']:>12} {r['faces']:>6} {r['found_rate']:>8.4f} {r['ms_median']:>7.2f}"
        )
    target = REPO / "bench" / "results" / "detector.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
