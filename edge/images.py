"""Reading photos: JPEG, PNG, WebP, BMP, GIF or TIFF, returned as RGB uint8, with clear
errors.

Guarded before any decoding: only regular files (a FIFO or a device named ``.jpg`` would
hang or never end), at most ``MAX_FILE_BYTES``, and at most ``MAX_PIXELS`` as the file's
header declares them (a 1 MB PNG can declare 20000x20000 pixels and take gigabytes to
decode). Other formats OpenCV reads (PPM/PBM, Radiance HDR, AVIF, ...) are refused: their
pixels cannot be counted before decoding (a 1.2 MB TIFF or an 8 MB PBM of 8001x8001
pixels was a bomb until TIFF's header was read too)."""

from __future__ import annotations

import stat
import struct
from pathlib import Path

import cv2
import numpy as np

from edge.errors import EdgeError
from edge.types import BBox, RGBImage

#: the largest photo file read (bytes)
MAX_FILE_BYTES = 50 * 2**20
#: the most pixels a photo may declare (a 48-megapixel phone photo is 8000x6000)
MAX_PIXELS = 64_000_000


class ImageError(EdgeError):
    """A file is not a readable image."""


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    # as libjpeg reads markers: bytes before a marker are skipped ("extraneous bytes before
    # marker"), so a stray byte must not end the search for the frame header
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF or data[i + 1] == 0x00:  # not a marker (0xFF00: a stuffed 0xFF)
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xFF, 0x01) or 0xD0 <= marker <= 0xD9:  # fill byte or no length
            i += 1 if marker == 0xFF else 2
            continue
        if marker in _JPEG_SOF:
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + max(2, struct.unpack(">H", data[i + 2 : i + 4])[0])
    return None


_TIFF_VALUE = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 16: "Q", 17: "q"}


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """ImageWidth and ImageLength of the first directory (the page OpenCV decodes), classic
    TIFF or BigTIFF; None when either is missing or unreadable. A tag given twice counts
    at its largest."""
    order = "<" if data[:2] == b"II" else ">"
    try:
        (version,) = struct.unpack(order + "H", data[2:4])
        if version == 42:
            (at,) = struct.unpack(order + "I", data[4:8])
            (count,) = struct.unpack(order + "H", data[at : at + 2])
            first, size, head, field = at + 2, 12, "HHI", 4
        elif version == 43:
            (at,) = struct.unpack(order + "Q", data[8:16])
            (count,) = struct.unpack(order + "Q", data[at : at + 8])
            first, size, head, field = at + 8, 20, "HHQ", 8
        else:
            return None
        dims: dict[int, int] = {}
        for n in range(min(count, (len(data) - first) // size)):
            entry = first + n * size
            tag, kind, _ = struct.unpack(order + head, data[entry : entry + size - field])
            if tag in (256, 257):
                code = _TIFF_VALUE.get(kind)
                if code is None or struct.calcsize(code) > field:
                    return None
                value = data[entry + size - field : entry + size]
                (number,) = struct.unpack(order + code, value[: struct.calcsize(code)])
                dims[tag] = max(dims.get(tag, 0), abs(number))
    except struct.error:
        return None
    return (dims[256], dims[257]) if len(dims) == 2 else None


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as the header declares them, for PNG, JPEG, GIF, BMP, WebP and TIFF;
    None for other formats or a header too short to tell."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return abs(w), abs(h)
    if data[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return _tiff_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        kind = data[12:16]
        if kind == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(
                data[27:30], "little"
            )
        if kind == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        if kind == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
    return None


def decode_image(data: bytes, name: str = "image") -> RGBImage:
    if not data:
        raise ImageError(f"{name}: empty file")
    size = declared_size(data)
    if size is None:  # another format (PPM, HDR, AVIF...): its pixels cannot be counted first
        raise ImageError(
            f"{name}: not a JPEG, PNG, WebP, BMP, GIF or TIFF photo (or its header is damaged)"
        )
    if size[0] * size[1] > MAX_PIXELS:
        raise ImageError(
            f"{name}: {size[0]}x{size[1]} pixels, more than the {MAX_PIXELS // 10**6} million "
            "a photo may have: scale it down first"
        )
    buf = np.frombuffer(data, np.uint8)
    try:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error:  # OpenCV's own checks (its pixel limit, a damaged header) raise
        image = None
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
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ImageError(f"{path}: not a regular file (a device, a pipe or a folder)")
        if info.st_size > MAX_FILE_BYTES:
            raise ImageError(
                f"{path}: {info.st_size // 2**20} MB, more than the {MAX_FILE_BYTES // 2**20} MB "
                "a photo may have"
            )
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)  # a file that grew since: still bounded
    except OSError as exc:
        raise ImageError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{path}: more than the {MAX_FILE_BYTES // 2**20} MB a photo may have")
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
