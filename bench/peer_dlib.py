"""The peer: face_recognition's own pipeline (dlib HOG -> 5-point landmarks -> ResNet).

Runs inside the benchmark's own venv (build/bench-venv-dlib, made by peer_venv.py), never
in the project's: it imports face_recognition and dlib only, not edge or model_export.
Data goes in and out by files.

  peer_dlib.py versions                              JSON of versions, on stdout
  peer_dlib.py lfw --images LIST --out FILE.npz      every photo: detect, pick, encode
  peer_dlib.py speed --faces FACES.json --out F.json one timed round on known faces

Per photo (``lfw``): ``face_locations(img, 1, "hog")``, the face nearest the image
centre, ``face_encodings(img, [loc], num_jitters=1, model="small")`` ("small" is dlib's
5-point landmark model, the one its ResNet was trained with). Where HOG finds no face, the
median box of the faces it found elsewhere is used (edge-face's fallback), and counted.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from types import ModuleType

import numpy as np

Box = tuple[int, int, int, int]  # face_recognition's css order: (top, right, bottom, left)


def log(message: str) -> None:
    print(f"[peer] {message}", file=sys.stderr, flush=True)


def versions() -> dict[str, object]:
    import dlib

    out: dict[str, object] = {"python": platform.python_version()}
    for dist in ("face_recognition", "face_recognition_models", "dlib-bin", "numpy", "pillow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    out["dlib"] = dlib.__version__
    for flag in ("DLIB_USE_BLAS", "DLIB_USE_LAPACK", "DLIB_USE_CUDA", "USE_AVX_INSTRUCTIONS"):
        out[flag] = bool(getattr(dlib, flag, False))
    return out


def nearest_to_centre(boxes: list[Box], shape: tuple[int, ...]) -> Box:
    cy, cx = shape[0] / 2, shape[1] / 2
    return min(boxes, key=lambda b: ((b[3] + b[1]) / 2 - cx) ** 2 + ((b[0] + b[2]) / 2 - cy) ** 2)


def as_box(values: np.ndarray) -> Box:
    top, right, bottom, left = (int(v) for v in values)
    return top, right, bottom, left


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def encode(fr: ModuleType, image: np.ndarray, box: Box) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    vectors = fr.face_encodings(image, [box], num_jitters=1, model="small")
    return np.asarray(vectors[0], np.float64), ms_since(start)


def run_lfw(images: list[Path], out: Path) -> None:
    import face_recognition as fr

    n = len(images)
    vectors = np.full((n, 128), np.nan)
    boxes = np.zeros((n, 4), np.int64)
    det_ms, enc_ms = np.full(n, np.nan), np.full(n, np.nan)
    found, no_face, unreadable = np.zeros(n, np.int64), np.zeros(n, bool), np.zeros(n, bool)
    pending: list[int] = []
    start = time.perf_counter()
    for i, path in enumerate(images):
        try:
            image = fr.load_image_file(str(path))
        except OSError as exc:
            log(f"unreadable {path}: {exc}")
            unreadable[i] = True
            continue
        t0 = time.perf_counter()
        locations = fr.face_locations(image, number_of_times_to_upsample=1, model="hog")
        det_ms[i], found[i] = ms_since(t0), len(locations)
        if locations:
            boxes[i] = nearest_to_centre(locations, image.shape)
            vectors[i], enc_ms[i] = encode(fr, image, as_box(boxes[i]))
        else:
            pending.append(i)
        if (i + 1) % 200 == 0 or i + 1 == n:
            rate = (i + 1) / (time.perf_counter() - start)
            log(f"{i + 1}/{n} photos, {rate:.1f}/s, about {(n - i - 1) / rate / 60:.1f} min left")
    seen = found > 0
    if pending and seen.any():
        fallback = as_box(np.asarray(np.round(np.median(boxes[seen], axis=0))))
        log(f"{len(pending)} photos without a HOG face: encoded from the median box {fallback}")
        for i in pending:
            image = fr.load_image_file(str(images[i]))
            boxes[i], no_face[i] = fallback, True
            vectors[i], enc_ms[i] = encode(fr, image, fallback)
    elif pending:
        log(f"HOG found no face in any photo: {len(pending)} left out")
        unreadable[pending] = True
    np.savez(
        out,
        paths=np.array([str(p) for p in images]),
        vectors=vectors,
        boxes=boxes,
        faces_found=found,
        no_face=no_face,
        unreadable=unreadable,
        detect_ms=det_ms,
        encode_ms=enc_ms,
    )


def run_speed(faces_file: Path, out: Path, warmup: int) -> None:
    """One round: per face, HOG detection, 5-point landmarks alone, and the encoding with
    the known location (landmarks + chip + ResNet, what face_encodings does)."""
    import face_recognition as fr

    faces = json.loads(faces_file.read_text())
    images = [fr.load_image_file(f["path"]) for f in faces]
    boxes: list[Box] = [tuple(f["box"]) for f in faces]
    for image, box in list(zip(images, boxes, strict=True))[:warmup]:
        fr.face_locations(image, 1, "hog")
        fr.face_encodings(image, [box], 1, "small")
    timing: dict[str, list[float]] = {}

    def timed(key: str, fn: Callable[..., object], *args: object) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        fn(*args)
        timing.setdefault(f"{key}_ms", []).append(ms_since(wall))
        timing.setdefault(f"{key}_cpu_ms", []).append((time.process_time() - cpu) * 1000.0)

    cpu, wall = time.process_time(), time.perf_counter()
    for image, box in zip(images, boxes, strict=True):
        timed("detect", fr.face_locations, image, 1, "hog")
        timed("landmarks", fr.face_landmarks, image, [box], "small")
        timed("encode", fr.face_encodings, image, [box], 1, "small")
    timing["cpu_per_wall"] = [(time.process_time() - cpu) / (time.perf_counter() - wall)]
    out.write_text(json.dumps(timing))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("versions")
    lfw = sub.add_parser("lfw")
    lfw.add_argument("--images", type=Path, required=True, help="a text file, one path a line")
    lfw.add_argument("--out", type=Path, required=True)
    speed = sub.add_parser("speed")
    speed.add_argument("--faces", type=Path, required=True, help='[{"path", "box"}, ...]')
    speed.add_argument("--out", type=Path, required=True)
    speed.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    if args.command == "versions":
        print(json.dumps(versions()))
    elif args.command == "lfw":
        run_lfw([Path(p) for p in args.images.read_text().splitlines() if p], args.out)
    else:
        run_speed(args.faces, args.out, args.warmup)


if __name__ == "__main__":
    main()
