"""The imported SFace bundle against OpenCV's own SFace (cv2.FaceRecognizerSF), side by side.

Both start from the same detection (the bundle's YuNet, the face nearest the centre of
each LFW photo; where none is found, the median detection, as `model-export evaluate`):

- (A) OpenCV: `FaceRecognizerSF.alignCrop` + `feature` (the original ONNX run by OpenCV's
  dnn module, float), cosine similarity; its documented threshold is 0.363.
- (B) edge-face: the bundle's device path (`edge.align.SimilarityAligner` + the bundle's
  TFLite encoder as its manifest says: quantization, mirror averaging, L2).

Reports the LFW pairs figures of both (k-fold accuracy, TAR at FAR 1e-3), the gap, how
closely the embeddings agree per face, and ms per face (one thread, interleaved rounds).

    .venv/bin/python bench/sface_vs_opencv.py [--bundle build/bundle-sface] [--limit-pairs N]

Prints a table and writes bench/results/sface_vs_opencv.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import report

from edge.bundle import load_bundle
from edge.engine import load_engine
from edge.images import read_image
from edge.types import Detection
from model_export.assets import SFACE, wheel_asset
from model_export.data import data_root
from model_export.faces import median_detection, nearest_to_centre
from model_export.metrics import accuracy_at, verification_report
from model_export.splits import protocol_pairs

REPO = Path(__file__).resolve().parent.parent
RESULT = REPO / "bench" / "results" / "sface_vs_opencv.json"
OPENCV_COSINE = 0.363  # cv2.FaceRecognizerSF's documented FR_COSINE threshold


def ensure_bundle(path: Path) -> Path:
    if (path / "manifest.json").is_file():
        return path
    from model_export.build import BuildOptions, build

    print(f"building the SFace bundle into {path} ...", flush=True)
    return build(BuildOptions(out=path, data_root=data_root(), encoder="sface"))


def row_of(det: Detection) -> np.ndarray:
    """A detection as OpenCV's FaceDetectorYN row (x, y, w, h, 5 landmarks, score)."""
    b = det.box
    head = [b.x1, b.y1, b.width, b.height]
    return np.concatenate([head, det.landmarks.ravel(), [det.score]]).astype(np.float32)[None]


def cosine_distances(v: np.ndarray, idx: dict[Path, int], pairs: list[Any]) -> np.ndarray:
    a = v[[idx[p.left] for p in pairs]].astype(np.float64)
    b = v[[idx[p.right] for p in pairs]].astype(np.float64)
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    return 1.0 - (a * b).sum(1) / np.maximum(na * nb, 1e-12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bundle", type=Path, default=REPO / "build" / "bundle-sface")
    ap.add_argument("--limit-pairs", type=int, default=None)
    ap.add_argument("--speed-faces", type=int, default=100)
    ap.add_argument("--out", type=Path, default=RESULT)
    args = ap.parse_args()

    import cv2

    cv2.setNumThreads(1)
    root = data_root()
    pairs = protocol_pairs(root)
    if args.limit_pairs:
        pairs = pairs[:: max(1, len(pairs) // args.limit_pairs)]
    bundle = load_bundle(ensure_bundle(args.bundle))
    m = bundle.manifest
    if m.alignment.type != "similarity":
        sys.exit(f"{args.bundle} is not an SFace-style bundle (alignment {m.alignment.type})")
    engine = load_engine(bundle, num_threads=1)
    sface = cv2.FaceRecognizerSF.create(str(wheel_asset(SFACE)), "")

    images = sorted({p.left for p in pairs} | {p.right for p in pairs})
    found: dict[Path, Detection] = {}
    pending: list[Path] = []
    t0 = time.time()
    for i, path in enumerate(images):
        rgb = read_image(path)
        det = nearest_to_centre(engine.detect(rgb), rgb.shape)
        if det is None:
            pending.append(path)
        else:
            found[path] = det
        if i % 500 == 0:
            print(f"  detecting {i}/{len(images)}", file=sys.stderr, flush=True)
    fallback = median_detection(list(found.values()))
    ours, theirs, ref_chips, our_chips = [], [], [], []
    for i, path in enumerate(images):
        rgb = read_image(path)
        det = found.get(path, fallback)
        face = engine.align(rgb, det)
        chip = face.image
        ours.append(engine.embed([face])[0].vector)
        ref_chip = sface.alignCrop(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), row_of(det))
        theirs.append(sface.feature(ref_chip).ravel().copy())
        if len(ref_chips) < args.speed_faces:
            ref_chips.append(ref_chip)
            our_chips.append(chip)
        if i % 500 == 0:
            print(f"  embedding {i}/{len(images)}", file=sys.stderr, flush=True)
    idx = {p: i for i, p in enumerate(images)}
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    vo, vt = np.stack(ours), np.stack(theirs)
    d_ours, d_theirs = cosine_distances(vo, idx, pairs), cosine_distances(vt, idx, pairs)
    r_ours = verification_report(d_ours, same, folds)
    r_theirs = verification_report(d_theirs, same, folds)
    r_theirs["accuracy_at_documented"] = accuracy_at(d_theirs, same, 1 - OPENCV_COSINE)
    r_ours["accuracy_at_bundle_tau"] = accuracy_at(d_ours, same, m.tau.verify)
    on, tn = (
        vo / np.linalg.norm(vo, axis=1, keepdims=True),
        vt / np.linalg.norm(vt, axis=1, keepdims=True),
    )
    face_cos = (on * tn).sum(1)

    # Speed: the same chips, one thread, interleaved rounds.
    rounds: dict[str, list[float]] = {"opencv": [], "edge-face": []}
    for _ in range(5):
        for name in rounds:
            times = []
            for rc, oc in zip(ref_chips, our_chips, strict=True):
                t = time.perf_counter()
                if name == "opencv":
                    sface.feature(rc)
                else:
                    engine.embedder.vector(oc)
                times.append((time.perf_counter() - t) * 1000)
            rounds[name].append(statistics.median(times))
    speed = {
        k: {"median_ms": statistics.median(v), "min": min(v), "max": max(v)}
        for k, v in rounds.items()
    }
    gap = r_ours["accuracy_mean"] - r_theirs["accuracy_mean"]

    rows = [
        ["OpenCV SFace (cv2.FaceRecognizerSF, float ONNX)", r_theirs, speed["opencv"]],
        [f"edge-face {m.name} (device path)", r_ours, speed["edge-face"]],
    ]
    header = ["system", "LFW acc (k-fold)", "TAR@FAR1e-3", "AUC", "ms/face"]
    body = [
        [
            name,
            f"{r['accuracy_mean'] * 100:.2f} ± {r['accuracy_std'] * 100:.2f}",
            f"{r['tar_at_far'] * 100:.2f}",
            f"{r['auc']:.4f}",
            f"{s['median_ms']:.2f}",
        ]
        for name, r, s in rows
    ]
    print(report.render(header, body))
    print(f"gap (edge-face - OpenCV): {gap * 100:+.2f} pp; OpenCV at its documented 0.363: "
          f"{r_theirs['accuracy_at_documented'] * 100:.2f}%")  # fmt: skip
    print(
        f"per-face cosine, edge-face vs OpenCV: mean {face_cos.mean():.5f}, min {face_cos.min():.5f}"
    )
    result = {
        "benchmark": "sface_vs_opencv",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python bench/sface_vs_opencv.py" + (f" --limit-pairs {args.limit_pairs}" if args.limit_pairs else ""),
        "machine": report.machine(),
        "versions": report.edge_versions(),
        "bundle": {"name": m.name, "encoder_id": m.encoder_id, "quantization": m.encoder.quantization,
                   "mirror_average": m.encoder.mirror_average, "tau_verify": m.tau.verify},
        "pairs": len(pairs),
        "photos": len(images),
        "no_face": len(pending),
        "opencv": r_theirs,
        "edge_face": r_ours,
        "gap_pp": gap * 100,
        "face_cosine": {"mean": float(face_cos.mean()), "min": float(face_cos.min()),
                        "p01": float(np.percentile(face_cos, 1))},
        "speed_ms_per_face": speed,
        "speed_note": "one thread; edge-face's figure includes mirror averaging when the bundle uses it",
        "seconds": time.time() - t0,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report.rounded(result), indent=1) + "\n")
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")


if __name__ == "__main__":
    main()
