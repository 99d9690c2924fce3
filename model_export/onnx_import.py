"""Rebuild an ONNX face-encoder graph as a float Keras 3 model.

The project's TFLite converter (``model_export.export``) quantizes Keras models, so
an ONNX encoder (e.g. OpenCV zoo's SFace) is imported by rebuilding its graph layer
by layer in Keras, with the weights copied over. The importer is generic but small:
it covers the ops of MobileNet/ResNet-style encoders and refuses anything else with
a clear :class:`OnnxImportError`.

Design, one module per step:

1. ``model_export.onnx_graph`` reads the graph: its one real input (4-D NCHW, static
   C/H/W, float32) and one 2-D output (N, D), every constant folded in numpy
   (block-quantized weights become plain float weights), ``Identity``/``Dropout`` as
   aliases, the remaining nodes in topological order with their consumers.
2. ``model_export.onnx_keras`` holds the Keras graph while it is built: NHWC
   throughout (the model takes (None, H, W, C) float32 with exactly the values the ONNX
   graph takes in NCHW), and the one custom layer, ``OnnxConstOp``.
3. ``model_export.onnx_layers`` maps each ONNX op to Keras layers: built-in ones wherever
   one fits, batch norms folded into the convolution or dense layer before them,
   explicit padding as ``"same"`` or ``ZeroPadding2D``, a flatten's CHW order kept by
   permuting the next Dense layer's rows. Layers are named after the ONNX nodes.
4. This module walks the nodes in order through those and checks the output.

Heavy imports (onnx, keras, tensorflow) happen inside the functions, so importing this
module is cheap.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from model_export.onnx_graph import (
    OnnxEncoderInfo,
    OnnxGraph,
    OnnxImportError,
    analyse,
    inspect_onnx,
    load,
    op_name,
)
from model_export.onnx_keras import KerasGraph, Value
from model_export.onnx_layers import LAYERS

if TYPE_CHECKING:
    import keras

__all__ = ["OnnxEncoderInfo", "OnnxImportError", "inspect_onnx", "keras_from_onnx"]

log = logging.getLogger(__name__)


def _build(g: OnnxGraph, model_name: str) -> tuple[keras.Model, KerasGraph]:
    """Walk the dynamic nodes in order, adding each one's layers; the Keras model."""
    kg = KerasGraph(g)
    keras = kg.k
    c, h, w = g.input_chw
    name = kg.unique(g.input_name, "input")
    inp = keras.Input(shape=(h, w, c), dtype="float32", name=name)
    kg.values[g.input_name] = Value(inp, "nhwc")
    for k, node in enumerate(g.nodes):
        if k in kg.absorbed:
            continue
        op = op_name(node)
        layer = LAYERS.get(op)
        if layer is None:
            raise OnnxImportError(
                f"{g.path.name}: unsupported ONNX op {op} (node {node.name or node.output[0]});"
                f" supported: {', '.join(sorted(LAYERS))}"
            )
        layer(kg, node)
    out = kg.values[g.output_name]
    if out.kind != "flat":
        raise OnnxImportError(
            f"{g.path.name}: the output {g.output_name} must be (N, D), it is {out.onnx_shape()}"
        )
    return keras.Model(inp, out.tensor, name=model_name), kg


def keras_from_onnx(path: Path) -> keras.Model:
    """Rebuild the ONNX encoder at ``path`` as a float Keras model (NHWC in, (N, D) out)."""
    path = Path(path)
    model = load(path)
    graph = analyse(path, model)
    name = re.sub(r"[^0-9A-Za-z_]", "_", path.stem).strip("_") or "onnx_encoder"
    keras_model, kg = _build(graph, name)
    log.info(
        "%s: %d nodes (%d constant-folded, %d batch norms folded) -> %d Keras layers",
        path.name,
        len(model.graph.node),
        graph.folded,
        kg.bn_folded,
        len(keras_model.layers),
    )
    return keras_model
