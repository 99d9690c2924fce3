"""ONNX -> Keras importer: tiny random ONNX graphs checked against onnxruntime and TFLite."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from model_export.onnx_import import (  # noqa: E402
    OnnxEncoderInfo,
    OnnxImportError,
    inspect_onnx,
    keras_from_onnx,
)

H = W = 16


class _Net:
    """Collects nodes and initializers of a test graph."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[Any] = []
        self.inits: list[Any] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: Sequence[str], name: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, list(inputs), [name], name=name, **attrs))
        return name

    def conv(self, x: str, name: str, cin: int, cout: int, k: int, **attrs: Any) -> str:
        group = attrs.get("group", 1)
        w = self.rng.normal(0, 0.3, (cout, cin // group, k, k)).astype(np.float32)
        return self.node(
            "Conv", [x, self.const(f"{name}_w", w)], name, kernel_shape=[k, k], **attrs
        )

    def bn(self, x: str, name: str, c: int) -> str:
        r = self.rng
        params = [
            r.uniform(0.5, 1.5, c),
            r.normal(0, 0.2, c),
            r.normal(0, 0.2, c),
            r.uniform(0.5, 1.5, c),
        ]
        names = [
            self.const(f"{name}_{p}", v.astype(np.float32))
            for p, v in zip(("gamma", "beta", "mean", "var"), params, strict=True)
        ]
        return self.node("BatchNormalization", [x, *names], name, epsilon=1e-3)

    def prelu(self, x: str, name: str, slope_shape: tuple[int, ...]) -> str:
        slope = self.rng.uniform(0.05, 0.4, slope_shape).astype(np.float32)
        return self.node("PRelu", [x, self.const(f"{name}_slope", slope)], name)

    def save(
        self,
        path: Path,
        out: str,
        out_shape: Sequence[int],
        inputs: Sequence[tuple[str, Sequence[int]]] = (("data", (1, 3, H, W)),),
        extra_inputs: Sequence[Any] = (),
    ) -> Path:
        graph = helper.make_graph(
            self.nodes,
            "test",
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs]
            + list(extra_inputs),
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(out_shape))],
            initializer=self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
        model.ir_version = 10
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
        return path


def _encoder(tmp_path: Path) -> tuple[Path, Path]:
    """SFace-like: normalise, conv+BN+PRelu, depthwise s2, pointwise+BN+Relu, residual,
    BN, Dropout, Flatten, Gemm(transB=1), BN. Returns (file for onnxruntime, file with an
    unused graph input and initializers listed as inputs, as SFace has)."""
    n = _Net(seed=1)
    mean = np.array([120.0, 115.0, 100.0], np.float32).reshape(3, 1, 1)
    x = n.node("Sub", ["data", n.const("mean", mean)], "norm_sub")
    x = n.node("Mul", [x, n.const("inv_std", np.array([0.0078125], np.float32))], "norm_mul")
    # conv 1: block-quantized int8 weight (blocks of 9 along axis 1), dequantized + reshaped
    w = n.rng.normal(0, 0.3, (8, 27)).astype(np.float32)
    scales = (np.abs(w).reshape(8, 3, 9).max(axis=2) / 100).astype(np.float32)
    zero = n.rng.integers(-5, 5, (8, 3)).astype(np.int8)
    q = np.clip(np.round(w / np.repeat(scales, 9, axis=1)) + np.repeat(zero, 9, axis=1), -128, 127)
    deq = n.node(
        "DequantizeLinear",
        [n.const("c1_q", q.astype(np.int8)), n.const("c1_s", scales), n.const("c1_z", zero)],
        "c1_deq",
        axis=1,
        block_size=9,
    )
    wr = n.node("Reshape", [deq, n.const("c1_shape", np.array([8, 3, 3, 3], np.int64))], "c1_w")
    x = n.node("Conv", [x, wr], "c1", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    x = n.prelu(n.bn(x, "c1_bn", 8), "c1_prelu", (8, 1, 1))
    x = n.conv(x, "dw", 8, 8, 3, group=8, strides=[2, 2], pads=[1, 1, 1, 1])
    x = n.prelu(n.bn(x, "dw_bn", 8), "dw_prelu", (1,))
    x = n.node("Relu", [n.bn(n.conv(x, "pw", 8, 16, 1), "pw_bn", 16)], "pw_relu")
    y = n.bn(n.conv(x, "res", 16, 16, 1), "res_bn", 16)
    x = n.node("Add", [x, y], "res_add")
    x = n.bn(x, "bn1", 16)  # not after a conv: a per-channel affine
    ratio = n.node(
        "Constant", [], "ratio", value=numpy_helper.from_array(np.array(0.4, np.float32))
    )
    n.nodes.append(helper.make_node("Dropout", [x, ratio], ["drop"], name="drop"))
    x = n.node("Flatten", ["drop"], "flat")
    fc_w = n.rng.normal(0, 0.05, (32, 16 * 8 * 8)).astype(np.float32)
    fc_b = n.rng.normal(0, 0.1, 32).astype(np.float32)
    x = n.node("Gemm", [x, n.const("fc_w", fc_w), n.const("fc_b", fc_b)], "fc", transB=1)
    out = n.bn(x, "fc_bn", 32)
    plain = n.save(tmp_path / "enc.onnx", out, (1, 32))
    # the same graph as SFace ships it: initializers also listed as graph inputs, and a
    # dangling input no node reads
    listed = [
        helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
        for t in n.inits
        if t.data_type == TensorProto.FLOAT
    ]
    dangling = helper.make_tensor_value_info("c1_w_unused", TensorProto.FLOAT, [8, 3, 3, 3])
    messy = n.save(tmp_path / "enc_messy.onnx", out, (1, 32), extra_inputs=[*listed, dangling])
    return plain, messy


def _ort(path: Path, x_nchw: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # the reference semantics: optimised ORT may fuse DequantizeLinear + MatMul into a
    # kernel that also quantizes the activations
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return np.asarray(sess.run(None, {sess.get_inputs()[0].name: x_nchw})[0])


def _close(got: np.ndarray, want: np.ndarray, rel: float = 1e-4) -> None:
    assert got.shape == want.shape
    err = float(np.abs(got - want).max())
    assert err < rel * float(np.abs(want).max()), (err, float(np.abs(want).max()))


def _tflite(model: Any, x_nhwc: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(
        model_content=tf.lite.TFLiteConverter.from_keras_model(model).convert()
    )
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x_nhwc)
    interpreter.invoke()
    return np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


def _pixels(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (1, 3, H, W)).astype(np.float32)


def test_encoder_matches_onnxruntime_and_tflite(tmp_path: Path) -> None:
    plain, messy = _encoder(tmp_path)
    x = _pixels()
    want = _ort(plain, x)
    model = keras_from_onnx(messy)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    assert model.input_shape == (None, H, W, 3)
    _close(np.asarray(model(x_nhwc)), want)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert "Permute" not in kinds  # Flatten -> Dense: weight rows permuted instead
    assert kinds.count("BatchNormalization") == 1  # only bn1; the others folded
    assert kinds.count("DepthwiseConv2D") == 1 and kinds.count("ZeroPadding2D") == 1
    assert {"c1", "dw", "fc", "c1_prelu"} <= {layer.name for layer in model.layers}
    _close(_tflite(model, x_nhwc), want)


def test_flatten_as_output_keeps_onnx_order(tmp_path: Path) -> None:
    n = _Net(seed=2)
    x = n.node("Relu", [n.conv("data", "conv", 3, 4, 3, strides=[2, 2])], "relu")
    path = n.save(tmp_path / "flat.onnx", n.node("Flatten", [x], "flat"), (1, 4 * 7 * 7))
    x = _pixels(1) / 255
    model = keras_from_onnx(path)
    assert "Permute" in [type(layer).__name__ for layer in model.layers]
    _close(np.asarray(model(x.transpose(0, 2, 3, 1))), _ort(path, x))


def test_pools_clip_and_constant_ops(tmp_path: Path) -> None:
    """auto_pad SAME_UPPER, Clip 0..6, MaxPool, AveragePool with pads, LeakyRelu, Sigmoid,
    tensor * tensor, Div by a constant, GlobalAveragePool, Reshape (N, -1), MatMul, Add;
    per-tensor and per-axis DequantizeLinear."""
    n = _Net(seed=3)
    x = n.conv("data", "conv", 3, 6, 3, strides=[2, 2], auto_pad="SAME_UPPER")  # 8x8
    x = n.node("Clip", [x, n.const("lo", np.float32(0)), n.const("hi", np.float32(6))], "clip")
    x = n.node("MaxPool", [x], "maxpool", kernel_shape=[2, 2], strides=[2, 2])  # 4x4
    x = n.node("AveragePool", [x], "avgpool", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    x = n.node("LeakyRelu", [x], "leaky", alpha=0.2)
    gate = n.node("Sigmoid", [x], "gate")
    x = n.node("Mul", [x, gate], "gated")
    q4 = [n.const("q4", np.full((6, 1, 1), 40, np.uint8)), n.const("q4_s", np.float32(0.1))]
    x = n.node("Div", [x, n.node("DequantizeLinear", q4, "q4_deq")], "div")  # per tensor
    x = n.node("GlobalAveragePool", [x], "gap")
    x = n.node("Reshape", [x, n.const("shape", np.array([1, -1], np.int64))], "reshape")
    w = n.rng.normal(0, 0.5, (6, 10)).astype(np.float32)
    scale = (np.abs(w).max(axis=0) / 127).astype(np.float32)
    q = [n.const("mm_q", np.round(w / scale).astype(np.int8)), n.const("mm_s", scale)]
    x = n.node("MatMul", [x, n.node("DequantizeLinear", q, "mm_w", axis=1)], "matmul")
    out = n.node("Add", [x, n.const("mm_b", np.arange(10, dtype=np.float32))], "bias")
    path = n.save(tmp_path / "misc.onnx", out, (1, 10))
    x = _pixels(2) / 64
    model = keras_from_onnx(path)
    _close(np.asarray(model(x.transpose(0, 2, 3, 1))), _ort(path, x))


def test_inspect_onnx(tmp_path: Path) -> None:
    _, messy = _encoder(tmp_path)
    info = inspect_onnx(messy)
    assert info == OnnxEncoderInfo(
        input_name="data",
        channels=3,
        height=H,
        width=W,
        embedding_size=32,
        ops={
            "Sub": 1,
            "Mul": 1,
            "DequantizeLinear": 1,
            "Reshape": 1,
            "Conv": 4,
            "BatchNormalization": 6,
            "PRelu": 2,
            "Relu": 1,
            "Add": 1,
            "Constant": 1,
            "Dropout": 1,
            "Flatten": 1,
            "Gemm": 1,
        },
    )


def test_unsupported_op_is_named(tmp_path: Path) -> None:
    n = _Net()
    scales = n.const("scales", np.array([1, 1, 2, 2], np.float32))
    x = n.node("Resize", ["data", "", scales], "upsample")
    n.node("Flatten", [x], "flat")
    path = n.save(tmp_path / "resize.onnx", "flat", (1, 3 * 4 * H * W))
    with pytest.raises(OnnxImportError, match=r"resize\.onnx: unsupported ONNX op Resize"):
        keras_from_onnx(path)


def test_not_onnx_and_two_inputs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_text("this is not an ONNX model\n")
    for fn in (keras_from_onnx, inspect_onnx):
        with pytest.raises(OnnxImportError, match=r"bad\.onnx: not an ONNX model"):
            fn(bad)
    with pytest.raises(OnnxImportError, match="no such ONNX file"):
        inspect_onnx(tmp_path / "missing.onnx")
    n = _Net()
    n.node("Flatten", [n.node("Add", ["a", "b"], "add")], "flat")
    two = [("a", (1, 3, H, W)), ("b", (1, 3, H, W))]
    path = n.save(tmp_path / "two.onnx", "flat", (1, 3 * H * W), inputs=two)
    with pytest.raises(OnnxImportError, match=r"exactly one input, found 2 \(a, b\)"):
        keras_from_onnx(path)
