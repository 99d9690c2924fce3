"""edge-face's int8 device path against face_recognition's own dlib pipeline.

Accuracy: the LFW pairs (folds 1-3, 1,800 pairs; the k-fold protocol) through
(A) face_recognition (HOG -> 5-point landmarks -> dlib ResNet, in its own venv) and
(B) edge-face's default bundle (YuNet -> numpy landmarks + chip -> int8 TFLite), with the
float model and mirror averaging as variants. Speed: per face and per photo, interleaved
rounds on the same photos, one thread each.

  .venv/bin/python bench/encoder_vs_dlib.py [--pairs FILE] [--limit-pairs N] [--rounds 5]

Prints two tables and writes bench/results/encoder_vs_dlib.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import shlex
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import peer_venv
import report
import report_data
import speed

from model_export.data import Pair, data_root
from model_export.metrics import accuracy_at, verification_report

REPO = Path(__file__).resolve().parent.parent
PEER_VENV = REPO / "build" / "bench-venv-dlib"
CACHE = REPO / "build" / "bench-cache"
RESULT = REPO / "bench" / "results" / "encoder_vs_dlib.json"
DLIB_TAU = 0.6  # face_recognition's documented tolerance


def limit_pairs(pairs: list[Pair], limit: int | None) -> list[Pair]:
    """About ``limit`` pairs, taken evenly from every fold's same and different pairs."""
    if not limit or limit >= len(pairs):
        return pairs
    groups: dict[tuple[int, bool], list[Pair]] = defaultdict(list)
    for p in pairs:
        groups[(p.fold, p.same)].append(p)
    per_group = max(1, -(-limit // len(groups)))
    return [p for group in groups.values() for p in group[:per_group]]


def shown(path: Path, root: Path) -> str:
    return f"$EDGE_FACE_DATA/{path.relative_to(root)}" if path.is_relative_to(root) else str(path)


def dlib_lfw(python: Path, images: list[Path], fresh: bool) -> tuple[dict[str, Any], bool]:
    """The peer's vectors and timings for every photo (cached by worker, pins and photos)."""
    listing = "\n".join(str(p) for p in images)
    key = hashlib.sha256(
        peer_venv.WORKER.read_bytes()
        + json.dumps([peer_venv.NO_DEPS, peer_venv.PACKAGES]).encode()
        + listing.encode()
    ).hexdigest()[:16]
    out = CACHE / f"dlib-lfw-{key}.npz"
    cached = out.is_file() and not fresh
    if not cached:
        CACHE.mkdir(parents=True, exist_ok=True)
        (CACHE / f"dlib-lfw-{key}.txt").write_text(listing)
        print(f"(A) face_recognition on {len(images)} photos (HOG + dlib ResNet) ...", flush=True)
        part = out.with_name(f"{out.stem}.part.npz")
        peer_venv.run_worker(
            python, "lfw", "--images", str(CACHE / f"dlib-lfw-{key}.txt"), "--out", str(part)
        )
        part.replace(out)
    else:
        print(f"(A) face_recognition: reusing {out.relative_to(REPO)} (--fresh to rerun)")
    with np.load(out) as npz:
        return {k: npz[k] for k in npz.files}, cached


def dlib_figures(run: dict[str, Any], pairs: list[Pair], root: Path) -> dict[str, Any]:
    index = {Path(p): i for i, p in enumerate(run["paths"])}
    ok = ~run["unreadable"]
    usable = [p for p in pairs if ok[index[p.left]] and ok[index[p.right]]]
    a = run["vectors"][[index[p.left] for p in usable]]
    b = run["vectors"][[index[p.right] for p in usable]]
    d = np.linalg.norm(a - b, axis=1)
    same = np.array([p.same for p in usable])
    figures: dict[str, Any] = verification_report(d, same, np.array([p.fold for p in usable]))
    figures["accuracy_at_0.6"] = accuracy_at(d, same, DLIB_TAU)
    figures["no_face"] = {
        "count": int(run["no_face"].sum()),
        "images": [shown(Path(p), root) for p in run["paths"][run["no_face"]]],
        "handling": "encoded from the median HOG box of the set (edge-face's fallback)",
    }
    figures["unreadable"] = int(run["unreadable"].sum())
    det, enc = run["detect_ms"][ok], run["encode_ms"][ok]
    figures["lfw_run_ms"] = {
        "detect_hog_median": float(np.nanmedian(det)),
        "face_encodings_median": float(np.nanmedian(enc)),
        "photos": int(ok.sum()),
    }
    return figures


def edge_figures(bundle_dir: Path, pairs: list[Pair]) -> tuple[Any, dict[str, Any]]:
    from edge.bundle import load_bundle
    from model_export.build import BuildOptions, build, float_model_path
    from model_export.encoders import resolve_encoder
    from model_export.evaluate import evaluate_bundle

    print("(B) edge-face: building or reusing the default bundle ...", flush=True)
    try:
        build(BuildOptions(out=bundle_dir, data_root=data_root(), encoder="dlib"))
    except FileNotFoundError:
        # Two builds of the same cache key share one staging folder; when another process
        # (a test run) finished first, its bundle is in the cache now: take that one.
        print("(B) another build of the same bundle finished first: reusing it", flush=True)
        build(BuildOptions(out=bundle_dir, data_root=data_root(), encoder="dlib"))
    bundle = load_bundle(bundle_dir)
    float_model = float_model_path(resolve_encoder("dlib"))
    print(f"(B) edge-face: LFW through the device path ({len(pairs)} pairs) ...", flush=True)
    return bundle, evaluate_bundle(bundle, pairs, float_model=float_model, num_threads=1)


def timing(
    bundle: Any,
    dlib_run: dict[str, Any],
    edge: dict[str, Any],
    args: argparse.Namespace,
    python: Path,
) -> dict[str, Any]:
    import cv2

    from edge.align import make_aligner
    from edge.detect import make_detector
    from edge.embedder import TFLiteEmbedder
    from edge.engine import FaceEngine

    cv2.setNumThreads(1)  # dlib's HOG is single-threaded; so is the int8 encoder here
    m = bundle.manifest
    embedder = TFLiteEmbedder(bundle.path(m.encoder.file), m.encoder, m.encoder_id, num_threads=1)
    engine = FaceEngine(
        make_detector(m.detector, bundle.root), make_aligner(m.alignment, bundle.root), embedder
    )
    edge_missed = set(edge["no_face"]["images"]) | set(edge["unreadable"])
    candidates = [
        speed.SpeedFace(Path(p), speed.as_box(box))
        for p, box, found in zip(
            dlib_run["paths"], dlib_run["boxes"], dlib_run["faces_found"], strict=True
        )
        if found > 0 and p not in edge_missed
    ]
    faces = speed.pick_faces(candidates, args.speed_faces)
    print(f"speed: {len(faces)} faces, {args.rounds} interleaved rounds (dlib, then edge-face) ...")
    rounds = speed.interleaved(faces, engine, embedder.vector, embedder.raw, python, args.rounds)
    return {"faces": faces, "rounds": rounds, "summary": speed.summarize(rounds)}


def accuracy_rows(
    dlib: dict[str, Any], edge: dict[str, Any], mirror: bool
) -> list[tuple[str, dict[str, Any], str, str]]:
    v, no_edge = edge["variants"], str(edge["no_face"]["count"])
    at06 = f"{100 * dlib['accuracy_at_0.6']:.2f}%"
    return [
        ("dlib: face_recognition (HOG, dlib)", dlib, at06, str(dlib["no_face"]["count"])),
        ("edge-face float", v["float"], "-", no_edge),
        ("edge-face float + mirror", v["float+mirror"], "-", no_edge),
        ("edge-face int8" + ("" if mirror else " (bundle)"), v["int8"], "-", no_edge),
        (
            "edge-face int8 + mirror" + (" (bundle)" if mirror else ""),
            v["int8+mirror"],
            "-",
            no_edge,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs",
        type=Path,
        help="LFW pairs file (default: $EDGE_FACE_DATA/lfw_protocol/pairs_dev.txt)",
    )
    parser.add_argument("--limit-pairs", type=int, help="use about N pairs, spread over folds")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved speed rounds")
    parser.add_argument("--speed-faces", type=int, default=50, help="faces per speed round")
    parser.add_argument(
        "--fresh", action="store_true", help="rerun the dlib LFW pass even if cached"
    )
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started, load_start = time.time(), os.getloadavg()
    root = data_root()
    pairs_file, every = report_data.verification_pairs(root, args.pairs)
    pairs = limit_pairs(every, args.limit_pairs)
    images = sorted({p.left for p in pairs} | {p.right for p in pairs})
    print(f"{len(pairs)} pairs, {len(images)} photos, {len({p.fold for p in pairs})} folds")

    python = peer_venv.ensure_venv(PEER_VENV)
    peer_versions = peer_venv.peer_versions(python)
    bundle, edge = edge_figures(REPO / "build" / "bundle", pairs)
    dlib_run, cached = dlib_lfw(python, images, args.fresh)
    dlib = dlib_figures(dlib_run, pairs, root)
    timed = timing(bundle, dlib_run, edge, args, python)
    mirror = bool(bundle.manifest.encoder.mirror_average)

    edge["no_face"]["images"] = [shown(Path(p), root) for p in edge["no_face"]["images"]]
    edge["unreadable"] = [shown(Path(p), root) for p in edge["unreadable"]]
    acc_table = report.accuracy_table(accuracy_rows(dlib, edge, mirror))
    speed_table = report.speed_table(timed["summary"], mirror)
    result = {
        "benchmark": "encoder_vs_dlib",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([os.path.relpath(sys.executable, REPO), *sys.argv]),
        "duration_s": round(time.time() - started),
        "machine": report.machine() | {"loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "versions": {"edge": report.edge_versions(), "peer": peer_versions},
        "data": {
            "pairs_file": shown(pairs_file, root),
            "pairs": len(pairs),
            "photos": len(images),
            "folds": len({p.fold for p in pairs}),
            "limit_pairs": args.limit_pairs,
        },
        "dlib": dlib
        | {
            "pipeline": f"face_recognition {peer_versions['face_recognition']}: face_locations(img, 1, 'hog'), face nearest the centre, face_encodings(img, [loc], num_jitters=1, model='small')",
            "metric": "euclidean",
            "lfw_pass_cached": cached,
        },
        "edge": {
            "bundle": bundle.raw.get("name"),
            "encoder_id": bundle.manifest.encoder_id,
            "mirror_average": mirror,
            "bundle_tau": bundle.raw.get("tau"),
            **edge,
        },
        "speed": {
            "faces": [shown(f.path, root) for f in timed["faces"]],
            "rounds": timed["rounds"],
            **timed["summary"],
            "threads": "one each: LiteRT num_threads=1, cv2.setNumThreads(1); dlib "
            + ("with" if peer_versions.get("DLIB_USE_BLAS") else "without")
            + " BLAS",
        },
        "tables": {"accuracy": acc_table, "speed": speed_table},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report.rounded(result), indent=1) + "\n")
    print(f"\nLFW {shown(pairs_file, root)}: {len(pairs)} pairs, {len(images)} photos\n")
    print(acc_table + "\n")
    print(speed_table + "\n")
    print(
        f"load average {load_start[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
