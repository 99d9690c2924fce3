"""ONNX op -> Keras layer(s): one function per supported op, each adding the layers for
one dynamic node to a :class:`~model_export.onnx_keras.KerasGraph` (``LAYERS`` maps op
names to them).

- **Foldings.** A ``BatchNormalization`` whose input is a ``Conv``/``Gemm``/``MatMul``
  output read by nothing else is folded into that layer's kernel and bias; any other one
  becomes a Keras ``BatchNormalization`` (an inference-time per-channel affine on the last
  axis). Division by a constant becomes multiplication by its reciprocal.
- **Layers.** Built-in Keras layers wherever one fits (Conv2D, DepthwiseConv2D,
  ZeroPadding2D, Dense, PReLU, ReLU, ...); elementwise ops with a constant operand use
  the small ``OnnxConstOp`` layer (a non-trainable constant weight + one ``keras.ops``
  call), which converts to TFLite builtins (ADD/SUB/MUL/DIV/MAXIMUM/MINIMUM). Explicit
  conv padding equal to TF's SAME padding for that input size becomes
  ``padding="same"``; other padding becomes ``ZeroPadding2D`` (asymmetric allowed) +
  ``"valid"``. NCHW-shaped constants (``(C, 1, 1)``, ``(1, C, 1, 1)``) are
  broadcast-aligned and transposed to NHWC. Layers are named after the ONNX nodes.
- **Flatten.** ``Flatten`` (or a ``Reshape`` to (N, -1)) of a 4-D tensor must give the
  ONNX (CHW) order: when the flattened tensor only feeds Dense layers with constant
  weights, their weight rows are permuted from CHW to HWC order instead (no transpose op
  on the device); otherwise a ``Permute`` to channels-first is inserted before
  ``Flatten``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from model_export.onnx_graph import OUTPUT, node_attrs, reshape_target
from model_export.onnx_keras import KerasGraph, Value, const_op_class

if TYPE_CHECKING:
    import onnx


def tf_same_pads(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    eff = (k - 1) * d + 1
    out = -(-size // s)
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def to_nhwc_const(c: np.ndarray, rank: int) -> np.ndarray:
    """Align an ONNX-broadcastable constant to a rank-``rank`` operand, NCHW -> NHWC."""
    if c.ndim > rank:
        raise ValueError(f"constant of shape {c.shape} is broadcast to rank {rank}")
    c = c.reshape((1,) * (rank - c.ndim) + c.shape)
    return c.transpose(0, 2, 3, 1) if rank == 4 else c


def keras_padding(
    kg: KerasGraph,
    node: onnx.NodeProto,
    x: Any,
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
) -> tuple[str, tuple[tuple[int, int], tuple[int, int]] | None]:
    """Keras padding mode and, if needed, explicit ((top, bottom), (left, right))."""
    attrs = node_attrs(node)
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    size = (int(x.shape[1]), int(x.shape[2]))
    same = [
        tf_same_pads(n, k, s, d)
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
            raise kg.fail(node, f"pads {p} (only 2-D spatial ops are supported)")
        pads = [(p[0], p[2]), (p[1], p[3])]
    else:
        raise kg.fail(node, f"auto_pad {auto_pad}")
    if all(a == 0 and b == 0 for a, b in pads):
        return "valid", None
    if pads == same:
        return "same", None
    return "valid", (pads[0], pads[1])


def conv(kg: KerasGraph, node: onnx.NodeProto) -> None:
    keras = kg.k
    v = kg.value(node, 0, "nhwc")
    w, b = kg.constant(node, 1), kg.constant(node, 2)
    if w is None or w.ndim != 4:
        raise kg.fail(node, "only 2-D convolutions with a constant weight are supported")
    attrs = node_attrs(node)
    out_ch, in_per_group, kh, kw = (int(d) for d in w.shape)
    strides = [int(s) for s in attrs.get("strides", [1, 1])]
    dilations = [int(d) for d in attrs.get("dilations", [1, 1])]
    if max(strides) > 1 and max(dilations) > 1:
        raise kg.fail(node, "strides and dilations both > 1 (Keras cannot do both)")
    group = int(attrs.get("group", 1))
    cin = int(v.tensor.shape[-1])
    depthwise = group > 1
    if group == 1:
        kernel = w.transpose(2, 3, 1, 0).astype(np.float64)  # (kh, kw, in, out)
        if in_per_group != cin:
            raise kg.fail(node, f"weight has {in_per_group} input channels, input {cin}")
    elif group == cin == out_ch and in_per_group == 1:
        kernel = w.transpose(2, 3, 0, 1).astype(np.float64)  # (kh, kw, C, 1)
    else:
        raise kg.fail(node, f"grouped convolution (group {group}) is not supported")
    bias = np.zeros(out_ch) if b is None else b.astype(np.float64)
    out_name = node.output[0]
    bn = kg.absorb_bn(node)
    if bn is not None:
        scale, shift, out_name = bn
        kernel = kernel * (scale[None, None, :, None] if depthwise else scale)
        bias = bias * scale + shift
    padding, explicit = keras_padding(kg, node, v.tensor, (kh, kw), strides, dilations)
    x = v.tensor
    if explicit is not None:
        x = keras.layers.ZeroPadding2D(explicit, name=kg.name(node, "_pad"))(x)
    common = dict(
        kernel_size=(kh, kw),
        strides=tuple(strides),
        padding=padding,
        dilation_rate=tuple(dilations),
        name=kg.name(node),
    )
    if depthwise:
        layer = keras.layers.DepthwiseConv2D(depth_multiplier=1, **common)
    else:
        layer = keras.layers.Conv2D(out_ch, **common)
    y = layer(x)
    layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    kg.values[out_name] = Value(y, "nhwc")


def dense(kg: KerasGraph, node: onnx.NodeProto) -> None:
    keras = kg.k
    v = kg.value(node, 0, "flat", "flat_hwc")
    w = kg.constant(node, 1)
    if w is None or w.ndim != 2:
        raise kg.fail(node, "needs a constant 2-D weight")
    attrs = node_attrs(node)
    bias: np.ndarray | None = None
    if node.op_type == "Gemm":
        if attrs.get("transA", 0):
            raise kg.fail(node, "transA=1 is not supported")
        w = w.T if attrs.get("transB", 0) else w
        w = w.astype(np.float64) * float(attrs.get("alpha", 1.0))
        c = kg.constant(node, 2)
        if c is not None:
            if c.size not in (1, w.shape[1]):
                raise kg.fail(node, f"bias of shape {c.shape} is not per output")
            bias = np.broadcast_to(c.reshape(-1), (w.shape[1],)) * float(attrs.get("beta", 1))
    kernel = w.astype(np.float64)
    bias = np.zeros(kernel.shape[1]) if bias is None else bias.astype(np.float64)
    if int(v.tensor.shape[-1]) != kernel.shape[0]:
        raise kg.fail(node, f"weight rows {kernel.shape[0]} != inputs {v.tensor.shape[-1]}")
    if v.kind == "flat_hwc":
        assert v.chw is not None
        c_, h_, w_ = v.chw
        kernel = kernel.reshape(c_, h_, w_, -1).transpose(1, 2, 0, 3).reshape(kernel.shape)
    out_name = node.output[0]
    bn = kg.absorb_bn(node)
    if bn is not None:
        scale, shift, out_name = bn
        kernel, bias = kernel * scale, bias * scale + shift
    layer = keras.layers.Dense(kernel.shape[1], name=kg.name(node))
    y = layer(v.tensor)
    layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    kg.values[out_name] = Value(y, "flat")


def batchnorm(kg: KerasGraph, node: onnx.NodeProto) -> None:
    v = kg.value(node, 0, "nhwc", "flat")
    params = [kg.constant(node, i) for i in range(1, 5)]
    attrs = node_attrs(node)
    if attrs.get("training_mode", 0):
        raise kg.fail(node, "training_mode=1")
    if any(p is None for p in params):
        raise kg.fail(node, "needs constant scale, bias, mean and variance")
    layer = kg.k.layers.BatchNormalization(
        axis=-1, epsilon=float(attrs.get("epsilon", 1e-5)), name=kg.name(node)
    )
    y = layer(v.tensor)
    layer.set_weights([np.asarray(p, dtype=np.float32).reshape(-1) for p in params])
    kg.set(node, y, v.kind)


def prelu(kg: KerasGraph, node: onnx.NodeProto) -> None:
    v = kg.value(node, 0, "nhwc", "flat")
    slope = kg.constant(node, 1)
    assert slope is not None
    rank = len(v.tensor.shape)
    try:
        alpha = to_nhwc_const(np.asarray(slope, dtype=np.float32), rank)[0]
    except ValueError as exc:
        raise kg.fail(node, str(exc)) from None
    shared = [i + 1 for i, d in enumerate(alpha.shape) if d == 1]
    layer = kg.k.layers.PReLU(shared_axes=shared or None, name=kg.name(node))
    y = layer(v.tensor)
    layer.set_weights([np.broadcast_to(alpha, layer.get_weights()[0].shape).copy()])
    kg.set(node, y, v.kind)


def activation(kg: KerasGraph, node: onnx.NodeProto) -> None:
    layers = kg.k.layers
    v = kg.value(node, 0, "nhwc", "flat")
    name = kg.name(node)
    layer: Any
    if node.op_type == "Relu":
        layer = layers.ReLU(name=name)
    elif node.op_type == "LeakyRelu":
        layer = layers.LeakyReLU(
            negative_slope=float(node_attrs(node).get("alpha", 0.01)), name=name
        )
    else:
        layer = layers.Activation(node.op_type.lower(), name=name)
    kg.set(node, layer(v.tensor), v.kind)


def clip(kg: KerasGraph, node: onnx.NodeProto) -> None:
    v = kg.value(node, 0, "nhwc", "flat")
    attrs = node_attrs(node)
    lo_c, hi_c = kg.constant(node, 1), kg.constant(node, 2)
    lo = float(lo_c) if lo_c is not None else attrs.get("min")
    hi = float(hi_c) if hi_c is not None else attrs.get("max")
    y = v.tensor
    if lo == 0:
        y = kg.k.layers.ReLU(max_value=hi, name=kg.name(node))(y)
    else:
        const_op = const_op_class()
        for op, bound in (("maximum", lo), ("minimum", hi)):
            if bound is not None:
                layer = const_op(op, (), name=kg.name(node, f"_{op[:3]}"))
                y = layer(y)
                layer.set_weights([np.asarray(bound, dtype=np.float32)])
    kg.set(node, y, v.kind)


def binary(kg: KerasGraph, node: onnx.NodeProto) -> None:
    layers = kg.k.layers
    op = node.op_type
    a_const, b_const = (n in kg.const for n in node.input[:2])
    if not a_const and not b_const:
        va, vb = kg.value(node, 0, "nhwc", "flat"), kg.value(node, 1, "nhwc", "flat")
        if va.kind != vb.kind:
            raise kg.fail(node, f"operands of different ranks ({va.kind}, {vb.kind})")
        if op == "Div":
            raise kg.fail(node, "division of two tensors is not supported")
        merge = {"Add": layers.Add, "Sub": layers.Subtract, "Mul": layers.Multiply}[op]
        kg.set(node, merge(name=kg.name(node))([va.tensor, vb.tensor]), va.kind)
        return
    v = kg.value(node, 1 if a_const else 0, "nhwc", "flat")
    c = np.asarray(kg.const[node.input[0 if a_const else 1]], dtype=np.float64)
    try:
        c = to_nhwc_const(c, len(v.tensor.shape))
    except ValueError as exc:
        raise kg.fail(node, str(exc)) from None
    c = c.reshape(()) if c.size == 1 else c
    fn = {"Add": "add", "Sub": "subtract", "Mul": "multiply", "Div": "divide"}[op]
    if op == "Div" and b_const:  # x / c -> x * (1 / c): cheaper, int8-friendly
        fn, c = "multiply", 1.0 / c
    layer = const_op_class()(fn, c.shape, const_first=a_const, name=kg.name(node))
    y = layer(v.tensor)
    layer.set_weights([c.astype(np.float32)])
    kg.set(node, y, v.kind)


def _flatten_4d(kg: KerasGraph, node: onnx.NodeProto, v: Value) -> None:
    layers = kg.k.layers
    h, w, c = (int(d) for d in v.tensor.shape[1:4])
    if h * w == 1 or c == 1:  # CHW order == HWC order
        kg.set(node, layers.Flatten(name=kg.name(node))(v.tensor), "flat")
        return
    uses = kg.g.consumers.get(node.output[0], [])
    dense_only = bool(uses) and all(
        j == 0
        and kk != OUTPUT
        and kg.g.nodes[kk].op_type in ("Gemm", "MatMul")
        and len(kg.g.nodes[kk].input) > 1
        and kg.g.nodes[kk].input[1] in kg.const
        and not node_attrs(kg.g.nodes[kk]).get("transA", 0)
        for kk, j in uses
    )
    if dense_only:
        y = layers.Flatten(name=kg.name(node))(v.tensor)
        kg.set(node, y, "flat_hwc", chw=(c, h, w))
        return
    t = layers.Permute((3, 1, 2), name=kg.name(node, "_nchw"))(v.tensor)
    kg.set(node, layers.Flatten(name=kg.name(node))(t), "flat")


def flatten(kg: KerasGraph, node: onnx.NodeProto) -> None:
    v = kg.value(node, 0, "nhwc", "flat")
    if int(node_attrs(node).get("axis", 1)) not in (1, -len(v.tensor.shape) + 1):
        raise kg.fail(node, "only Flatten with axis=1 is supported")
    if v.kind == "flat":
        kg.values[node.output[0]] = v
    else:
        _flatten_4d(kg, node, v)


def reshape(kg: KerasGraph, node: onnx.NodeProto) -> None:
    v = kg.value(node, 0, "nhwc", "flat")
    shape = kg.constant(node, 1)
    assert shape is not None
    src = v.onnx_shape()
    target = reshape_target(src, shape.ravel(), bool(node_attrs(node).get("allowzero", 0)))
    total = int(np.prod(src))
    if target.count(-1) == 1:
        known = int(np.prod([t for t in target if t != -1]))
        target[target.index(-1)] = total // known if known else 0
    if target == src:
        kg.values[node.output[0]] = v
    elif len(target) == 2 and target[0] == src[0] and target[1] == total // src[0]:
        if v.kind == "flat":
            kg.values[node.output[0]] = v
        else:
            _flatten_4d(kg, node, v)
    else:
        raise kg.fail(node, f"Reshape {src} -> {target} (only a flatten to (N, -1))")


def global_pool(kg: KerasGraph, node: onnx.NodeProto) -> None:
    v = kg.value(node, 0, "nhwc")
    cls = (
        kg.k.layers.GlobalAveragePooling2D
        if node.op_type == "GlobalAveragePool"
        else kg.k.layers.GlobalMaxPooling2D
    )
    kg.set(node, cls(keepdims=True, name=kg.name(node))(v.tensor), "nhwc")


def pool(kg: KerasGraph, node: onnx.NodeProto) -> None:
    layers = kg.k.layers
    v = kg.value(node, 0, "nhwc")
    if len(node.output) > 1 and node.output[1]:
        raise kg.fail(node, "MaxPool indices output is not supported")
    attrs = node_attrs(node)
    kernel = [int(d) for d in attrs["kernel_shape"]]
    strides = [int(s) for s in attrs.get("strides", [1, 1])]
    if any(int(d) != 1 for d in attrs.get("dilations", [1, 1])):
        raise kg.fail(node, "dilated pooling is not supported")
    size = [int(n) for n in v.tensor.shape[1:3]]
    padding, explicit = keras_padding(kg, node, v.tensor, kernel, strides, [1, 1])
    same = [tf_same_pads(n, kk, s, 1) for n, kk, s in zip(size, kernel, strides, strict=True)]
    pads = explicit or (same if padding == "same" else [(0, 0), (0, 0)])
    if attrs.get("ceil_mode", 0) and any(
        (n + a + b - kk) % s for n, kk, s, (a, b) in zip(size, kernel, strides, pads, strict=True)
    ):
        raise kg.fail(node, "ceil_mode=1 changes the output size")
    x = v.tensor
    if node.op_type == "MaxPool":
        if explicit is not None:
            raise kg.fail(node, f"MaxPool padding {explicit} other than TF SAME")
        cls = layers.MaxPooling2D
    else:
        include = bool(attrs.get("count_include_pad", 0))
        if padding == "same" and include and any(a or b for a, b in same):
            padding, explicit = "valid", (same[0], same[1])
        if explicit is not None:
            if not include:
                raise kg.fail(node, f"padding {explicit} with count_include_pad=0")
            x = layers.ZeroPadding2D(explicit, name=kg.name(node, "_pad"))(x)
        cls = layers.AveragePooling2D
    layer = cls(tuple(kernel), strides=tuple(strides), padding=padding, name=kg.name(node))
    kg.set(node, layer(x), "nhwc")


# -- driver


Layer = Callable[[KerasGraph, "onnx.NodeProto"], None]

# ONNX op -> the function that adds its Keras layers
LAYERS: dict[str, Layer] = {
    "Conv": conv,
    "BatchNormalization": batchnorm,
    "PRelu": prelu,
    "Relu": activation,
    "LeakyRelu": activation,
    "Sigmoid": activation,
    "Tanh": activation,
    "Clip": clip,
    "Add": binary,
    "Sub": binary,
    "Mul": binary,
    "Div": binary,
    "Flatten": flatten,
    "Reshape": reshape,
    "Gemm": dense,
    "MatMul": dense,
    "GlobalAveragePool": global_pool,
    "GlobalMaxPool": global_pool,
    "AveragePool": pool,
    "MaxPool": pool,
}
