"""Reading an ONNX face-encoder graph: the file, its one real input and output, its
constants folded, and its remaining nodes walked in order (``model_export.onnx_import``
rebuilds them in Keras).

1. **Constants.** Initializers and ``Constant`` nodes are constants; every node whose
   inputs are all constants is folded in numpy (``DequantizeLinear`` per-tensor,
   per-axis and blocked (opset 21 ``block_size``), ``Reshape``, ``Identity``,
   ``Transpose``, ``Cast``, ``Squeeze``, ``Unsqueeze``, ``Concat``, ``Flatten``,
   ``Shape`` and elementwise arithmetic). So block-quantized weights become plain
   float weights of the Keras layers.
2. **Inputs/outputs.** Graph inputs that are initializers, or that no node reads (the
   SFace file lists 29 such dangling inputs), are ignored. Exactly one real input
   (4-D NCHW, static C/H/W, float32) and exactly one 2-D output (N, D) are required.
3. **The walk.** The nodes must come in topological order (each reads only what an
   earlier node or the graph gives); ``Identity``/``Dropout`` become aliases; what is
   left is the list of dynamic nodes with, for each tensor, the nodes that read it.

``onnx`` is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.errors import EdgeError

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

_ONNX_FLOAT = 1  # onnx.TensorProto.FLOAT
OUTPUT = -1  # consumer index standing for "graph output"


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


def load(path: Path) -> onnx.ModelProto:
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
    model = load(path)
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
    ops = dict(Counter(op_name(n) for n in model.graph.node))
    return OnnxEncoderInfo(name, c, h, w, int(dims[1]), ops)


# ------------------------------------------------------------------ constant folding


class _NotFoldableError(Exception):
    """The op has no numpy implementation here."""


def op_name(node: onnx.NodeProto) -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


def node_attrs(node: onnx.NodeProto) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _constant_value(node: onnx.NodeProto) -> np.ndarray:
    from onnx import numpy_helper

    attrs = node_attrs(node)
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


def reshape_target(shape_in: Sequence[int], target: Sequence[int], allowzero: bool) -> list[int]:
    out = [int(t) for t in target]
    if not allowzero:
        out = [shape_in[i] if t == 0 else t for i, t in enumerate(out)]
    return out


def _fold(node: onnx.NodeProto, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
    """Evaluate one node with constant inputs in numpy (_NotFoldableError if unsupported)."""
    import onnx

    op, attrs = op_name(node), node_attrs(node)
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
        target = reshape_target(x.shape, inputs[1].ravel(), bool(attrs.get("allowzero", 0)))
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
class OnnxGraph:
    """The graph after constant folding: constants and the remaining dynamic nodes."""

    path: Path
    input_name: str
    input_chw: tuple[int, int, int]
    output_name: str
    constants: dict[str, np.ndarray]
    nodes: list[onnx.NodeProto]  # dynamic nodes, inputs rewritten through aliases
    consumers: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    folded: int = 0


def analyse(path: Path, model: onnx.ModelProto) -> OnnxGraph:
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
        op = op_name(node)
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
    consumers.setdefault(output_name, []).append((OUTPUT, 0))
    return OnnxGraph(
        path, input_name, (c, h, w), output_name, constants, dynamic, consumers, folded
    )
