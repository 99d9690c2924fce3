"""``model-export verify``: is this bundle intact, and does its int8 encoder still agree
with the float model it came from?

Checks every file's sha256 (through the device's own loader), embeds the golden faces
with the int8 encoder through the device path and compares with the float embeddings
stored at build time: per-face cosine, the golden distance matrix, decisions at tau.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from edge.align import make_aligner
from edge.bundle import BundleError, load_bundle
from edge.detect import make_detector
from edge.embedder import TFLiteEmbedder
from model_export.faces import crops_for
from model_export.golden import agreement, failures

logger = logging.getLogger(__name__)


def golden_images(record: dict[str, Any], data_root: Path) -> list[Path]:
    root = str(record["root"])
    base = (
        data_root / root.removeprefix("$EDGE_FACE_DATA/")
        if root.startswith("$EDGE_FACE_DATA/")
        else Path(root)
    )
    return [base / name for name in record["images"]]


def verify_bundle(root: Path, data_root: Path) -> dict[str, Any]:
    bundle = load_bundle(root)  # raises BundleError when a file does not match its hash
    record = bundle.raw.get("golden")
    if not record:
        raise BundleError(f"{root}: the manifest has no golden faces to verify against")
    paths = golden_images(record, data_root)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise BundleError(
            f"golden photos not found (set EDGE_FACE_DATA): {missing[0]} and {len(missing) - 1} more"
        )
    m = bundle.manifest
    detector, aligner = make_detector(m.detector, root), make_aligner(m.alignment, root)
    embedder = TFLiteEmbedder(bundle.path(m.encoder.file), m.encoder, m.encoder_id)
    crops = crops_for(paths, detector, aligner, "golden faces")
    vectors = np.stack([embedder.vector(chip) for chip in crops.chips])
    reference = np.asarray(record["embeddings"], np.float32)
    result = agreement(vectors, reference, m.encoder.metric, m.tau.verify)
    problems = failures(result)
    return {"bundle": str(root), "hashes": "ok", "ok": not problems, "problems": problems, **result}
