"""``model-export evaluate``: the LFW protocol through the device's own code path.

Each photo goes through the bundle's detector, aligner and TFLite encoder (the same
classes the daemon uses); pairs are scored by the bundle's metric; accuracy is the
k-fold protocol (tau chosen on the other folds), and ``tau`` is chosen on all folds.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from edge.align import make_aligner
from edge.bundle import Bundle, EncoderSpec
from edge.detect import make_detector
from edge.embedder import TFLiteEmbedder
from model_export.data import Pair
from model_export.faces import Crops, crops_for
from model_export.metrics import verification_report

logger = logging.getLogger(__name__)


def embed_chips(
    embedder: TFLiteEmbedder, chips: NDArray[np.uint8], desc: str
) -> dict[str, NDArray[np.float32]]:
    """Raw embeddings of every chip and of its mirror image (post-processing is separate)."""
    plain, mirror = [], []
    for chip in tqdm(chips, desc=desc, unit="face", leave=False, mininterval=2):
        plain.append(embedder.raw(chip))
        mirror.append(embedder.raw(np.ascontiguousarray(chip[:, ::-1])))
    return {"plain": np.stack(plain), "mirror": np.stack(mirror)}


def postprocess(
    raw: dict[str, NDArray[np.float32]], spec: EncoderSpec, mirror: bool
) -> NDArray[np.float32]:
    v = (raw["plain"] + raw["mirror"]) / 2 if mirror else raw["plain"]
    if spec.l2_normalize:
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return v.astype(np.float32)


def pair_distances(
    vectors: NDArray[np.float32], index: dict[Path, int], pairs: list[Pair], metric: str
) -> NDArray[np.float64]:
    a = vectors[[index[p.left] for p in pairs]].astype(np.float64)
    b = vectors[[index[p.right] for p in pairs]].astype(np.float64)
    if metric == "cosine":
        cos = (a * b).sum(1) / np.maximum(
            np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12
        )
        return 1.0 - cos
    return np.linalg.norm(a - b, axis=1)


def pair_crops(bundle: Bundle, pairs: list[Pair]) -> Crops:
    m = bundle.manifest
    images = sorted({p.left for p in pairs} | {p.right for p in pairs})
    detector = make_detector(m.detector, bundle.root)
    aligner = make_aligner(m.alignment, bundle.root)
    return crops_for(images, detector, aligner, desc="align pair photos")


def score_variants(
    crops: Crops, pairs: list[Pair], embedders: dict[str, TFLiteEmbedder], spec: EncoderSpec
) -> dict[str, dict[str, Any]]:
    """Figures for each encoder (e.g. int8, float), with and without mirror averaging."""
    index = {p: i for i, p in enumerate(crops.paths)}
    usable = [p for p in pairs if p.left in index and p.right in index]
    same = np.array([p.same for p in usable])
    folds = np.array([p.fold for p in usable])
    out: dict[str, dict[str, Any]] = {}
    for name, embedder in embedders.items():
        raw = embed_chips(embedder, crops.chips, desc=f"embed ({name})")
        for mirror in (False, True):
            vectors = postprocess(raw, spec, mirror)
            d = pair_distances(vectors, index, usable, spec.metric)
            key = f"{name}{'+mirror' if mirror else ''}"
            out[key] = verification_report(d, same, folds)
    return out


def evaluate_bundle(
    bundle: Bundle, pairs: list[Pair], float_model: Path | None = None, num_threads: int = 1
) -> dict[str, Any]:
    """The report ``model-export evaluate`` prints and writes (see the module doc)."""
    m = bundle.manifest
    crops = pair_crops(bundle, pairs)
    q = m.encoder.quantization  # the bundle's own encoder's variants are named after it
    embedders = {
        q: TFLiteEmbedder(bundle.path(m.encoder.file), m.encoder, m.encoder_id, num_threads)
    }
    if float_model is not None:
        spec = replace(m.encoder, quantization="float32")
        embedders["float"] = TFLiteEmbedder(float_model, spec, m.encoder_id, num_threads)
    variants = score_variants(crops, pairs, embedders, m.encoder)
    chosen = f"{q}+mirror" if m.encoder.mirror_average else q
    report: dict[str, Any] = dict(variants[chosen])
    report["model"] = chosen
    report["metric"] = m.encoder.metric
    report["no_face"] = {
        "count": len(crops.no_face),
        "images": [str(p) for p in crops.no_face],
        "handling": "aligned from the median detection of the set (LFW photos are centred)",
    }
    report["unreadable"] = [str(p) for p in crops.unreadable]
    report["variants"] = variants
    return report
