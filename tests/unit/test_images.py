"""Reading photos (edge/images.py): what is refused before any decoding, and why."""

from __future__ import annotations

import os
import struct
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.images import MAX_PIXELS, ImageError, declared_size, read_image


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height and holds one tiny compressed row: what a
    decompression bomb looks like before decoding."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * (1 + 3 * width)))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp", ".gif"])
def test_the_declared_size_is_read_from_the_header(tmp_path: Path, ext: str) -> None:
    image = np.zeros((37, 53, 3), np.uint8)
    path = tmp_path / f"p{ext}"
    if ext == ".gif":
        path.write_bytes(b"GIF89a" + struct.pack("<HH", 53, 37) + b"\0" * 10)
    else:
        assert cv2.imwrite(str(path), image)
    assert declared_size(path.read_bytes()) == (53, 37)


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(20000, 20000))
    assert bomb.stat().st_size < 2**20 and MAX_PIXELS < 20000 * 20000
    began = time.monotonic()
    with pytest.raises(ImageError, match="20000x20000 pixels"):
        read_image(bomb)
    assert time.monotonic() - began < 1


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    fifo = tmp_path / "camera.jpg"
    os.mkfifo(fifo)
    result: list[BaseException] = []

    def read() -> None:
        try:
            read_image(fifo)
        except ImageError as exc:
            result.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(2)
    assert not reader.is_alive(), "reading a FIFO hung"
    assert "not a regular file" in str(result[0])
    with pytest.raises(ImageError, match="not a regular file"):
        read_image(Path("/dev/zero"))
    with pytest.raises(ImageError, match="not a regular file"):
        read_image(tmp_path)


def test_a_huge_file_is_refused_by_its_size(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    with big.open("wb") as fh:
        fh.truncate(51 * 2**20)  # sparse: no disk used
    with pytest.raises(ImageError, match="51 MB"):
        read_image(big)


def test_a_normal_photo_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "ok.png"
    cv2.imwrite(str(path), np.full((10, 20, 3), (0, 0, 255), np.uint8))  # red in BGR
    image = read_image(path)
    assert image.shape == (10, 20, 3) and image[0, 0].tolist() == [255, 0, 0]
