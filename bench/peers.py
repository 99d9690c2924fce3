"""The systems the suite compares, and how their workers are run.

Each system is a worker script run by a python: edge-face (bench/edge_worker.py, one
per bundle, in the project's venv) and the peers (bench/peer_worker.py, each in its own
venv from peer_venv.py). Every worker runs in its own process with one thread, so that
its peak memory is its own. The vectors of the photo pass are cached in
build/bench-cache/ by everything that shapes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import peer_venv

from model_export.assets import SFACE, YUNET, wheel_asset

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CACHE = REPO / "build" / "bench-cache"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SFACE_COSINE = 0.363  # OpenCV's documented FaceRecognizerSF threshold (FR_COSINE)
DLIB_TOLERANCE = 0.6  # face_recognition's documented tolerance (Euclidean)


@dataclass(frozen=True)
class System:
    key: str  # "edge:<bundle name>", "dlib", "sface"
    label: str
    kind: str  # "edge" or "peer"
    python: Path
    script: Path
    options: dict[str, Any]
    metric: str
    threshold: float  # a distance: smaller is more alike
    threshold_how: str
    pipeline: str
    fingerprint: str  # what shapes its vectors besides the photos (code, models, pins)
    info: dict[str, Any] = field(default_factory=dict)

    def run(self, command: str, *args: str, capture: bool = False) -> str:
        env = os.environ | ONE_THREAD
        cmd = [str(self.python), str(self.script), command, "--system", json.dumps(self.options)]
        done = subprocess.run(
            [*cmd, *args],
            check=True,
            env=env,
            text=True,
            stdout=subprocess.PIPE if capture else None,
        )
        return done.stdout or ""


def _sha(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()[:16]


def _code(*paths: Path) -> bytes:
    return b"".join(p.read_bytes() for p in paths)


def edge_system(bundle_dir: Path) -> System:
    from edge.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    m = bundle.manifest
    sources = [*sorted((REPO / "edge").rglob("*.py")), REPO / "model_export" / "faces.py"]
    fingerprint = _sha(
        _code(BENCH / "edge_worker.py", BENCH / "worker_common.py", *sources),
        json.dumps(m.files, sort_keys=True).encode(),
        (bundle_dir / "manifest.json").read_bytes(),
    )
    mirror = " + mirror" if m.encoder.mirror_average else ""
    return System(
        key=f"edge:{m.name}",
        label=f"edge-face ({m.name})",
        kind="edge",
        python=Path(sys.executable),
        script=BENCH / "edge_worker.py",
        options={"bundle": str(bundle_dir.resolve())},
        metric=m.encoder.metric,
        threshold=float(m.tau.verify),
        threshold_how="the bundle's tau.verify",
        pipeline=f"YuNet (score {m.detector.score_threshold}) -> {m.alignment.type} "
        f"{m.alignment.size}px -> {m.encoder.quantization} encoder{mirror} (LiteRT), "
        f"{m.encoder.metric}",
        fingerprint=fingerprint,
        info={
            "bundle": str(bundle_dir),
            "name": m.name,
            "encoder_id": m.encoder_id,
            "macs": m.encoder.macs,
            "passes": 2 if m.encoder.mirror_average else 1,
            "quantization": m.encoder.quantization,
            "speedup_over_float32": _speedup(bundle.raw, m.encoder.quantization),
            "detector_file": str(bundle.path(m.detector.file)),
            "raw": {k: bundle.raw.get(k) for k in ("encoder", "tau", "identify", "evaluation")},
        },
    )


def _speedup(manifest: dict[str, Any], quantization: str) -> float | None:
    """float32 time / this quantization's time per pass, measured at build time (the
    manifest's quantization candidates), when both were measured."""
    cands = manifest.get("quantization", {}).get("candidates", {})
    try:
        return float(cands["float32"]["ms_per_pass"]) / float(cands[quantization]["ms_per_pass"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def dlib_system() -> System:
    python = peer_venv.ensure_peer(peer_venv.DLIB)
    spec = peer_venv.DLIB.wanted()
    return System(
        key="dlib",
        label="face_recognition (dlib)",
        kind="peer",
        python=python,
        script=peer_venv.PEER_WORKER,
        options={"name": "dlib"},
        metric="euclidean",
        threshold=DLIB_TOLERANCE,
        threshold_how="face_recognition's documented tolerance 0.6",
        pipeline="face_locations(img, 1, 'hog') -> 5-point landmarks + 150px chip -> "
        "dlib ResNet (float, no BLAS), euclidean",
        fingerprint=_sha(
            _code(peer_venv.PEER_WORKER, BENCH / "worker_common.py"), json.dumps(spec).encode()
        ),
        info={"install": peer_venv.install_record(peer_venv.DLIB)},
    )


def sface_system() -> System:
    python = peer_venv.ensure_peer(peer_venv.OPENCV)
    yunet, sface = wheel_asset(YUNET), wheel_asset(SFACE)
    return System(
        key="sface",
        label="OpenCV YuNet + SFace",
        kind="peer",
        python=python,
        script=peer_venv.PEER_WORKER,
        options={"name": "sface", "yunet": str(yunet), "sface": str(sface)},
        metric="cosine",
        threshold=1.0 - SFACE_COSINE,
        threshold_how="OpenCV's documented cosine similarity 0.363 (distance 0.637)",
        pipeline="cv2.FaceDetectorYN (score 0.9) -> FaceRecognizerSF.alignCrop 112px -> "
        "SFace (int8 block-quantized weights, float arithmetic), cosine",
        fingerprint=_sha(
            _code(peer_venv.PEER_WORKER, BENCH / "worker_common.py"),
            json.dumps(peer_venv.OPENCV.wanted()).encode(),
            (YUNET.sha256 + SFACE.sha256).encode(),
        ),
        info={
            "install": peer_venv.install_record(peer_venv.OPENCV),
            "yunet": str(yunet),
            "sface": str(sface),
        },
    )


def embed_photos(system: System, photos: list[Path], fresh: bool) -> tuple[dict[str, Any], bool]:
    """The worker's pass over every photo, cached by the system's fingerprint and the list."""
    listing = "\n".join(str(p) for p in photos)
    key = _sha(system.key.encode(), system.fingerprint.encode(), listing.encode())
    slug = system.key.replace(":", "-")
    out = CACHE / f"{slug}-photos-{key}.npz"
    cached = out.is_file() and not fresh
    if not cached:
        CACHE.mkdir(parents=True, exist_ok=True)
        listing_file = CACHE / f"{slug}-photos-{key}.txt"
        listing_file.write_text(listing)
        part = out.with_name(f"{out.stem}.part.npz")
        t0 = time.perf_counter()
        system.run("embed", "--images", str(listing_file), "--out", str(part))
        part.replace(out)
        print(f"  {system.label}: {len(photos)} photos in {time.perf_counter() - t0:.0f} s")
    else:
        print(f"  {system.label}: reusing {out.relative_to(REPO)} (--fresh to rerun)")
    with np.load(out) as npz:
        return {k: npz[k] for k in npz.files}, cached


def versions(system: System) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(system.run("versions", capture=True))
    return result


def edge_install(fresh: bool = False) -> dict[str, Any]:
    """What installing edge-face's runtime costs: ``pip install .`` (no extras) into a fresh
    venv, timed (download + install, pip cache off) and measured; cached by pyproject.toml."""
    key = _sha((REPO / "pyproject.toml").read_bytes())
    record = CACHE / f"edge-install-{key}.json"
    if record.is_file() and not fresh:
        cached: dict[str, Any] = json.loads(record.read_text())
        return cached
    print("  edge-face: measuring its install (pip install . into a fresh venv) ...", flush=True)
    (REPO / "build").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-edge-install-", dir=REPO / "build") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        bare = peer_venv.du_bytes(venv)
        t0 = time.perf_counter()
        subprocess.run([str(venv / "bin" / "python"), *peer_venv.PIP, str(REPO)], check=True)
        seconds = time.perf_counter() - t0
        shutil.rmtree(venv / "lib" / "__pycache__", ignore_errors=True)
        result = {
            "pip_seconds": round(seconds, 1),
            "added_bytes": peer_venv.du_bytes(venv) - bare,
            "venv_bytes": peer_venv.du_bytes(venv),
            "bare_venv_bytes": bare,
            "how": "pip install . (no extras) into a fresh venv, download + install, pip cache "
            "off; the model bundle (a few MB) is copied separately",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    CACHE.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(result, indent=1))
    return result
