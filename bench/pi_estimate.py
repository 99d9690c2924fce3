"""An ESTIMATE of the per-stage times on Raspberry Pi 4, Pi 5 and Zero 2 W, until someone
measures on a real Pi. Nothing here ran on a Pi.

The model: a stage that is a neural network takes (its multiply-adds) / (the sustained
multiply-adds per second of one core of that board, for that precision). The sustained
rates come from published single-thread TensorFlow Lite (XNNPACK) latencies of networks
of known size, all from one source measured with one tool (``SOURCES``):

- SSDLite MobileNet v2 300x300, 0.8 G multiply-adds (MobileNetV2 paper, Table 6), TFLite
  2.5: Pi 4 (Cortex-A72, 1.5 GHz) and Pi 3 (Cortex-A53, 1.2 GHz int8; 1.4 GHz float);
- TFLite 2.5 -> 2.18 on the Pi 4 (XNNPACK's int8 kernels improved), and Pi 4 -> Pi 5
  (Cortex-A76, 2.4 GHz), from EfficientDet-Lite0 320x320 measured on both with TFLite
  2.18: the A76 has the dot-product instructions (SDOT/UDOT, Armv8.2), the A72 and A53
  do not, which is why int8 gains more than float from Pi 4 to Pi 5.
- Zero 2 W: the Pi 3's Cortex-A53 scaled by clock to 1.0 GHz (same core), with the Pi 4's
  TFLite 2.5 -> 2.18 gain assumed.

Stages that are not multiply-add bound (dlib's HOG detector and its own ResNet code,
landmarks and face chips, OpenCV's alignCrop) are scaled from their time measured here
by the ratio of this machine's float rate (OpenCV's YuNet and SFace, measured) to the
board's float rate: a rough per-core speed ratio, said so in the report.

Cross-check on this machine: the same "time = multiply-adds / rate" model, with the rate
fitted on one network, predicts the others run by the same runtime (``cross_check``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

SOURCES = {
    "mobilenetv2": "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, "
    "CVPR 2018, Table 6 (SSDLite + MobileNetV2: 0.8 B multiply-adds)",
    "nobuo_tf1": "NobuoTsukamoto/benchmarks, tensorflow/lite/tf1_detection_model_zoo/raspi.md "
    "(TFLite 2.5, XNNPACK, Raspberry Pi OS 64-bit, 1 thread)",
    "nobuo_effdet": "NobuoTsukamoto/benchmarks, tensorflow/lite/efficentdet/efficientdet.md and "
    "results/{RasPi4_64bit,RasPi5}/efficientdet_latency_v2.18.0.txt (1 thread)",
    "dotprod": "Arm: SDOT/UDOT (FEAT_DotProd) are Armv8.2-A (optional in 8.2, mandatory from "
    "8.4); Cortex-A76 implements them, Cortex-A72 and Cortex-A53 (Armv8.0-A) do not",
    "clocks": "Raspberry Pi product briefs: Pi 4 Cortex-A72 1.5 GHz (1.8 GHz on boards from "
    "late 2021), Pi 5 Cortex-A76 2.4 GHz, Zero 2 W Cortex-A53 1.0 GHz",
}

SSDLITE_MACS = 0.8e9
# single-thread latencies, ms
SSDLITE = {"pi4_int8": 168.15, "pi4_fp32": 210.46, "pi3_12_int8": 395.84, "pi3b_14_fp32": 349.29}
EFFDET_PI4_TFL25 = {"int8": 344.03, "fp32": 354.84}
EFFDET_PI4_TFL218 = {"int8": 197.751, "fp32": 328.651}
EFFDET_PI5_TFL218 = {"int8": 44.198, "fp32": 104.012}

BOARDS = {
    "pi4": "Raspberry Pi 4 (Cortex-A72, 1.5 GHz)",
    "pi4_18": "Raspberry Pi 4 (Cortex-A72, 1.8 GHz)",
    "pi5": "Raspberry Pi 5 (Cortex-A76, 2.4 GHz)",
    "zero2w": "Raspberry Pi Zero 2 W (Cortex-A53, 1.0 GHz)",
}


def board_rates() -> dict[str, dict[str, float]]:
    """Sustained multiply-adds per second of one core, int8 and float32, per board."""
    gain = {p: EFFDET_PI4_TFL25[p] / EFFDET_PI4_TFL218[p] for p in ("int8", "fp32")}
    pi4 = {
        "int8": SSDLITE_MACS / (SSDLITE["pi4_int8"] / 1000) * gain["int8"],
        "fp32": SSDLITE_MACS / (SSDLITE["pi4_fp32"] / 1000) * gain["fp32"],
    }
    a53_1ghz = {
        "int8": SSDLITE_MACS / (SSDLITE["pi3_12_int8"] / 1000) / 1.2 * gain["int8"],
        "fp32": SSDLITE_MACS / (SSDLITE["pi3b_14_fp32"] / 1000) / 1.4 * gain["fp32"],
    }
    pi5 = {p: pi4[p] * EFFDET_PI4_TFL218[p] / EFFDET_PI5_TFL218[p] for p in ("int8", "fp32")}
    return {
        "pi4": pi4,
        "pi4_18": {p: v * 1.8 / 1.5 for p, v in pi4.items()},
        "pi5": pi5,
        "zero2w": a53_1ghz,
    }


def onnx_macs(path: Path, width: int | None = None, height: int | None = None) -> int | None:
    """Multiply-adds of the Conv and Gemm nodes of an ONNX graph (weights may come through
    DequantizeLinear), at its declared input size; a fully convolutional graph is scaled
    to ``width`` x ``height`` (padded to multiples of 32, as OpenCV's YuNet does)."""
    try:
        import onnx
        from onnx import shape_inference
    except ImportError:  # the export extra brings it; without it those stages are scaled
        return None

    model = shape_inference.infer_shapes(onnx.load(str(path)))
    graph = model.graph
    shapes: dict[str, list[int]] = {}
    for v in [*graph.value_info, *graph.input, *graph.output]:
        shapes[v.name] = [d.dim_value for d in v.type.tensor_type.shape.dim]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in shapes:
            shapes.setdefault(node.output[0], shapes[node.input[0]])
    total = 0
    for node in graph.node:
        if node.op_type == "Conv":
            w, out = shapes[node.input[1]], shapes[node.output[0]]
            if not all(out[1:]):
                raise ValueError(f"{path}: no shape for {node.output[0]}")
            total += int(np.prod(out[1:])) * w[1] * w[2] * w[3]
        elif node.op_type in ("Gemm", "MatMul"):
            w = shapes[node.input[1]]
            total += w[0] * w[1]
    if width is None or height is None:
        return total
    dims = shapes[graph.input[0].name]
    pad = [math.ceil(v / 32) * 32 for v in (height, width)]
    return round(total * pad[0] * pad[1] / (dims[2] * dims[3]))


def _rate(macs: float, ms: float) -> float:
    return macs / (ms / 1000.0)


def cross_check(stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """On this machine: each network's effective rate, and how well one network's rate
    predicts another's time within the same runtime (measured / predicted)."""
    rates = {k: _rate(s["macs"], s["ms"]) for k, s in stages.items() if s.get("macs")}
    out: dict[str, Any] = {"rates_gmacs": {k: v / 1e9 for k, v in rates.items()}, "pairs": {}}
    keys = sorted(rates)
    for a in keys:
        for b in keys:
            if a < b and stages[a]["runtime"] == stages[b]["runtime"]:
                predicted = stages[b]["macs"] / rates[a] * 1000.0
                out["pairs"][f"{b} from {a}"] = stages[b]["ms"] / predicted
    return out


def stage_rate(rate: dict[str, float], stage: dict[str, Any]) -> float:
    """The board's rate for a stage's precision. Dynamic range (int8 weights, float
    activations) has no published Pi figure: the float rate times the stage's own
    measured speed-up over float32 (``speedup``, from the bundle's build-time timings)."""
    if stage["precision"] == "dynamic":
        return rate["fp32"] * float(stage.get("speedup") or 1.0)
    return rate[stage["precision"]]


def estimate(stages: dict[str, dict[str, Any]], x86_fp32_rate: float) -> dict[str, Any]:
    """Per board and stage, ms. ``stages``: name -> {"ms": measured here, "macs": or None,
    "precision": "int8"/"fp32"/"dynamic" (with "speedup")}; stages without multiply-adds
    are scaled from "ms"."""
    rates = board_rates()
    out: dict[str, Any] = {}
    for board, rate in rates.items():
        per: dict[str, Any] = {}
        for name, s in stages.items():
            if s.get("macs"):
                per[name] = {"ms": s["macs"] / stage_rate(rate, s) * 1000.0, "how": "macs"}
            else:
                per[name] = {"ms": s["ms"] * x86_fp32_rate / rate["fp32"], "how": "scaled"}
        out[board] = per
    return {
        "boards": BOARDS,
        "rates_gmacs": {b: {p: v / 1e9 for p, v in r.items()} for b, r in rates.items()},
        "x86_fp32_gmacs": x86_fp32_rate / 1e9,
        "ms": out,
        "sources": SOURCES,
    }
