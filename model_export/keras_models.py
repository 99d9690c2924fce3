"""Keras rebuild of dlib's face-recognition ResNet from a parsed ``DlibNet``.

Input: float32 RGB pixels in 0..255, NHWC (None, 150, 150, 3); output: the raw
128-d dlib descriptor (not L2-normalised; dlib's 0.6 threshold is plain
Euclidean distance). Foldings (exact up to float rounding):

* input_rgb_image's ``(pixel - mean) / 256`` is folded into the first conv
  (valid padding, so no border effect);
* every ``affine`` (inference batch-norm) is folded into the preceding conv.

dlib's ``add_prev`` with mismatched shapes zero-pads each operand at the END of
every dimension to the elementwise max shape (tt::add); in this net that pads
the skip path's channels and, at 8->3 vs 8->4 and 4->1 vs 4->2, the conv path's
rows/cols at the bottom/right.
"""

from __future__ import annotations

from collections.abc import Iterator

import keras
import numpy as np

from model_export.dlib_arch import RESNET_BLOCKS, check_architecture
from model_export.dlib_import import DlibLayer, DlibNet

__all__ = ["ZeroPadTo", "build_dlib_resnet"]


class ZeroPadTo(keras.layers.Layer):
    """Zero-pad an NHWC tensor at the end of H, W and C up to a target shape."""

    def __init__(self, rows: int, cols: int, channels: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.target = (rows, cols, channels)

    def call(self, x: keras.KerasTensor) -> keras.KerasTensor:
        _, h, w, c = x.shape
        rows, cols, channels = self.target
        return keras.ops.pad(x, [[0, 0], [0, rows - h], [0, cols - w], [0, channels - c]])

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (input_shape[0], *self.target)

    def get_config(self) -> dict[str, object]:
        rows, cols, channels = self.target
        return {**super().get_config(), "rows": rows, "cols": cols, "channels": channels}


class _Cursor:
    """Walks the forward-order layer list, skipping tag/skip markers."""

    def __init__(self, net: DlibNet) -> None:
        self._it: Iterator[DlibLayer] = (x for x in net.layers if x.kind != "tag_or_skip")

    def take(self, kind: str) -> DlibLayer:
        layer = next(self._it)
        if layer.kind != kind:
            raise ValueError(f"builder expected {kind}, file has {layer.kind}")
        return layer


def _folded_conv(
    con: DlibLayer, affine: DlibLayer, mean: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return Keras (kh, kw, cin, cout) kernel and bias of affine(con(x))."""
    w = con.arrays["filters"].astype(np.float64)  # (cout, cin, kh, kw), cross-correlation
    b = con.arrays["biases"].astype(np.float64)
    if mean is not None:  # x_dlib = (x - mean) / 256
        b = b - np.einsum("oikl,i->o", w, mean) / 256.0
        w = w / 256.0
    gamma = affine.arrays["gamma"].reshape(-1).astype(np.float64)
    beta = affine.arrays["beta"].reshape(-1).astype(np.float64)
    kernel = (w * gamma[:, None, None, None]).transpose(2, 3, 1, 0)
    return kernel.astype(np.float32), (gamma * b + beta).astype(np.float32)


def _conv_bn(
    x: keras.KerasTensor, cur: _Cursor, name: str, mean: np.ndarray | None = None
) -> keras.KerasTensor:
    con = cur.take("con")
    kernel, bias = _folded_conv(con, cur.take("affine"), mean)
    stride = int(con.attrs["stride_y"])
    padding = "same" if con.attrs["padding_y"] == con.attrs["nr"] // 2 > 0 else "valid"
    if stride != 1 and con.attrs["padding_y"] != 0:
        raise ValueError("strided conv with padding is not used by this net")
    layer = keras.layers.Conv2D(
        kernel.shape[-1], kernel.shape[:2], strides=stride, padding=padding, name=name
    )
    y = layer(x)
    layer.set_weights([kernel, bias])
    return y


def _residual(
    x: keras.KerasTensor, cur: _Cursor, n: int, down: bool, name: str
) -> keras.KerasTensor:
    y = keras.layers.ReLU(name=f"{name}_relu1")(_conv_bn(x, cur, f"{name}_conv1"))
    cur.take("relu")
    y = _conv_bn(y, cur, f"{name}_conv2")
    skip = x
    if down:
        cur.take("avg_pool")
        skip = keras.layers.AveragePooling2D(2, 2, padding="valid", name=f"{name}_pool")(x)
    cur.take("add_prev")
    shape = tuple(max(a, b) for a, b in zip(y.shape[1:], skip.shape[1:], strict=True))
    if tuple(y.shape[1:]) != shape:
        y = ZeroPadTo(*shape, name=f"{name}_pad_main")(y)
    if tuple(skip.shape[1:]) != shape:
        skip = ZeroPadTo(*shape, name=f"{name}_pad_skip")(skip)
    cur.take("relu")
    out = keras.layers.Add(name=f"{name}_add")([y, skip])
    return keras.layers.ReLU(name=f"{name}_relu2")(out)


def build_dlib_resnet(net: DlibNet) -> keras.Model:
    """Build the float32 Keras model (RGB 0..255 in, 128-d dlib descriptor out)."""
    check_architecture(net)
    cur = _Cursor(net)
    inputs = keras.Input((net.input.rows, net.input.cols, 3), dtype="float32", name="rgb")
    mean = np.asarray(net.input.mean_rgb, dtype=np.float64)
    x = keras.layers.ReLU(name="stem_relu")(_conv_bn(inputs, cur, "stem_conv", mean))
    cur.take("relu")
    cur.take("max_pool")
    x = keras.layers.MaxPooling2D(3, 2, padding="valid", name="stem_pool")(x)
    for i, (n, down) in enumerate(RESNET_BLOCKS):
        x = _residual(x, cur, n, down, f"res{i:02d}_{n}{'d' if down else ''}")
    cur.take("avg_pool")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool_everything")(x)
    fc = keras.layers.Dense(cur.take("fc").attrs["num_outputs"], use_bias=False, name="fc")
    out = fc(x)
    fc.set_weights([net.layers[-1].arrays["weights"]])
    return keras.Model(inputs, out, name="dlib_face_resnet_v1")
