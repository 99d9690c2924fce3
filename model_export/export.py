"""TFLite export of a Keras face encoder in each quantization the build can choose from.

- ``int8`` (full integer, calibrated on real aligned faces): input uint8 RGB
  (1, N, N, 3) with scale 1 / zero point 0 (raw pixels), output int8 (1, D): dequantize
  with the output tensor's (scale, zero_point).
- ``dynamic`` (dynamic range): int8 weights, float activations, float32 in and out.
- ``float16`` (float16 weights, computed in float32) and ``float32``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable, Iterator

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ chatter off the terminal

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "anchor_input_range",
    "convert",
    "to_dynamic_tflite",
    "to_float16_tflite",
    "to_float_tflite",
    "to_int8_tflite",
]

logger = logging.getLogger(__name__)


def anchor_input_range(chips: np.ndarray) -> np.ndarray:
    """Return a copy whose pixel range is exactly 0..255, so the calibrated input
    range is [0, 255] and the uint8 input gets scale 1 / zero point 0.

    At most one pixel of the first chip and one of the second is overwritten
    (only when 0 or 255 is missing from the whole set)."""
    out = chips.copy()
    if out.min() > 0:
        out[0, 0, 0, :] = 0
    if out.max() < 255:
        out[min(1, len(out) - 1), 0, 1, :] = 255
    return out


def _representative(chips: np.ndarray) -> Iterator[list[np.ndarray]]:
    for chip in chips:
        yield [chip[None].astype(np.float32)]


def to_int8_tflite(model: keras.Model, calibration_chips: np.ndarray) -> bytes:
    """Convert ``model`` (float32 0..255 RGB in) to a full-int8 TFLite flatbuffer.

    ``calibration_chips``: (N, 150, 150, 3) uint8 aligned face chips (a few hundred
    real dlib chips). Every op must be an int8 builtin; conversion fails otherwise.
    """
    if calibration_chips.dtype != np.uint8 or calibration_chips.ndim != 4:
        raise ValueError("calibration_chips must be uint8 NxHxWx3")
    chips = anchor_input_range(calibration_chips)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: _representative(chips)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.int8
    logger.info("calibrating int8 on %d chips", len(chips))
    flatbuffer: bytes = _quietly(converter.convert)
    logger.info("int8 model: %.2f MB", len(flatbuffer) / 1e6)
    return flatbuffer


def to_float_tflite(model: keras.Model) -> bytes:
    """Plain float32 TFLite export (latency/accuracy reference only)."""
    flatbuffer: bytes = _quietly(tf.lite.TFLiteConverter.from_keras_model(model).convert)
    return flatbuffer


def to_dynamic_tflite(model: keras.Model) -> bytes:
    """Dynamic-range quantization: int8 weights, float activations (no calibration)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    flatbuffer: bytes = _quietly(converter.convert)
    return flatbuffer


def to_float16_tflite(model: keras.Model) -> bytes:
    """float16 weights (half the size), dequantized to float32 when the model loads."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    flatbuffer: bytes = _quietly(converter.convert)
    return flatbuffer


def convert(model: keras.Model, quantization: str, calibration_chips: np.ndarray) -> bytes:
    """The model as a TFLite flatbuffer in the named quantization."""
    if quantization == "int8":
        return to_int8_tflite(model, calibration_chips)
    if quantization == "dynamic":
        return to_dynamic_tflite(model)
    if quantization == "float16":
        return to_float16_tflite(model)
    if quantization == "float32":
        return to_float_tflite(model)
    raise ValueError(f"unknown quantization {quantization!r}")


def _quietly(convert: Callable[[], bytes]) -> bytes:
    """Run the converter with Keras' printed export summary sent to the debug log."""
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        result = convert()
    logger.debug("converter output:\n%s", captured.getvalue())
    return result


def count_macs(model: keras.Model) -> int:
    """Multiply-adds per face of the convolutions and dense layers."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            _, h, w, c = layer.output.shape
            total += h * w * c * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            _, h, w, cout = layer.output.shape
            total += h * w * cout * kh * kw * cin // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)
