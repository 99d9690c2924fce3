"""A small face encoder to train: MobileFaceNet's shape, with ReLU, scaled by width.

MobileFaceNet (Chen et al., 2018) is a MobileNetV2-style network for 112x112 faces:
inverted-residual blocks of depthwise-separable convolutions with batch norm, and a
global depthwise convolution (GDC) in place of average pooling, so the embedding keeps
where on the face each feature is. Two departures, both for the device:

- ReLU instead of PReLU: LiteRT's XNNPACK back-end runs int8 PReLU only on a slow
  reference kernel (an int8 MobileNet-style encoder ran slower than its float version);
- a width multiplier (``width``): 1.0 is the paper's network (about 220 M multiply-adds
  per face), 0.5 about a quarter of that.

Input: float32 RGB 0-255, (None, 112, 112, 3), normalised inside the graph; output: the
raw embedding (not L2-normalised: that happens in numpy after dequantizing, outside the
int8 graph).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
from keras import layers

__all__ = ["StudentConfig", "build_student"]

# (expansion t, output channels c at width 1, repeats n, first stride s): the paper's table
BLOCKS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


@dataclass(frozen=True, slots=True)
class StudentConfig:
    width: float = 0.5
    embedding_size: int = 128
    input_size: int = 112
    head_channels: int = 512  # the 1x1 expansion before the GDC, at width 1
    dropout: float = 0.0  # before the embedding layer (training only)

    def record(self) -> dict[str, object]:
        return asdict(self)


def _ch(c: float) -> int:
    """Channels rounded to a multiple of 8 (what int8 kernels vectorise best)."""
    return max(8, int(c + 4) // 8 * 8)


def _conv_bn(x: keras.KerasTensor, filters: int, kernel: int, stride: int, name: str,
             relu: bool = True) -> keras.KerasTensor:  # fmt: skip
    x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=f"{name}_conv")(
        x
    )
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _dw_bn(x: keras.KerasTensor, stride: int, name: str, kernel: int = 3,
           padding: str = "same", relu: bool = True) -> keras.KerasTensor:  # fmt: skip
    x = layers.DepthwiseConv2D(kernel, stride, padding=padding, use_bias=False, name=f"{name}_dw")(
        x
    )
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _bottleneck(x: keras.KerasTensor, t: int, c: int, stride: int, name: str) -> keras.KerasTensor:
    cin = x.shape[-1]
    y = _conv_bn(x, cin * t, 1, 1, f"{name}_expand")
    y = _dw_bn(y, stride, f"{name}_depthwise")
    y = _conv_bn(y, c, 1, 1, f"{name}_project", relu=False)
    if stride == 1 and cin == c:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def build_student(config: StudentConfig | None = None) -> keras.Model:
    """The untrained encoder (see the module doc)."""
    cfg = config or StudentConfig()
    size = cfg.input_size
    inp = keras.Input((size, size, 3), name="face")
    x = layers.Rescaling(1 / 128, offset=-127.5 / 128, name="normalise")(inp)
    stem = _ch(64 * cfg.width)
    x = _conv_bn(x, stem, 3, 2, "stem")
    x = _dw_bn(x, 1, "stem_depthwise")
    for i, (t, c, n, s) in enumerate(BLOCKS):
        for j in range(n):
            x = _bottleneck(x, t, _ch(c * cfg.width), s if j == 0 else 1, f"block{i}_{j}")
    x = _conv_bn(x, _ch(cfg.head_channels * cfg.width), 1, 1, "head")
    # global depthwise convolution: one weight per channel and position, no activation
    x = _dw_bn(x, 1, "gdc", kernel=x.shape[1], padding="valid", relu=False)
    if cfg.dropout:
        x = layers.Dropout(cfg.dropout, name="dropout")(x)
    x = layers.Conv2D(cfg.embedding_size, 1, use_bias=False, name="embedding_conv")(x)
    x = layers.BatchNormalization(name="embedding_bn")(x)
    out = layers.Flatten(name="embedding")(x)
    return keras.Model(inp, out, name=f"student_w{cfg.width:g}")
