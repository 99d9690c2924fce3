"""Where the enrollment gates come from, and what they refuse.

    .venv/bin/python bench/quality.py [--bundle build/bundle-sface]

The sharpness gate (``edge.decision.ENROLL_MIN_SHARPNESS``, the variance of the Laplacian
of the aligned face) is read on what it may be fitted on: the aligned faces of the LFW
``calibrate`` people (data/splits.json) through the bundle's own detector and aligner.
Then the share of faces each gate refuses is reported on the ``report`` people (LFW, and
CFP's near-frontal photos). Prints a table and writes bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import intervals
import numpy as np

from edge.bundle import load_bundle
from edge.decision import ENROLL_MIN_FACE_PX, ENROLL_MIN_SHARPNESS, enrollment_problem
from edge.engine import load_engine
from edge.quality import measure
from model_export.data import data_root, list_images, read_photo
from model_export.faces import nearest_to_centre
from model_export.splits import load

REPO = Path(__file__).resolve().parent.parent


def faces_of(engine, photos: list[Path]) -> list[tuple[float, float]]:  # type: ignore[no-untyped-def]
    """(size, sharpness) of the face nearest the centre of each photo (none: left out)."""
    out = []
    for path in photos:
        image = read_photo(path)
        det = nearest_to_centre(engine.detect(image), image.shape)
        if det is not None:
            q = measure(engine.align(image, det))
            out.append((q.size_px, q.sharpness))
    return out


def figures(found: list[tuple[float, float]]) -> dict[str, object]:
    sharp = np.array([s for _, s in found])
    refused = {
        "too_small": sum(size < ENROLL_MIN_FACE_PX for size, _ in found),
        "too_blurry": sum(
            size >= ENROLL_MIN_FACE_PX and s < ENROLL_MIN_SHARPNESS for size, s in found
        ),
    }
    return {
        "faces": len(found),
        "sharpness": {f"p{q:02d}": float(np.percentile(sharp, q)) for q in (1, 5, 50, 95)},
        "refused": {k: intervals.rate(v, len(found)) for k, v in refused.items()},
    }


def run(bundle_dir: Path) -> dict[str, object]:
    engine = load_engine(load_bundle(bundle_dir))
    root, splits = data_root(), load()
    sets = {
        "calibrate": [p for n in sorted(splits.names("calibrate", "lfw")) for p in list_images(root / "lfw" / n)],
        "report_lfw": [p for n in sorted(splits.names("report", "lfw")) for p in list_images(root / "lfw" / n)],
        "report_cfp": [p for n in sorted(splits.names("report", "cfp"))
                       for p in list_images(root / "cfp" / n) if p.name.startswith("frontal_")],
    }  # fmt: skip
    out: dict[str, object] = {"bundle": str(bundle_dir), "gates": {
        "min_face_px": ENROLL_MIN_FACE_PX, "min_sharpness": ENROLL_MIN_SHARPNESS}}  # fmt: skip
    for name, photos in sets.items():
        out[name] = figures(faces_of(engine, photos))
    assert enrollment_problem is not None  # the gates quoted are the ones enrollment applies
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "build" / "bundle-sface")
    args = parser.parse_args()
    result = run(args.bundle)
    print(
        f"{'set':<12} {'faces':>6} {'p01':>6} {'p05':>6} {'p50':>6} {'too small':>10} {'too blurry':>11}"
    )
    for name in ("calibrate", "report_lfw", "report_cfp"):
        r = result[name]
        assert isinstance(r, dict)
        s, ref = r["sharpness"], r["refused"]
        print(f"{name:<12} {r['faces']:>6} {s['p01']:>6.1f} {s['p05']:>6.1f} {s['p50']:>6.1f} "
              f"{100 * ref['too_small']['rate']:>9.2f}% {100 * ref['too_blurry']['rate']:>10.2f}%")  # fmt: skip
    target = REPO / "bench" / "results" / "quality.json"
    target.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
