"""Float-vs-int8 agreement and the golden distance matrix that guards a bundle.

At build time the float model's embeddings of a fixed set of faces go into the manifest;
``model-export verify`` embeds the same photos with the bundle's int8 encoder through the
device path and compares: per-face cosine, pairwise distance changes, decisions at tau.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.decision import distance

# A bundle fails verification beyond these (int8 vs float; the dlib encoder measured
# cosine >= 0.9992 and distance changes <= 0.028 on 200 held-out faces).
MIN_COSINE = 0.99
MAX_DISTANCE_CHANGE = 0.06


def agreement(
    quantized: NDArray[np.float32], reference: NDArray[np.float32], metric: str, tau: float
) -> dict[str, Any]:
    """How closely the quantized embeddings follow the reference (float) ones."""
    q, r = quantized.astype(np.float64), reference.astype(np.float64)
    cos = (q * r).sum(1) / np.maximum(np.linalg.norm(q, axis=1) * np.linalg.norm(r, axis=1), 1e-12)
    dq, dr = distance(q, q, metric), distance(r, r, metric)
    upper = np.triu_indices(len(q), k=1)
    change = np.abs(dq - dr)[upper]
    flips = int(np.sum((dq[upper] <= tau) != (dr[upper] <= tau)))
    return {
        "faces": len(q),
        "cosine_mean": float(cos.mean()),
        "cosine_min": float(cos.min()),
        "distance_change_mean": float(change.mean()) if change.size else 0.0,
        "distance_change_max": float(change.max()) if change.size else 0.0,
        "decision_flips": flips,
        "pairs": int(change.size),
        "tau": tau,
    }


def failures(result: dict[str, Any]) -> list[str]:
    problems = []
    if result["cosine_min"] < MIN_COSINE:
        problems.append(
            f"cosine between int8 and float embeddings {result['cosine_min']:.4f} < {MIN_COSINE}"
        )
    if result["distance_change_max"] > MAX_DISTANCE_CHANGE:
        problems.append(
            f"a distance moved by {result['distance_change_max']:.4f} > {MAX_DISTANCE_CHANGE} from the golden matrix"
        )
    return problems
