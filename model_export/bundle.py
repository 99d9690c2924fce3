"""Writing model bundles, and the build cache keyed by the hashes of every input."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from edge.bundle import FORMAT_VERSION, MANIFEST, load_bundle, sha256_file

logger = logging.getLogger(__name__)

# The modules whose code decides a bundle's content: a change to any of them is a new key.
_CODE = [
    "edge/align.py",
    "edge/boxmap.py",
    "edge/chip.py",
    "edge/landmarks.py",
    "edge/embedder.py",
    "edge/detect/yunet.py",
    "edge/images.py",
    "edge/bundle.py",
    "model_export/boxmap.json",
    "model_export/build.py",
    "model_export/bundle.py",
    "model_export/calibration.py",
    "model_export/dlib_arch.py",
    "model_export/dlib_import.py",
    "model_export/dlib_serialize.py",
    "model_export/encoders.py",
    "model_export/evaluate.py",
    "model_export/export.py",
    "model_export/faces.py",
    "model_export/golden.py",
    "model_export/impostors.py",
    "edge/matcher.py",
    "edge/engine.py",
    "model_export/keras_models.py",
    "model_export/landmark_import.py",
    "model_export/metrics.py",
    "model_export/onnx_import.py",
    "model_export/quantize.py",
    "edge/tflite.py",
]


def code_hash() -> str:
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for name in _CODE:
        path = root / name
        digest.update(name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"(missing)")
    return digest.hexdigest()


def cache_key(parts: dict[str, Any], files: Iterable[Path]) -> str:
    """A key from the options, the code, and the content of every input file."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    digest.update(code_hash().encode())
    for path in files:
        digest.update(str(path.name).encode())
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()[:24]


def finish_bundle(staging: Path, manifest: dict[str, Any], encoder_file: str) -> None:
    """Hash every file, derive the encoder id, write manifest.json (atomically)."""
    files = {
        p.name: sha256_file(p)
        for p in sorted(staging.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {
        "format": FORMAT_VERSION,
        **manifest,
        "encoder_id": f"{manifest['name']}-{files[encoder_file][:16]}",
        "files": files,
    }
    tmp = staging / f"{MANIFEST}.part"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(staging / MANIFEST)


def publish(cached: Path, out: Path) -> Path:
    """Copy a finished bundle from the cache to ``out`` (replacing an old bundle there)."""
    load_bundle(cached)  # never hand out a bundle that does not verify
    if out.resolve() == cached.resolve():
        return out
    if out.exists():
        if not (out / MANIFEST).is_file() and any(out.iterdir()):
            raise FileExistsError(f"{out} exists and is not a model bundle: choose another --out")
        shutil.rmtree(out)
    shutil.copytree(cached, out)
    return out
