"""The Keras graph an ONNX encoder is rebuilt into, while it is built: each ONNX tensor's
Keras tensor (:class:`Value`), the layer names, the batch norms folded away, and the one
custom layer (``OnnxConstOp``). ``model_export.onnx_layers`` adds the layers.

Layout: the Keras model is NHWC: it takes (None, H, W, C) float32 with exactly the values
the ONNX graph takes in NCHW, so no transpose is needed at the input. 4-D tensors are
NHWC throughout (``nhwc``); 2-D ones are in ONNX order (``flat``), or the flatten of an
NCHW tensor held in HWC order (``flat_hwc``, which feeds Dense layers only).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from model_export.onnx_graph import OUTPUT, OnnxGraph, OnnxImportError, node_attrs, op_name

if TYPE_CHECKING:
    import onnx


@functools.cache
def const_op_class() -> type:
    """The one custom layer: an elementwise op between a tensor and a stored constant."""
    import keras

    @keras.saving.register_keras_serializable(package="edge_face_onnx")
    class OnnxConstOp(keras.layers.Layer):
        """``op(x, c)`` (or ``op(c, x)``) with ``c`` a non-trainable weight; op is one of
        add, subtract, multiply, divide, maximum, minimum (TFLite builtins)."""

        OPS = ("add", "subtract", "multiply", "divide", "maximum", "minimum")

        def __init__(
            self,
            op: str,
            const_shape: Sequence[int] = (),
            const_first: bool = False,
            **kwargs: Any,
        ) -> None:
            super().__init__(**kwargs)
            if op not in self.OPS:
                raise ValueError(f"OnnxConstOp: unknown op {op}")
            self.op = op
            self.const_shape = tuple(int(d) for d in const_shape)
            self.const_first = bool(const_first)

        def build(self, input_shape: tuple[int | None, ...]) -> None:
            self.constant = self.add_weight(
                name="constant", shape=self.const_shape, initializer="zeros", trainable=False
            )

        def call(self, x: Any) -> Any:
            fn = getattr(keras.ops, self.op)
            return fn(self.constant, x) if self.const_first else fn(x, self.constant)

        def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple:
            rank = max(len(input_shape), len(self.const_shape))
            a = (1,) * (rank - len(input_shape)) + tuple(input_shape)
            b = (1,) * (rank - len(self.const_shape)) + self.const_shape
            return tuple(x if y == 1 else y for x, y in zip(a, b, strict=True))

        def get_config(self) -> dict[str, Any]:
            return {
                **super().get_config(),
                "op": self.op,
                "const_shape": list(self.const_shape),
                "const_first": self.const_first,
            }

    return OnnxConstOp


Kind = Literal["nhwc", "flat", "flat_hwc"]


@dataclass
class Value:
    """A Keras tensor standing for an ONNX tensor.

    nhwc: 4-D, ONNX NCHW held as NHWC; flat: 2-D in ONNX order; flat_hwc: 2-D, the
    flatten of an NCHW tensor (C, H, W) = ``chw`` held in HWC order (feeds Dense only).
    """

    tensor: Any
    kind: Kind
    chw: tuple[int, int, int] | None = None

    def onnx_shape(self) -> list[int]:
        shape = [1 if d is None else int(d) for d in self.tensor.shape]
        if self.kind == "nhwc":
            n, h, w, c = shape
            return [n, c, h, w]
        return shape


class KerasGraph:
    """The Keras functional graph under construction, from the folded ONNX graph."""

    def __init__(self, g: OnnxGraph) -> None:
        import keras

        self.k = keras
        self.g = g
        self.const = g.constants
        self.values: dict[str, Value] = {}
        self.absorbed: set[int] = set()
        self.names: set[str] = set()
        self.bn_folded = 0

    # -- helpers

    def fail(self, node: onnx.NodeProto, why: str) -> OnnxImportError:
        return OnnxImportError(
            f"{self.g.path.name}: node {node.name or node.output[0]} ({op_name(node)}): {why}"
        )

    def name(self, node: onnx.NodeProto, suffix: str = "") -> str:
        """A unique Keras layer name after the ONNX node's name (or its output's)."""
        return self.unique(node.name or node.output[0], node.op_type.lower(), suffix)

    def unique(self, raw: str, fallback: str, suffix: str = "") -> str:
        # TF name scopes may not start with "_" and Keras refuses "/"
        base = re.sub(r"[^0-9A-Za-z_.-]", "_", raw).lstrip("_.-")
        base = (base or fallback) + suffix
        name, n = base, 1
        while name in self.names:
            n += 1
            name = f"{base}_{n}"
        self.names.add(name)
        return name

    def value(self, node: onnx.NodeProto, i: int, *kinds: Kind) -> Value:
        name = node.input[i]
        if name in self.const:
            raise self.fail(node, f"input {i} ({name}) must depend on the graph input")
        v = self.values[name]
        if kinds and v.kind not in kinds:
            raise self.fail(node, f"needs a {' or '.join(kinds)} input, got {v.kind}")
        return v

    def constant(self, node: onnx.NodeProto, i: int) -> np.ndarray | None:
        if len(node.input) <= i or not node.input[i]:
            return None
        name = node.input[i]
        if name not in self.const:
            raise self.fail(node, f"input {i} ({name}) must be a constant")
        return self.const[name]

    def set(self, node: onnx.NodeProto, tensor: Any, kind: Kind, **kw: Any) -> None:
        self.values[node.output[0]] = Value(tensor, kind, **kw)

    def only_consumer(self, node: onnx.NodeProto) -> tuple[int, onnx.NodeProto] | None:
        uses = self.g.consumers.get(node.output[0], [])
        if len(uses) != 1 or uses[0][0] == OUTPUT or uses[0][1] != 0:
            return None
        k = uses[0][0]
        return k, self.g.nodes[k]

    def absorb_bn(self, node: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray, str] | None:
        """(scale, shift, output name) of a BatchNormalization to fold into ``node``."""
        found = self.only_consumer(node)
        if found is None or found[1].op_type != "BatchNormalization":
            return None
        k, bn = found
        params = [self.const.get(name) for name in bn.input[1:5]]
        attrs = node_attrs(bn)
        if any(p is None for p in params) or attrs.get("training_mode", 0):
            return None
        gamma, beta, mean, var = (np.asarray(p, dtype=np.float64) for p in params)
        scale = gamma / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
        self.absorbed.add(k)
        self.bn_folded += 1
        return scale, beta - mean * scale, bn.output[0]
