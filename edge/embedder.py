"""The TFLite embedder: quantize the aligned face, invoke, dequantize, post-process.

Works for full-int8 (uint8 or int8 input), dynamic-range and float models alike: the
tensors' own quantization parameters say what to do. L2-normalisation and mirror
averaging happen here in numpy, as the bundle's manifest says, never inside the graph.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.bundle import BundleError, EncoderSpec
from edge.tflite import load_interpreter
from edge.types import AlignedFace, Embedding

logger = logging.getLogger(__name__)


def quantize(image: NDArray[np.uint8], detail: dict[str, Any]) -> NDArray[Any]:
    """The input tensor for one RGB face, in the dtype and scale the model expects."""
    dtype = detail["dtype"]
    scale, zero = detail["quantization"]
    x = image.astype(np.float32)[None]
    if dtype == np.float32:
        return x
    if scale == 1.0 and zero == 0 and dtype == np.uint8:
        return image[None]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def dequantize(raw: NDArray[Any], detail: dict[str, Any]) -> NDArray[np.float32]:
    scale, zero = detail["quantization"]
    if detail["dtype"] == np.float32 or scale == 0:
        return raw.astype(np.float32)
    return ((raw.astype(np.float32) - zero) * scale).astype(np.float32)


class TFLiteEmbedder:
    """Embeds aligned faces with the bundle's encoder."""

    def __init__(
        self,
        model: Path,
        spec: EncoderSpec,
        encoder_id: str,
        num_threads: int = 1,
        runtime: str | None = None,
    ) -> None:
        self.spec = spec
        self.encoder_id = encoder_id
        self._interpreter = load_interpreter(
            model, num_threads=num_threads, prefer=runtime, runtimes=spec.runtimes
        )
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        size = spec.input_size
        expected = (size, size, 3)
        if tuple(self._input["shape"][1:]) != expected:
            raise BundleError(
                f"{model}: the encoder takes {'x'.join(str(int(v)) for v in self._input['shape'][1:3])} "
                f"pixel faces, the "
                f"manifest says {size}x{size} (encoder.input_size): the bundle was edited or "
                "mixed with another one's files; build it again or copy it whole"
            )

    def raw(self, image: NDArray[np.uint8]) -> NDArray[np.float32]:
        """The encoder's output for one face, dequantized, before any post-processing."""
        self._interpreter.set_tensor(self._input["index"], quantize(image, self._input))
        self._interpreter.invoke()
        return dequantize(self._interpreter.get_tensor(self._output["index"])[0], self._output)

    def vector(self, image: NDArray[np.uint8]) -> NDArray[np.float32]:
        v = self.raw(image)
        if self.spec.mirror_average:
            v = (v + self.raw(np.ascontiguousarray(image[:, ::-1]))) / 2
        if self.spec.l2_normalize:
            v = v / max(float(np.linalg.norm(v)), 1e-12)
        return v.astype(np.float32)

    def embed(self, faces: list[AlignedFace]) -> list[Embedding]:
        return [Embedding(self.vector(face.image), self.encoder_id) for face in faces]
