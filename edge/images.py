"""Reading photos: any format OpenCV decodes, returned as RGB uint8, with clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge.errors import EdgeError
from edge.types import BBox, RGBImage


class ImageError(EdgeError):
    """A file is not a readable image."""


def decode_image(data: bytes, name: str = "image") -> RGBImage:
    if not data:
        raise ImageError(f"{name}: empty file")
    buf = np.frombuffer(data, np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(
            f"{name}: not an image OpenCV can decode (corrupt, truncated or another format)"
        )
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.dtype != np.uint8:
        raise ImageError(f"{name}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: Path) -> RGBImage:
    """The image at ``path`` as RGB uint8 (grey and RGBA are converted)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return decode_image(data, str(path))


def encode_crop(image: RGBImage, box: BBox) -> bytes | None:
    """The part of an RGB image inside ``box`` as JPEG bytes; None when the box is empty."""
    h, w = image.shape[:2]
    x1, y1 = max(0, int(box.x1)), max(0, int(box.y1))
    x2, y2 = min(w, int(box.x2)), min(h, int(box.y2))
    if x2 <= x1 or y2 <= y1:
        return None
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image[y1:y2, x1:x2], cv2.COLOR_RGB2BGR))
    return jpeg.tobytes() if ok else None
