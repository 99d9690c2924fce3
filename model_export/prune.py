"""A small student cut out of a teacher encoder: its first weights, not random ones.

For a teacher that is a chain of convolutions (MobileNet-style, as SFace: conv, depthwise
conv, PReLU, padding, batch norm, one dense layer; no branches), ``pruned_student`` keeps
the same layers with a fraction of the channels of each, chosen by the L1 norm of their
weights (the channels that carry most), optionally leaves out whole depthwise-separable
blocks that keep the shape (stride 1, as many channels out as in), and swaps every PReLU
for ReLU (LiteRT runs int8 PReLU on a slow reference kernel). The result starts from
the teacher's filters; distillation then trains it to the teacher's embeddings. With
``keep=1``, ``relu=False`` and ``batch_norm=False`` it is the teacher itself (the unit
test's check). ``batch_norm`` (the default) puts a batch norm after every convolution:
the teacher's were folded into its weights, and a cut network's activations no longer
have the scale those weights expect, which stalls training without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from keras import layers

__all__ = ["PruneError", "PruneReport", "pruned_student", "resample_dense"]


class PruneError(ValueError):
    """The teacher is not a chain of the layers this can cut."""


@dataclass
class PruneReport:
    kept: dict[str, tuple[int, int]] = field(default_factory=dict)  # layer -> (kept, of)
    channels: dict[str, np.ndarray] = field(default_factory=dict)  # layer -> teacher channels
    dropped: list[str] = field(default_factory=list)
    prelu_slopes: dict[str, float] = field(default_factory=dict)  # mean slope replaced


def _round8(n: float) -> int:
    return max(8, round(n / 8) * 8)


def _chain(model: keras.Model) -> list[keras.layers.Layer]:
    out = []
    previous = None
    for layer in model.layers:
        parents = [n.operation for node in layer._inbound_nodes for n in node.parent_nodes]
        if previous is not None and parents != [previous]:
            raise PruneError(
                f"{model.name}: layer {layer.name} does not follow {previous.name} alone "
                "(only a plain chain of layers can be cut: no residual branches)"
            )
        out.append(layer)
        previous = layer
    return out


def _block_of(name: str) -> str:
    """'conv_9_dw_conv2d' -> 'conv_9' (the teacher's block names)."""
    parts = name.split("_")
    return "_".join(parts[:2]) if len(parts) >= 2 else name


def keep_for(keep: float | dict[int, float], height: int) -> float:
    """The fraction of channels kept in a layer whose output is ``height`` rows high:
    one fraction for all, or one per resolution (the layers at 14x14 cost a sixteenth of
    those at 56x56 per channel, so a cut may keep more of them)."""
    if isinstance(keep, dict):
        fits = [k for k in keep if k >= height]
        return keep[min(fits)] if fits else keep[max(keep)]
    return keep


def pruned_student(
    teacher: keras.Model,
    keep: float | dict[int, float],
    drop_blocks: tuple[str, ...] = (),
    relu: bool = True,
    batch_norm: bool = True,
    name: str = "student",
    stem_stride: int = 1,
    scale: int = 1,
) -> tuple[keras.Model, PruneReport]:
    """The cut-down model (float32 RGB 0-255 in, raw embedding out) and what was kept.

    ``stem_stride=2`` runs the first convolution at stride 2 and the first downsampling
    depthwise convolution at stride 1: the same maps from then on, the first two layers
    at a quarter of the cost.

    ``scale=2`` runs the whole cut at half resolution: the 112x112 face is averaged 2x2
    (56x56) first, every layer keeps its stride, so every map is
    half the teacher's size (a quarter of the multiply-adds) and the last map is 4x4
    instead of 7x7; the dense layer's weights of the teacher positions a student position
    covers are summed (``resample_dense``), so a student map that equals the teacher's
    averaged over those positions gives the teacher's embedding."""
    chain = _chain(teacher)
    report = PruneReport()
    inp = keras.Input(teacher.input_shape[1:], name="face")
    x: Any = inp
    if scale > 1:  # before the input normalisation: an average commutes with it
        x = layers.AveragePooling2D(scale, name="half_resolution")(x)
    channels = np.arange(teacher.input_shape[-1])  # kept channels of the current tensor
    convs = [ly for ly in chain if isinstance(ly, layers.Conv2D)]
    shift, spatial, student_spatial = 0.0, (1, 1), (1, 1)
    first_conv = convs[0].name if convs else ""
    first_down = next(
        (
            ly.name
            for ly in chain
            if isinstance(ly, layers.DepthwiseConv2D) and ly.strides != (1, 1)
        ),
        "",
    )
    for layer in chain[1:]:
        block = _block_of(layer.name)
        if block in drop_blocks:
            conv = isinstance(layer, layers.Conv2D | layers.DepthwiseConv2D)
            if conv and (
                layer.strides != (1, 1)
                or (isinstance(layer, layers.Conv2D) and layer.filters != layer.input.shape[-1])
            ):
                raise PruneError(f"block {block} changes the shape: it cannot be left out")
            if block not in report.dropped:
                report.dropped.append(block)
            continue
        weights = layer.get_weights()
        if isinstance(layer, layers.DepthwiseConv2D):
            kernel, bias = weights[0][:, :, channels, :], weights[1][channels]
            strides = (1, 1) if stem_stride == 2 and layer.name == first_down else layer.strides
            new = layers.DepthwiseConv2D(layer.kernel_size, strides, padding=layer.padding,
                                         use_bias=True, name=layer.name)  # fmt: skip
            x = new(x)
            new.set_weights([kernel, bias])
            if batch_norm:
                x = layers.BatchNormalization(name=f"{layer.name}_bn")(x)
        elif isinstance(layer, layers.Conv2D):
            if layer.groups != 1:
                raise PruneError(f"{layer.name}: grouped convolutions are not supported")
            kernel = weights[0][:, :, channels, :]
            bias = weights[1] if len(weights) > 1 else np.zeros(kernel.shape[-1], np.float32)
            total = kernel.shape[-1]
            fraction = keep_for(keep, int(layer.output.shape[1]))
            n = total if fraction >= 1 else min(total, _round8(total * fraction))
            order = np.argsort(-np.abs(kernel).sum(axis=(0, 1, 2)), kind="stable")
            out_channels = np.sort(order[:n])
            strides = (stem_stride, stem_stride) if layer.name == first_conv else layer.strides
            new = layers.Conv2D(n, layer.kernel_size, strides, padding=layer.padding,
                                use_bias=True, name=layer.name)  # fmt: skip
            x = new(x)
            new.set_weights([kernel[..., out_channels], bias[out_channels]])
            if batch_norm:
                x = layers.BatchNormalization(name=f"{layer.name}_bn")(x)
            report.kept[layer.name] = (n, total)
            report.channels[layer.name] = out_channels
            channels = out_channels
        elif isinstance(layer, layers.PReLU):
            alpha = weights[0].reshape(-1)[channels]
            if relu:
                report.prelu_slopes[layer.name] = float(alpha.mean())
                x = layers.ReLU(name=layer.name)(x)
            else:
                new = layers.PReLU(shared_axes=layer.shared_axes, name=layer.name)
                x = new(x)
                new.set_weights([alpha.reshape(1, 1, -1)])
        elif isinstance(layer, layers.ZeroPadding2D):
            x = layers.ZeroPadding2D(layer.padding, name=layer.name)(x)
        elif isinstance(layer, layers.BatchNormalization):
            new = layers.BatchNormalization(epsilon=layer.epsilon, name=layer.name)
            x = new(x)
            new.set_weights([w[channels] if w.shape[0] > len(channels) else w for w in weights])
        elif isinstance(layer, layers.Flatten):
            spatial = tuple(layer.input.shape[1:3])
            student_spatial = tuple(x.shape[1:3])
            x = layers.Flatten(name=layer.name)(x)
        elif isinstance(layer, layers.Dense):
            kernel = weights[0]
            full = kernel.shape[0] // (spatial[0] * spatial[1])
            kernel = kernel.reshape(spatial[0], spatial[1], full, -1)[:, :, channels, :]
            if student_spatial != spatial:
                kernel = resample_dense(kernel, student_spatial)
            kernel = kernel.reshape(-1, kernel.shape[-1])
            new = layers.Dense(kernel.shape[-1], name=layer.name)
            x = new(x)
            new.set_weights(
                [kernel, weights[1] if len(weights) > 1 else np.zeros(kernel.shape[-1])]
            )
        elif type(layer).__name__ == "OnnxConstOp" and layer.op in ("subtract", "multiply"):
            # the input normalisation, (x - c) * s: a Rescaling layer keeps the student
            # loadable without the ONNX importer's own layer class
            c = float(np.asarray(layer.get_weights()[0]).reshape(-1)[0])
            if layer.op == "subtract":
                shift = c
                continue
            x = layers.Rescaling(c, offset=-shift * c, name="normalise")(x)
        else:
            raise PruneError(f"{layer.name}: a {type(layer).__name__} layer cannot be cut")
    return keras.Model(inp, x, name=name), report


def resample_dense(kernel: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A flatten-dense kernel (H, W, C, D) for a smaller map (h, w, C, D): the weights of
    the teacher positions that each student position covers, summed. A student map
    strided by s = ceil(H / h) covers teacher rows s*i .. s*i + s - 1 (the last row group
    may be shorter: 7 rows -> 4 groups {0,1}, {2,3}, {4,5}, {6})."""
    (big_h, big_w), (h, w) = kernel.shape[:2], size
    sh, sw = -(-big_h // h), -(-big_w // w)
    out = np.zeros((h, w, *kernel.shape[2:]), kernel.dtype)
    for i in range(h):
        for j in range(w):
            out[i, j] = kernel[sh * i : sh * (i + 1), sw * j : sw * (j + 1)].sum(axis=(0, 1))
    return out
