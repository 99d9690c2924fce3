"""Rebuild an ONNX face-encoder graph as a float Keras 3 model.

The project's TFLite converter (``model_export.export``) quantizes Keras models, so
an ONNX encoder (e.g. OpenCV zoo's SFace) is imported by rebuilding its graph layer
by layer in Keras, with the weights copied over. The importer is generic but small:
it covers the ops of MobileNet/ResNet-style encoders and refuses anything else with
a clear :class:`OnnxImportError`.

Design
------
1. **Constants.** Initializers and ``Constant`` nodes are constants; every node whose
   inputs are all constants is folded in numpy (``DequantizeLinear`` per-tensor,
   per-axis and blocked (opset 21 ``block_size``), ``Reshape``, ``Identity``,
   ``Transpose``, ``Cast``, ``Squeeze``, ``Unsqueeze``, ``Concat``, ``Flatten``,
   ``Shape`` and elementwise arithmetic). So block-quantized weights become plain
   float weights of the Keras layers.
2. **Inputs/outputs.** Graph inputs that are initializers, or that no node reads (the
   SFace file lists 29 such dangling inputs), are ignored. Exactly one real input
   (4-D NCHW, static C/H/W, float32) and exactly one 2-D output (N, D) are required.
3. **Layout.** The Keras model is NHWC: it takes (None, H, W, C) float32 with exactly
   the values the ONNX graph takes in NCHW, so no transpose is needed at the input.
   4-D tensors are NHWC throughout; NCHW-shaped constants (``(C, 1, 1)``,
   ``(1, C, 1, 1)``) are broadcast-aligned and transposed to NHWC. ``Flatten`` (or a
   ``Reshape`` to (N, -1)) of a 4-D tensor must give the ONNX (CHW) order: when the
   flattened tensor only feeds Dense layers with constant weights, their weight rows
   are permuted from CHW to HWC order instead (no transpose op on the device);
   otherwise a ``Permute`` to channels-first is inserted before ``Flatten``.
4. **Foldings.** ``Identity``/``Dropout`` are aliases. A ``BatchNormalization`` whose
   input is a ``Conv``/``Gemm``/``MatMul`` output read by nothing else is folded into
   that layer's kernel and bias; any other one becomes a Keras ``BatchNormalization``
   (an inference-time per-channel affine on the last axis). Division by a constant
   becomes multiplication by its reciprocal.
5. **Layers.** Built-in Keras layers wherever one fits (Conv2D, DepthwiseConv2D,
   ZeroPadding2D, Dense, PReLU, ReLU, ...); elementwise ops with a constant operand use
   the small ``OnnxConstOp`` layer (a non-trainable constant weight + one
   ``keras.ops`` call), which converts to TFLite builtins (ADD/SUB/MUL/DIV/MAXIMUM/
   MINIMUM). Explicit conv padding equal to TF's SAME padding for that input size
   becomes ``padding="same"``; other padding becomes ``ZeroPadding2D`` (asymmetric
   allowed) + ``"valid"``. Layers are named after the ONNX nodes.

Heavy imports (onnx, keras, tensorflow) happen inside the functions, so importing this
module is cheap.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from edge.errors import EdgeError

if TYPE_CHECKING:
    import keras
    import onnx

__all__ = ["OnnxEncoderInfo", "OnnxImportError", "inspect_onnx", "keras_from_onnx"]

log = logging.getLogger(__name__)

_ONNX_FLOAT = 1  # onnx.TensorProto.FLOAT
_OUTPUT = -1  # consumer index standing for "graph output"


class OnnxImportError(EdgeError):
    """The ONNX file cannot be read or holds something the importer does not support."""


@dataclass(frozen=True)
class OnnxEncoderInfo:
    """What an encoder graph takes and gives, read from the ONNX file alone."""

    input_name: str
    channels: int
    height: int
    width: int
    embedding_size: int
    ops: dict[str, int]  # op_type -> number of nodes (all nodes, constant ones included)


# --------------------------------------------------------------------------- loading


def _load(path: Path) -> onnx.ModelProto:
    import onnx

    path = Path(path)
    if not path.is_file():
        raise OnnxImportError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError, RuntimeError for external data, ...
        raise OnnxImportError(
            f"{path.name}: not an ONNX model ({type(exc).__name__}: {exc})"
        ) from exc
    if not model.graph.node or not model.opset_import:
        raise OnnxImportError(f"{path.name}: not an ONNX model (no graph nodes or no opset)")
    return model


def _dims(value_info: onnx.ValueInfoProto) -> list[int | None]:
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]


def _real_input(path: Path, model: onnx.ModelProto) -> tuple[str, int, int, int]:
    """The one graph input that is fed at run time: (name, C, H, W)."""
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    used = {name for node in graph.node for name in node.input}
    real = [i for i in graph.input if i.name not in initializers and i.name in used]
    ignored = [i.name for i in graph.input if i.name not in initializers and i.name not in used]
    if ignored:
        log.debug("%s: ignoring %d graph inputs no node reads", path.name, len(ignored))
    if len(real) != 1:
        names = ", ".join(i.name for i in real) or "none"
        raise OnnxImportError(
            f"{path.name}: an encoder graph must have exactly one input, found {len(real)} "
            f"({names})"
        )
    inp = real[0]
    dims = _dims(inp)
    if inp.type.tensor_type.elem_type != _ONNX_FLOAT:
        raise OnnxImportError(f"{path.name}: input {inp.name} must be float32")
    if len(dims) != 4 or any(d is None or d <= 0 for d in dims[1:]):
        raise OnnxImportError(
            f"{path.name}: input {inp.name} must be 4-D NCHW with static C, H, W; has shape "
            f"{['?' if d is None else d for d in dims]}"
        )
    _, c, h, w = dims
    assert c is not None and h is not None and w is not None
    return inp.name, c, h, w


def _one_output(path: Path, model: onnx.ModelProto) -> onnx.ValueInfoProto:
    outputs = list(model.graph.output)
    if len(outputs) != 1:
        raise OnnxImportError(
            f"{path.name}: an encoder graph must have exactly one output, found {len(outputs)}"
        )
    return outputs[0]


def inspect_onnx(path: Path) -> OnnxEncoderInfo:
    """Input name and shape, embedding size and op counts of an ONNX encoder (onnx only)."""
    import onnx

    path = Path(path)
    model = _load(path)
    name, c, h, w = _real_input(path, model)
    output = _one_output(path, model)
    dims = _dims(output)
    if len(dims) != 2 or dims[1] is None:
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
            dims = next((_dims(o) for o in inferred.graph.output if o.name == output.name), dims)
        except Exception as exc:  # shape inference is best effort
            log.debug("%s: shape inference failed: %s", path.name, exc)
    if len(dims) != 2 or dims[1] is None:
        raise OnnxImportError(
            f"{path.name}: output {output.name} must be (N, D) with a static D; has shape "
            f"{['?' if d is None else d for d in dims]}"
        )
    ops = dict(Counter(_op_name(n) for n in model.graph.node))
    return OnnxEncoderInfo(name, c, h, w, int(dims[1]), ops)


# ------------------------------------------------------------------ constant folding


class _NotFoldableError(Exception):
    """The op has no numpy implementation here."""


def _op_name(node: onnx.NodeProto) -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _constant_value(node: onnx.NodeProto) -> np.ndarray:
    from onnx import numpy_helper

    attrs = _attrs(node)
    if "value" in attrs:
        return np.asarray(numpy_helper.to_array(attrs["value"]))
    for key, dtype in (
        ("value_float", np.float32),
        ("value_floats", np.float32),
        ("value_int", np.int64),
        ("value_ints", np.int64),
    ):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise ValueError(f"Constant with attributes {sorted(attrs)} is not supported")


def _dequantize(
    x: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, attrs: dict[str, Any]
) -> np.ndarray:
    """ONNX DequantizeLinear: (x - zero_point) * scale, per-tensor, per-axis or blocked."""
    zero = np.zeros_like(scale, dtype=np.int32) if zero is None else zero
    axis = int(attrs.get("axis", 1))
    block = int(attrs.get("block_size", 0))
    if block == 0 and scale.size == 1 and scale.ndim <= 1:  # per tensor
        s, z = scale.reshape(()), zero.reshape(())
    else:
        ax = axis % x.ndim
        if block == 0:  # per axis
            if scale.shape != (x.shape[ax],):
                raise ValueError(f"per-axis scale shape {scale.shape} for input {x.shape}")
            shape = [1] * x.ndim
            shape[ax] = -1
            s, z = scale.reshape(shape), zero.reshape(shape)
        else:  # blocked along axis
            want = list(x.shape)
            want[ax] = math.ceil(x.shape[ax] / block)
            if list(scale.shape) != want:
                raise ValueError(
                    f"blocked scale shape {scale.shape} for input {x.shape}, block {block}"
                )
            keep = np.arange(x.shape[ax])
            s = np.take(np.repeat(scale, block, axis=ax), keep, axis=ax)
            z = np.take(np.repeat(zero, block, axis=ax), keep, axis=ax)
    diff = x.astype(np.int64) - z.astype(np.int64)
    return (diff.astype(np.float32) * s.astype(np.float32)).astype(scale.dtype)


def _axes(
    node: onnx.NodeProto, inputs: list[np.ndarray | None], attrs: dict[str, Any]
) -> list[int] | None:
    if len(inputs) > 1 and inputs[1] is not None:
        return [int(a) for a in inputs[1].ravel()]
    return [int(a) for a in attrs["axes"]] if "axes" in attrs else None


def _reshape_target(shape_in: Sequence[int], target: Sequence[int], allowzero: bool) -> list[int]:
    out = [int(t) for t in target]
    if not allowzero:
        out = [shape_in[i] if t == 0 else t for i, t in enumerate(out)]
    return out


def _fold(node: onnx.NodeProto, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """Evaluate one node with constant inputs in numpy (_NotFoldableError if unsupported)."""
    import onnx

    op, attrs = _op_name(node), _attrs(node)
    x = inputs[0] if inputs else None
    if op in ("Identity", "Dropout"):
        return [np.asarray(x)]
    assert x is not None
    if op == "DequantizeLinear":
        zero = inputs[2] if len(inputs) > 2 else None
        assert inputs[1] is not None
        return [_dequantize(x, inputs[1], zero, attrs)]
    if op == "Reshape":
        assert inputs[1] is not None
        target = _reshape_target(x.shape, inputs[1].ravel(), bool(attrs.get("allowzero", 0)))
        return [x.reshape(target)]
    if op == "Transpose":
        return [np.transpose(x, attrs.get("perm"))]
    if op == "Cast":
        return [x.astype(onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]))]
    if op == "Squeeze":
        axes = _axes(node, inputs, attrs)
        return [np.squeeze(x, axis=None if axes is None else tuple(axes))]
    if op == "Unsqueeze":
        axes = _axes(node, inputs, attrs) or []
        rank = x.ndim + len(axes)
        out = x
        for a in sorted(a % rank for a in axes):
            out = np.expand_dims(out, a)
        return [out]
    if op == "Concat":
        return [np.concatenate([np.asarray(i) for i in inputs], axis=int(attrs["axis"]))]
    if op == "Flatten":
        axis = int(attrs.get("axis", 1)) % max(x.ndim, 1)
        return [x.reshape(int(np.prod(x.shape[:axis])), -1)]
    if op == "Shape":
        return [np.asarray(x.shape, dtype=np.int64)]
    if op in ("Add", "Sub", "Mul", "Div"):
        b = inputs[1]
        assert b is not None
        if op == "Div" and np.issubdtype(x.dtype, np.integer):
            return [np.trunc(x / b).astype(x.dtype)]
        fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
        return [fn(x, b).astype(np.result_type(x, b))]
    raise _NotFoldableError(op)


_FOLDABLE = (
    "Add",
    "Cast",
    "Concat",
    "Constant",
    "DequantizeLinear",
    "Div",
    "Dropout",
    "Flatten",
    "Identity",
    "Mul",
    "Reshape",
    "Shape",
    "Squeeze",
    "Sub",
    "Transpose",
    "Unsqueeze",
)


@dataclass
class _Graph:
    """The graph after constant folding: constants and the remaining dynamic nodes."""

    path: Path
    input_name: str
    input_chw: tuple[int, int, int]
    output_name: str
    constants: dict[str, np.ndarray]
    nodes: list[onnx.NodeProto]  # dynamic nodes, inputs rewritten through aliases
    consumers: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    folded: int = 0


def _analyse(path: Path, model: onnx.ModelProto) -> _Graph:
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    input_name, c, h, w = _real_input(path, model)
    output_name = _one_output(path, model).name
    constants: dict[str, np.ndarray] = {
        t.name: np.asarray(numpy_helper.to_array(t)) for t in graph.initializer
    }
    known = {input_name, *constants}
    alias: dict[str, str] = {}
    dynamic: list[onnx.NodeProto] = []
    folded = 0
    for node in graph.node:
        op = _op_name(node)
        name = node.name or node.output[0]
        present = [i for i in node.input if i]
        missing = [i for i in present if i not in known]
        if missing:
            raise OnnxImportError(
                f"{path.name}: node {name} ({op}) reads {missing[0]}, which no earlier node "
                "produces (graph not topologically sorted?)"
            )
        known.update(o for o in node.output if o)
        if op == "Constant" or (present and all(i in constants for i in present)):
            try:
                if op == "Constant":
                    outs = [_constant_value(node)]
                else:
                    args = [constants[i] if i else None for i in node.input]
                    outs = _fold(node, args)
            except _NotFoldableError:
                raise OnnxImportError(
                    f"{path.name}: cannot fold constant ONNX op {op} (node {name}); "
                    f"foldable: {', '.join(_FOLDABLE)}"
                ) from None
            except (ValueError, TypeError, IndexError, KeyError) as exc:
                raise OnnxImportError(f"{path.name}: node {name} ({op}): {exc}") from exc
            constants.update(zip(node.output, outs, strict=False))
            folded += 1
            continue
        if op in ("Identity", "Dropout"):
            if op == "Dropout" and len(node.output) > 1 and node.output[1]:
                used = {i for n in graph.node for i in n.input}
                if node.output[1] in used:
                    raise OnnxImportError(f"{path.name}: Dropout mask of {name} is used")
            alias[node.output[0]] = alias.get(node.input[0], node.input[0])
            continue
        new = onnx.NodeProto()
        new.CopyFrom(node)
        del new.input[:]
        new.input.extend(alias.get(i, i) for i in node.input)
        dynamic.append(new)
    output_name = alias.get(output_name, output_name)
    if output_name in constants:
        raise OnnxImportError(f"{path.name}: the output does not depend on the input")
    consumers: dict[str, list[tuple[int, int]]] = {}
    for k, node in enumerate(dynamic):
        for j, name in enumerate(node.input):
            if name and name not in constants:
                consumers.setdefault(name, []).append((k, j))
    consumers.setdefault(output_name, []).append((_OUTPUT, 0))
    return _Graph(path, input_name, (c, h, w), output_name, constants, dynamic, consumers, folded)


# ------------------------------------------------------------------- keras building


@functools.cache
def _const_op_class() -> type:
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
class _Value:
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


def _tf_same_pads(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    eff = (k - 1) * d + 1
    out = -(-size // s)
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def _to_nhwc_const(c: np.ndarray, rank: int) -> np.ndarray:
    """Align an ONNX-broadcastable constant to a rank-``rank`` operand, NCHW -> NHWC."""
    if c.ndim > rank:
        raise ValueError(f"constant of shape {c.shape} is broadcast to rank {rank}")
    c = c.reshape((1,) * (rank - c.ndim) + c.shape)
    return c.transpose(0, 2, 3, 1) if rank == 4 else c


class _Builder:
    """Walks the dynamic nodes in order and builds the Keras functional graph."""

    def __init__(self, g: _Graph) -> None:
        import keras

        self.k = keras
        self.g = g
        self.const = g.constants
        self.values: dict[str, _Value] = {}
        self.absorbed: set[int] = set()
        self.names: set[str] = set()
        self.bn_folded = 0
        self.handlers: dict[str, Callable[[int, onnx.NodeProto], None]] = {
            "Conv": self._conv,
            "BatchNormalization": self._batchnorm,
            "PRelu": self._prelu,
            "Relu": self._activation,
            "LeakyRelu": self._activation,
            "Sigmoid": self._activation,
            "Tanh": self._activation,
            "Clip": self._clip,
            "Add": self._binary,
            "Sub": self._binary,
            "Mul": self._binary,
            "Div": self._binary,
            "Flatten": self._flatten,
            "Reshape": self._reshape,
            "Gemm": self._dense,
            "MatMul": self._dense,
            "GlobalAveragePool": self._global_pool,
            "GlobalMaxPool": self._global_pool,
            "AveragePool": self._pool,
            "MaxPool": self._pool,
        }

    # -- helpers

    def fail(self, node: onnx.NodeProto, why: str) -> OnnxImportError:
        return OnnxImportError(
            f"{self.g.path.name}: node {node.name or node.output[0]} ({_op_name(node)}): {why}"
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

    def value(self, node: onnx.NodeProto, i: int, *kinds: Kind) -> _Value:
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
        self.values[node.output[0]] = _Value(tensor, kind, **kw)

    def only_consumer(self, node: onnx.NodeProto) -> tuple[int, onnx.NodeProto] | None:
        uses = self.g.consumers.get(node.output[0], [])
        if len(uses) != 1 or uses[0][0] == _OUTPUT or uses[0][1] != 0:
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
        attrs = _attrs(bn)
        if any(p is None for p in params) or attrs.get("training_mode", 0):
            return None
        gamma, beta, mean, var = (np.asarray(p, dtype=np.float64) for p in params)
        scale = gamma / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
        self.absorbed.add(k)
        self.bn_folded += 1
        return scale, beta - mean * scale, bn.output[0]

    # -- layers

    def _padding(
        self,
        node: onnx.NodeProto,
        x: Any,
        kernel: Sequence[int],
        strides: Sequence[int],
        dilations: Sequence[int],
    ) -> tuple[str, tuple[tuple[int, int], tuple[int, int]] | None]:
        """Keras padding mode and, if needed, explicit ((top, bottom), (left, right))."""
        attrs = _attrs(node)
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
        size = (int(x.shape[1]), int(x.shape[2]))
        same = [
            _tf_same_pads(n, k, s, d)
            for n, k, s, d in zip(size, kernel, strides, dilations, strict=True)
        ]
        if auto_pad == "VALID":
            return "valid", None
        if auto_pad == "SAME_UPPER":
            return "same", None
        if auto_pad == "SAME_LOWER":
            pads = [(b, a) for a, b in same]
        elif auto_pad == "NOTSET":
            p = [int(v) for v in attrs.get("pads", [0, 0, 0, 0])]
            if len(p) != 4:
                raise self.fail(node, f"pads {p} (only 2-D spatial ops are supported)")
            pads = [(p[0], p[2]), (p[1], p[3])]
        else:
            raise self.fail(node, f"auto_pad {auto_pad}")
        if all(a == 0 and b == 0 for a, b in pads):
            return "valid", None
        if pads == same:
            return "same", None
        return "valid", (pads[0], pads[1])

    def _conv(self, k: int, node: onnx.NodeProto) -> None:
        keras = self.k
        v = self.value(node, 0, "nhwc")
        w, b = self.constant(node, 1), self.constant(node, 2)
        if w is None or w.ndim != 4:
            raise self.fail(node, "only 2-D convolutions with a constant weight are supported")
        attrs = _attrs(node)
        out_ch, in_per_group, kh, kw = (int(d) for d in w.shape)
        strides = [int(s) for s in attrs.get("strides", [1, 1])]
        dilations = [int(d) for d in attrs.get("dilations", [1, 1])]
        if max(strides) > 1 and max(dilations) > 1:
            raise self.fail(node, "strides and dilations both > 1 (Keras cannot do both)")
        group = int(attrs.get("group", 1))
        cin = int(v.tensor.shape[-1])
        depthwise = group > 1
        if group == 1:
            kernel = w.transpose(2, 3, 1, 0).astype(np.float64)  # (kh, kw, in, out)
            if in_per_group != cin:
                raise self.fail(node, f"weight has {in_per_group} input channels, input {cin}")
        elif group == cin == out_ch and in_per_group == 1:
            kernel = w.transpose(2, 3, 0, 1).astype(np.float64)  # (kh, kw, C, 1)
        else:
            raise self.fail(node, f"grouped convolution (group {group}) is not supported")
        bias = np.zeros(out_ch) if b is None else b.astype(np.float64)
        out_name = node.output[0]
        bn = self.absorb_bn(node)
        if bn is not None:
            scale, shift, out_name = bn
            kernel = kernel * (scale[None, None, :, None] if depthwise else scale)
            bias = bias * scale + shift
        padding, explicit = self._padding(node, v.tensor, (kh, kw), strides, dilations)
        x = v.tensor
        if explicit is not None:
            x = keras.layers.ZeroPadding2D(explicit, name=self.name(node, "_pad"))(x)
        common = dict(
            kernel_size=(kh, kw),
            strides=tuple(strides),
            padding=padding,
            dilation_rate=tuple(dilations),
            name=self.name(node),
        )
        if depthwise:
            layer = keras.layers.DepthwiseConv2D(depth_multiplier=1, **common)
        else:
            layer = keras.layers.Conv2D(out_ch, **common)
        y = layer(x)
        layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
        self.values[out_name] = _Value(y, "nhwc")

    def _dense(self, k: int, node: onnx.NodeProto) -> None:
        keras = self.k
        v = self.value(node, 0, "flat", "flat_hwc")
        w = self.constant(node, 1)
        if w is None or w.ndim != 2:
            raise self.fail(node, "needs a constant 2-D weight")
        attrs = _attrs(node)
        bias: np.ndarray | None = None
        if node.op_type == "Gemm":
            if attrs.get("transA", 0):
                raise self.fail(node, "transA=1 is not supported")
            w = w.T if attrs.get("transB", 0) else w
            w = w.astype(np.float64) * float(attrs.get("alpha", 1.0))
            c = self.constant(node, 2)
            if c is not None:
                if c.size not in (1, w.shape[1]):
                    raise self.fail(node, f"bias of shape {c.shape} is not per output")
                bias = np.broadcast_to(c.reshape(-1), (w.shape[1],)) * float(attrs.get("beta", 1))
        kernel = w.astype(np.float64)
        bias = np.zeros(kernel.shape[1]) if bias is None else bias.astype(np.float64)
        if int(v.tensor.shape[-1]) != kernel.shape[0]:
            raise self.fail(node, f"weight rows {kernel.shape[0]} != inputs {v.tensor.shape[-1]}")
        if v.kind == "flat_hwc":
            assert v.chw is not None
            c_, h_, w_ = v.chw
            kernel = kernel.reshape(c_, h_, w_, -1).transpose(1, 2, 0, 3).reshape(kernel.shape)
        out_name = node.output[0]
        bn = self.absorb_bn(node)
        if bn is not None:
            scale, shift, out_name = bn
            kernel, bias = kernel * scale, bias * scale + shift
        layer = keras.layers.Dense(kernel.shape[1], name=self.name(node))
        y = layer(v.tensor)
        layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
        self.values[out_name] = _Value(y, "flat")

    def _batchnorm(self, k: int, node: onnx.NodeProto) -> None:
        v = self.value(node, 0, "nhwc", "flat")
        params = [self.constant(node, i) for i in range(1, 5)]
        attrs = _attrs(node)
        if attrs.get("training_mode", 0):
            raise self.fail(node, "training_mode=1")
        if any(p is None for p in params):
            raise self.fail(node, "needs constant scale, bias, mean and variance")
        layer = self.k.layers.BatchNormalization(
            axis=-1, epsilon=float(attrs.get("epsilon", 1e-5)), name=self.name(node)
        )
        y = layer(v.tensor)
        layer.set_weights([np.asarray(p, dtype=np.float32).reshape(-1) for p in params])
        self.set(node, y, v.kind)

    def _prelu(self, k: int, node: onnx.NodeProto) -> None:
        v = self.value(node, 0, "nhwc", "flat")
        slope = self.constant(node, 1)
        assert slope is not None
        rank = len(v.tensor.shape)
        try:
            alpha = _to_nhwc_const(np.asarray(slope, dtype=np.float32), rank)[0]
        except ValueError as exc:
            raise self.fail(node, str(exc)) from None
        shared = [i + 1 for i, d in enumerate(alpha.shape) if d == 1]
        layer = self.k.layers.PReLU(shared_axes=shared or None, name=self.name(node))
        y = layer(v.tensor)
        layer.set_weights([np.broadcast_to(alpha, layer.get_weights()[0].shape).copy()])
        self.set(node, y, v.kind)

    def _activation(self, k: int, node: onnx.NodeProto) -> None:
        layers = self.k.layers
        v = self.value(node, 0, "nhwc", "flat")
        name = self.name(node)
        layer: Any
        if node.op_type == "Relu":
            layer = layers.ReLU(name=name)
        elif node.op_type == "LeakyRelu":
            layer = layers.LeakyReLU(
                negative_slope=float(_attrs(node).get("alpha", 0.01)), name=name
            )
        else:
            layer = layers.Activation(node.op_type.lower(), name=name)
        self.set(node, layer(v.tensor), v.kind)

    def _clip(self, k: int, node: onnx.NodeProto) -> None:
        v = self.value(node, 0, "nhwc", "flat")
        attrs = _attrs(node)
        lo_c, hi_c = self.constant(node, 1), self.constant(node, 2)
        lo = float(lo_c) if lo_c is not None else attrs.get("min")
        hi = float(hi_c) if hi_c is not None else attrs.get("max")
        y = v.tensor
        if lo == 0:
            y = self.k.layers.ReLU(max_value=hi, name=self.name(node))(y)
        else:
            const_op = _const_op_class()
            for op, bound in (("maximum", lo), ("minimum", hi)):
                if bound is not None:
                    layer = const_op(op, (), name=self.name(node, f"_{op[:3]}"))
                    y = layer(y)
                    layer.set_weights([np.asarray(bound, dtype=np.float32)])
        self.set(node, y, v.kind)

    def _binary(self, k: int, node: onnx.NodeProto) -> None:
        layers = self.k.layers
        op = node.op_type
        a_const, b_const = (n in self.const for n in node.input[:2])
        if not a_const and not b_const:
            va, vb = self.value(node, 0, "nhwc", "flat"), self.value(node, 1, "nhwc", "flat")
            if va.kind != vb.kind:
                raise self.fail(node, f"operands of different ranks ({va.kind}, {vb.kind})")
            if op == "Div":
                raise self.fail(node, "division of two tensors is not supported")
            merge = {"Add": layers.Add, "Sub": layers.Subtract, "Mul": layers.Multiply}[op]
            self.set(node, merge(name=self.name(node))([va.tensor, vb.tensor]), va.kind)
            return
        v = self.value(node, 1 if a_const else 0, "nhwc", "flat")
        c = np.asarray(self.const[node.input[0 if a_const else 1]], dtype=np.float64)
        try:
            c = _to_nhwc_const(c, len(v.tensor.shape))
        except ValueError as exc:
            raise self.fail(node, str(exc)) from None
        c = c.reshape(()) if c.size == 1 else c
        fn = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Div": "divide"}[op]
        if op == "Div" and b_const:  # x / c -> x * (1 / c): cheaper, int8-friendly
            fn, c = "multiply", 1.0 / c
        layer = _const_op_class()(fn, c.shape, const_first=a_const, name=self.name(node))
        y = layer(v.tensor)
        layer.set_weights([c.astype(np.float32)])
        self.set(node, y, v.kind)

    def _flatten_4d(self, node: onnx.NodeProto, v: _Value) -> None:
        layers = self.k.layers
        h, w, c = (int(d) for d in v.tensor.shape[1:4])
        if h * w == 1 or c == 1:  # CHW order == HWC order
            self.set(node, layers.Flatten(name=self.name(node))(v.tensor), "flat")
            return
        uses = self.g.consumers.get(node.output[0], [])
        dense_only = bool(uses) and all(
            j == 0
            and kk != _OUTPUT
            and self.g.nodes[kk].op_type in ("Gemm", "MatMul")
            and len(self.g.nodes[kk].input) > 1
            and self.g.nodes[kk].input[1] in self.const
            and not _attrs(self.g.nodes[kk]).get("transA", 0)
            for kk, j in uses
        )
        if dense_only:
            y = layers.Flatten(name=self.name(node))(v.tensor)
            self.set(node, y, "flat_hwc", chw=(c, h, w))
            return
        t = layers.Permute((3, 1, 2), name=self.name(node, "_nchw"))(v.tensor)
        self.set(node, layers.Flatten(name=self.name(node))(t), "flat")

    def _flatten(self, k: int, node: onnx.NodeProto) -> None:
        v = self.value(node, 0, "nhwc", "flat")
        if int(_attrs(node).get("axis", 1)) not in (1, -len(v.tensor.shape) + 1):
            raise self.fail(node, "only Flatten with axis=1 is supported")
        if v.kind == "flat":
            self.values[node.output[0]] = v
        else:
            self._flatten_4d(node, v)

    def _reshape(self, k: int, node: onnx.NodeProto) -> None:
        v = self.value(node, 0, "nhwc", "flat")
        shape = self.constant(node, 1)
        assert shape is not None
        src = v.onnx_shape()
        target = _reshape_target(src, shape.ravel(), bool(_attrs(node).get("allowzero", 0)))
        total = int(np.prod(src))
        if target.count(-1) == 1:
            known = int(np.prod([t for t in target if t != -1]))
            target[target.index(-1)] = total // known if known else 0
        if target == src:
            self.values[node.output[0]] = v
        elif len(target) == 2 and target[0] == src[0] and target[1] == total // src[0]:
            if v.kind == "flat":
                self.values[node.output[0]] = v
            else:
                self._flatten_4d(node, v)
        else:
            raise self.fail(node, f"Reshape {src} -> {target} (only a flatten to (N, -1))")

    def _global_pool(self, k: int, node: onnx.NodeProto) -> None:
        v = self.value(node, 0, "nhwc")
        cls = (
            self.k.layers.GlobalAveragePooling2D
            if node.op_type == "GlobalAveragePool"
            else self.k.layers.GlobalMaxPooling2D
        )
        self.set(node, cls(keepdims=True, name=self.name(node))(v.tensor), "nhwc")

    def _pool(self, k: int, node: onnx.NodeProto) -> None:
        layers = self.k.layers
        v = self.value(node, 0, "nhwc")
        if len(node.output) > 1 and node.output[1]:
            raise self.fail(node, "MaxPool indices output is not supported")
        attrs = _attrs(node)
        kernel = [int(d) for d in attrs["kernel_shape"]]
        strides = [int(s) for s in attrs.get("strides", [1, 1])]
        if any(int(d) != 1 for d in attrs.get("dilations", [1, 1])):
            raise self.fail(node, "dilated pooling is not supported")
        size = [int(n) for n in v.tensor.shape[1:3]]
        padding, explicit = self._padding(node, v.tensor, kernel, strides, [1, 1])
        same = [_tf_same_pads(n, kk, s, 1) for n, kk, s in zip(size, kernel, strides, strict=True)]
        pads = explicit or (same if padding == "same" else [(0, 0), (0, 0)])
        if attrs.get("ceil_mode", 0) and any(
            (n + a + b - kk) % s
            for n, kk, s, (a, b) in zip(size, kernel, strides, pads, strict=True)
        ):
            raise self.fail(node, "ceil_mode=1 changes the output size")
        x = v.tensor
        if node.op_type == "MaxPool":
            if explicit is not None:
                raise self.fail(node, f"MaxPool padding {explicit} other than TF SAME")
            cls = layers.MaxPooling2D
        else:
            include = bool(attrs.get("count_include_pad", 0))
            if padding == "same" and include and any(a or b for a, b in same):
                padding, explicit = "valid", (same[0], same[1])
            if explicit is not None:
                if not include:
                    raise self.fail(node, f"padding {explicit} with count_include_pad=0")
                x = layers.ZeroPadding2D(explicit, name=self.name(node, "_pad"))(x)
            cls = layers.AveragePooling2D
        layer = cls(tuple(kernel), strides=tuple(strides), padding=padding, name=self.name(node))
        self.set(node, layer(x), "nhwc")

    # -- driver

    def build(self, model_name: str) -> keras.Model:
        keras = self.k
        g = self.g
        c, h, w = g.input_chw
        name = self.unique(g.input_name, "input")
        inp = keras.Input(shape=(h, w, c), dtype="float32", name=name)
        self.values[g.input_name] = _Value(inp, "nhwc")
        for k, node in enumerate(g.nodes):
            if k in self.absorbed:
                continue
            op = _op_name(node)
            handler = self.handlers.get(op)
            if handler is None:
                raise OnnxImportError(
                    f"{g.path.name}: unsupported ONNX op {op} (node {node.name or node.output[0]});"
                    f" supported: {', '.join(sorted(self.handlers))}"
                )
            handler(k, node)
        out = self.values[g.output_name]
        if out.kind != "flat":
            raise OnnxImportError(
                f"{g.path.name}: the output {g.output_name} must be (N, D), it is "
                f"{out.onnx_shape()}"
            )
        return keras.Model(inp, out.tensor, name=model_name)


def keras_from_onnx(path: Path) -> keras.Model:
    """Rebuild the ONNX encoder at ``path`` as a float Keras model (NHWC in, (N, D) out)."""
    path = Path(path)
    model = _load(path)
    graph = _analyse(path, model)
    builder = _Builder(graph)
    name = re.sub(r"[^0-9A-Za-z_]", "_", path.stem).strip("_") or "onnx_encoder"
    keras_model = builder.build(name)
    log.info(
        "%s: %d nodes (%d constant-folded, %d batch norms folded) -> %d Keras layers",
        path.name,
        len(model.graph.node),
        graph.folded,
        builder.bn_folded,
        len(keras_model.layers),
    )
    return keras_model
