"""YuNet (OpenCV zoo, MIT) through ``cv2.FaceDetectorYN``.

Large images are downscaled so the long side is ``max_side`` (YuNet finds faces of about
10-300 px, and this bounds the cost per frame); small ones are never upscaled (that only
added false faces). One instance is not thread-safe: use one per thread.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from edge.types import BBox, Detection, RGBImage

logger = logging.getLogger(__name__)


def as_rgb(image: np.ndarray) -> RGBImage:
    """An HxWx3 uint8 view of a grey, RGB or RGBA image."""
    if image.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 4:
        return image[:, :, :3]
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image, got shape {image.shape}")


class YuNetDetector:
    """Faces in RGB images, with YuNet's five landmarks (right eye, left eye, nose tip,
    right and left mouth corners), highest score first."""

    def __init__(
        self,
        model_path: Path,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        max_side: int = 640,
        top_k: int = 5000,
    ) -> None:
        if not model_path.is_file():
            raise FileNotFoundError(f"YuNet model not found: {model_path}")
        self.max_side = max_side
        self._input_size = (320, 320)
        self._net = cv2.FaceDetectorYN.create(
            str(model_path), "", self._input_size, score_threshold, nms_threshold, top_k
        )

    def detect(self, image: RGBImage) -> list[Detection]:
        rgb = as_rgb(image)
        h, w = rgb.shape[:2]
        if h < 2 or w < 2:
            return []
        bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
        sx = sy = 1.0
        if max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            bgr = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA)
            sx, sy = w / nw, h / nh
        size = (bgr.shape[1], bgr.shape[0])
        if size != self._input_size:
            self._net.setInputSize(size)
            self._input_size = size
        _, faces = self._net.detect(bgr)
        if faces is None:
            return []
        out = []
        for row in np.asarray(faces, dtype=np.float32):
            x, y, bw, bh = (float(v) for v in row[:4])
            landmarks = row[4:14].reshape(5, 2) * np.array([sx, sy], np.float32)
            box = BBox(x * sx, y * sy, (x + bw) * sx, (y + bh) * sy)
            out.append(Detection(box, float(row[14]), landmarks.astype(np.float32)))
        out.sort(key=lambda d: d.score, reverse=True)
        return out
