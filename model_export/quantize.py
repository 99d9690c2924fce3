"""Which quantization a bundle ships: chosen for the board it will run on (``--target``),
from a table of what each board's CPU runs fastest, so that the same inputs always give
the same bundle; or, with ``--target here``, by timing on the build machine.

Every candidate (full int8, dynamic range, float16, float32) is converted from the same
Keras model, then measured on held-out aligned faces: agreement with the float model
(cosine of the embeddings, distance changes, decisions flipped at the reference tau) and
latency per face (one thread, interleaved rounds, median; recorded, and used by ``here``).

For a target (:data:`TARGETS`, :func:`choose_for`): the first accurate candidate (rule 1
below) in the target's order of preference, which depends on whether the network has
PReLU activations (:data:`PREFERENCE`). ``here`` keeps the timing rule:

1. a candidate is *accurate* when its embeddings follow the float model's closely
   (cosine mean >= 0.995 and min >= 0.98 over the held-out faces);
2. among accurate candidates the fastest wins, except that one that loads in fewer
   runtimes (dynamic range: ai-edge-litert only) must be at least 25% faster than the
   fastest one that loads in both (a Pi with tflite-runtime 2.14 should not lose the
   bundle for a few percent).

Why not always int8: LiteRT's XNNPACK back-end runs int8 PReLU only on the reference
kernel, so a full-int8 PReLU network (SFace) is slower than its float version; and
full-int8 calibration can bend some embeddings more than a verification threshold allows.
"""

from __future__ import annotations

import functools
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle import EncoderSpec
from edge.embedder import TFLiteEmbedder
from model_export.targets import PREFERENCE, TARGETS

logger = logging.getLogger(__name__)


QUANTIZATIONS = ("int8", "dynamic", "float16", "float32")
BOTH = ("ai-edge-litert", "tflite-runtime 2.14")
RUNTIMES: dict[str, tuple[str, ...]] = {
    "int8": BOTH,
    "dynamic": ("ai-edge-litert",),  # tflite-runtime 2.14's FULLY_CONNECTED is too old
    "float16": BOTH,
    "float32": BOTH,
}
MIN_COSINE_MEAN = 0.995
MIN_COSINE_MIN = 0.98
# Not 1.25: SFace's dynamic range measured 1.26-1.31x float32 on a calm machine and 1.21x
# with another job on the cores, so a 1.25 bar flipped the default bundle with the load.
FEWER_RUNTIMES_SPEEDUP = 1.15
# Timings within this of the fastest are a tie, won by the smallest file: float16 and
# float32 run the same float kernels, and which one measured faster flipped from one
# build to the next (float32 at 18.58 against float16's 18.84 ms), doubling the bundle.
TIE = 1.05
RULE = (
    f"accurate: cosine to float mean >= {MIN_COSINE_MEAN} and min >= {MIN_COSINE_MIN} on the "
    "held-out faces; then the fastest (one thread, median of interleaved rounds); a "
    f"candidate loading in fewer runtimes must be {FEWER_RUNTIMES_SPEEDUP}x faster than the "
    f"fastest loading in both; timings within {TIE}x of the fastest are a tie, won by the "
    "smallest file"
)


@dataclass(frozen=True, slots=True)
class Candidate:
    name: str
    path: Path
    agreement: dict[str, Any]
    ms: float
    size_bytes: int

    @property
    def runtimes(self) -> tuple[str, ...]:
        return RUNTIMES[self.name]

    @property
    def accurate(self) -> bool:
        a = self.agreement
        return bool(a["cosine_mean"] >= MIN_COSINE_MEAN and a["cosine_min"] >= MIN_COSINE_MIN)

    def record(self) -> dict[str, Any]:
        return {
            "ms_per_pass": round(self.ms, 3),
            "size_bytes": self.size_bytes,
            "cosine_mean": round(self.agreement["cosine_mean"], 6),
            "cosine_min": round(self.agreement["cosine_min"], 6),
            "decision_flips": self.agreement["decision_flips"],
            "pairs": self.agreement["pairs"],
            "accurate": self.accurate,
            "runtimes": list(self.runtimes),
        }


def parse_choice(value: str) -> tuple[str, ...]:
    """``auto`` (every candidate) or one quantization name."""
    if value == "auto":
        return QUANTIZATIONS
    if value not in QUANTIZATIONS:
        raise ValueError(
            f"quantization {value!r}: choose auto or one of {', '.join(QUANTIZATIONS)}"
        )
    return (value,)


def time_rounds(
    work: dict[str, Callable[[], object]], rounds: int = 5, calls: int = 8
) -> dict[str, list[float]]:
    """Per name, the median milliseconds of each round; names interleaved round by round
    (a noisy machine slows them alike), after a warm-up of three calls each."""
    per_round: dict[str, list[float]] = {name: [] for name in work}
    for fn in work.values():
        for _ in range(3):
            fn()  # first calls pay for allocation and packing
    for _ in range(rounds):
        for name, fn in work.items():
            times = []
            for _ in range(calls):
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1000)
            per_round[name].append(statistics.median(times))
    return per_round


def time_passes(
    embedders: dict[str, TFLiteEmbedder], chip: np.ndarray, rounds: int = 5, calls: int = 8
) -> dict[str, float]:
    """Median milliseconds per encoder pass, the candidates interleaved round by round."""
    work = {name: functools.partial(emb.raw, chip) for name, emb in embedders.items()}
    return {name: statistics.median(v) for name, v in time_rounds(work, rounds, calls).items()}


def choose(candidates: list[Candidate]) -> Candidate:
    """The candidate the rule picks (the forced one when there is only one)."""
    if len(candidates) == 1:
        return candidates[0]
    accurate = [c for c in candidates if c.accurate] or [
        max(candidates, key=lambda c: c.agreement["cosine_min"])
    ]
    quickest = min(accurate, key=lambda c: c.ms)
    tied = [
        c
        for c in accurate
        if c.ms <= quickest.ms * TIE and set(c.runtimes) >= set(quickest.runtimes)
    ]
    fastest = min(tied, key=lambda c: (c.size_bytes, c.ms))
    broad = [c for c in accurate if set(c.runtimes) >= set(BOTH)]
    if broad and not set(fastest.runtimes) >= set(BOTH):
        best_broad = min(broad, key=lambda c: c.ms)
        if best_broad.ms < fastest.ms * FEWER_RUNTIMES_SPEEDUP:
            return best_broad
    return fastest


def parse_target(value: str) -> str:
    if value not in TARGETS:
        raise ValueError(f"target {value!r}: choose one of {', '.join(TARGETS)}")
    return value


def has_prelu(model: Any) -> bool:
    """Whether a Keras model (or any model nested in it) has a PReLU layer."""
    stack = [model]
    while stack:
        layer = stack.pop()
        if type(layer).__name__ == "PReLU":
            return True
        stack.extend(getattr(layer, "layers", []))
    return False


def target_rule(target: str, prelu: bool) -> str:
    order = " > ".join(PREFERENCE[target][prelu])
    kind = "a PReLU network" if prelu else "no PReLU"
    return (
        f"accurate: cosine to float mean >= {MIN_COSINE_MEAN} and min >= {MIN_COSINE_MIN} on "
        f"the held-out faces; then the first of {order} ({kind}) for {target}: {TARGETS[target]}"
    )


def choose_for(candidates: list[Candidate], target: str, prelu: bool) -> Candidate:
    """The first accurate candidate in the target's order (the most accurate when none
    is); ``here``: the timing rule (:func:`choose`). One candidate: that one."""
    if target == "here" or len(candidates) == 1:
        return choose(candidates)
    accurate = [c for c in candidates if c.accurate] or [
        max(candidates, key=lambda c: c.agreement["cosine_min"])
    ]
    order = PREFERENCE[target][prelu]
    return min(accurate, key=lambda c: order.index(c.name))


def spec_for(spec: EncoderSpec, name: str) -> EncoderSpec:
    return replace(spec, quantization=name)


def table(candidates: list[Candidate], chosen: Candidate) -> str:
    lines = ["  quantization  ms/pass   size MB  cos mean  cos min   runtimes"]
    for c in candidates:
        mark = "*" if c is chosen else " "
        lines.append(
            f"{mark} {c.name:<12} {c.ms:7.2f}  {c.size_bytes / 1e6:8.2f}  "
            f"{c.agreement['cosine_mean']:.5f}  {c.agreement['cosine_min']:.5f}  "
            f"{', '.join(c.runtimes)}{'' if c.accurate else '  (not accurate enough)'}"
        )
    return "\n".join(lines)
