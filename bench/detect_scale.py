"""How small a face the detector still finds: the smallest face size (pixels, the box's
shorter side) at which YuNet finds as many calibrate faces as at full size. The daemon
detects on a frame scaled so that a face of ``[camera] min_face`` pixels comes out at
that size (``edge.pipeline.DETECT_FACE_PX``), and aligns on the full-resolution frame.

    .venv/bin/python bench/detect_scale.py [--bundle build/bundle-sface] [--people 300]

Calibrate people of LFW (data/splits.json): each photo's face, found at full size, is
shrunk to each size and pasted on a grey canvas (four times its size); found means a
detection whose box overlaps the shrunk reference box by IoU >= 0.5. Prints a table and
writes bench/results/detect_scale.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SIZES = (10, 12, 14, 16, 18, 20, 24, 28, 32, 40)


def main() -> None:
    from edge.bundle import load_bundle
    from edge.engine import load_engine
    from edge.images import read_image
    from edge.types import BBox
    from model_export import splits
    from model_export.data import data_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "build" / "bundle-sface")
    parser.add_argument("--people", type=int, default=300)
    args = parser.parse_args()
    root = data_root()
    s = splits.load()
    names = sorted(s.names("calibrate", "lfw"))[: args.people]
    photos = [splits.photos(root / "lfw" / n)[0] for n in names]
    s.check(photos, "calibrate", root)
    engine = load_engine(load_bundle(args.bundle), num_threads=1)
    found = {size: 0 for size in SIZES}
    total = 0
    for i, photo in enumerate(photos):
        image = read_image(photo)
        dets = engine.detect(image)
        if not dets:
            continue
        ref = max(dets, key=lambda d: d.box.area).box
        total += 1
        for size in SIZES:
            f = size / ref.short_side
            small = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
            h, w = small.shape[:2]
            canvas = np.full((max(4 * h, 64), max(4 * w, 64), 3), 110, np.uint8)
            oy, ox = (canvas.shape[0] - h) // 2, (canvas.shape[1] - w) // 2
            canvas[oy : oy + h, ox : ox + w] = small
            want = BBox(ref.x1 * f + ox, ref.y1 * f + oy, ref.x2 * f + ox, ref.y2 * f + oy)
            if any(d.box.iou(want) >= 0.5 for d in engine.detect(canvas)):
                found[size] += 1
        if (i + 1) % 100 == 0:
            print(f"  {i + 1}/{len(photos)} photos", flush=True)
    print(f"{'face px':>8} {'found':>12}")
    for size in SIZES:
        print(f"{size:>8} {found[size]:>5}/{total:<5} {100 * found[size] / total:5.1f}%")
    out = REPO / "bench" / "results" / "detect_scale.json"
    out.write_text(json.dumps({"command": "python bench/detect_scale.py", "bundle": str(args.bundle.name),
                               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "people": "calibrate (LFW)", "photos": total,
                               "found": {str(k): v for k, v in found.items()}}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
