"""Detector benchmark: where the bundle's score threshold comes from, and what it gives.

    .venv/bin/python bench/detector.py [--bundle build/bundle-sface]

The threshold (`score_threshold` in the manifest, `model_export.build.DETECTOR`) is
checked on what it may be fitted on: the best face score of each photo of the LFW
``calibrate`` people (data/splits.json) against the best score YuNet gives anything in
the scenes without people (`nonfaces/`, `nonfaces_hard/`). The faces found at that
threshold are then reported on the ``report`` people only. Prints a table and writes
bench/results/detector.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import cv2
import intervals
import numpy as np

from edge.bundle import load_bundle
from edge.detect.yunet import YuNetDetector
from edge.images import read_image
from model_export.data import data_root, list_images
from model_export.splits import load

REPO = Path(__file__).resolve().parent.parent
FLOOR = 0.3  # scores are read from this low, to see how far the threshold is from them


def best_scores(detector: YuNetDetector, photos: list[Path]) -> tuple[list[float], list[float]]:
    """The best face score of each photo (0 when none over FLOOR), and ms per photo."""
    scores, times = [], []
    for path in photos:
        image = read_image(path)
        t0 = time.perf_counter()
        dets = detector.detect(image)
        times.append((time.perf_counter() - t0) * 1000)
        scores.append(max((d.score for d in dets), default=0.0))
    return scores, times


def run(bundle_dir: Path) -> dict[str, object]:
    cv2.setNumThreads(1)
    bundle = load_bundle(bundle_dir)
    spec = bundle.manifest.detector
    detector = YuNetDetector(bundle.path(spec.file), FLOOR, spec.nms_threshold, spec.max_side)
    root, splits = data_root(), load()
    threshold = spec.score_threshold
    out: dict[str, object] = {"detector": bundle.raw["detector"], "threshold": threshold,
                              "machine": platform.processor() or platform.machine()}  # fmt: skip
    sets = {
        role: [
            p
            for name in sorted(splits.names(role, "lfw"))
            for p in list_images(root / "lfw" / name)
        ]
        for role in ("calibrate", "report")
    }
    sets |= {name: list_images(root / name) for name in ("nonfaces", "nonfaces_hard")}
    for name, photos in sets.items():
        scores, times = best_scores(detector, photos)
        found = sum(s >= threshold for s in scores)
        out[name] = {
            "images": len(photos),
            "with_a_face": found,
            "found_rate": found / len(photos),
            "found_ci": intervals.rate(found, len(photos)),
            "score_min": float(min(scores)),
            "score_p01": float(np.percentile(scores, 1)),
            "score_max": float(max(scores)),
            "ms_median": statistics.median(times),
        }
    faces = out["calibrate"]
    scenes = [out["nonfaces"], out["nonfaces_hard"]]
    assert isinstance(faces, dict)
    out["fit"] = {
        "lowest_real_face": faces["score_p01"],
        "highest_non_face": max(float(s["score_max"]) for s in scenes if isinstance(s, dict)),
        "how": "the threshold must sit above every score YuNet gives a scene without people "
        "and below the 1st percentile of the calibrate people's faces",
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "build" / "bundle-sface")
    args = parser.parse_args()
    result = run(args.bundle)
    print(
        f"{'set':<14} {'images':>7} {'found':>7} {'rate':>8} {'min':>6} {'p01':>6} {'max':>6} {'ms':>6}"
    )
    for name in ("calibrate", "report", "nonfaces", "nonfaces_hard"):
        r = result[name]
        assert isinstance(r, dict)
        print(f"{name:<14} {r['images']:>7} {r['with_a_face']:>7} {r['found_rate']:>8.4f} "
              f"{r['score_min']:>6.3f} {r['score_p01']:>6.3f} {r['score_max']:>6.3f} {r['ms_median']:>6.2f}")  # fmt: skip
    print(f"threshold {result['threshold']}: {result['fit']}")
    target = REPO / "bench" / "results" / "detector.json"
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
