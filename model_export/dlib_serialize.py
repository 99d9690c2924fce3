"""Pure-numpy primitives for dlib's ``serialize`` binary format (no dlib import).

Encodings (dlib/serialize.h, dlib/dnn/tensor.h, verified on the face model):

* integer: one control byte (bit 0x80 = negative, low nibble = byte count)
  followed by that many little-endian magnitude bytes; 0 is ``01 00``.
* float / double: ``float_details`` = two integers (mantissa, exponent),
  value = mantissa * 2**exponent (exponents 32000..32002 encode inf/-inf/nan).
* bool: one ASCII byte, ``'1'`` or ``'0'``.
* string: integer length followed by the raw bytes.
* tensor: integer version (2), four integer dims (num_samples, k, nr, nc),
  then raw little-endian float32 values.
* alias_tensor: integer version (1) and four integer dims; the offset is NOT
  stored (aliases into ``params`` are laid out back to back from offset 0).
"""

from __future__ import annotations

import math

import numpy as np

_INF, _NINF, _NAN = 32000, 32001, 32002


class DlibFormatError(ValueError):
    """Raised when the byte stream does not follow dlib's serialization format."""


class Reader:
    """Sequential reader over an in-memory dlib ``.dat`` byte buffer."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self.pos

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self._data):
            raise DlibFormatError(f"unexpected end of data at byte {self.pos} (need {n})")
        chunk = self._data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def int(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            raise DlibFormatError(f"bad integer control byte {control:#04x} at {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent == _INF:
            return math.inf
        if exponent == _NINF:
            return -math.inf
        if exponent == _NAN:
            return math.nan
        return math.ldexp(float(mantissa), exponent)

    def bool(self) -> bool:
        byte = self._take(1)
        if byte not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool byte {byte!r} at {self.pos - 1}")
        return byte == b"1"

    def string(self) -> str:
        return self._take(self.int()).decode("ascii")

    def expect_string(self, *allowed: str) -> str:
        start = self.pos
        name = self.string()
        if name not in allowed:
            raise DlibFormatError(f"expected one of {allowed} at byte {start}, got {name!r}")
        return name

    def expect_int(self, expected: int, what: str) -> None:
        start = self.pos
        value = self.int()
        if value != expected:
            raise DlibFormatError(f"{what}: expected {expected} at byte {start}, got {value}")

    def dims(self) -> tuple[int, int, int, int]:
        n, k, nr, nc = (self.int() for _ in range(4))
        return n, k, nr, nc

    def tensor(self) -> np.ndarray:
        """Read a ``resizable_tensor``; returns a float32 array of shape (n, k, nr, nc)."""
        self.expect_int(2, "tensor version")
        shape = self.dims()
        count = math.prod(shape)
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_shape(self) -> tuple[int, int, int, int]:
        """Read an ``alias_tensor`` header; returns its 4-d shape."""
        self.expect_int(1, "alias_tensor version")
        return self.dims()


def split_params(params: np.ndarray, *shapes: tuple[int, int, int, int]) -> list[np.ndarray]:
    """Cut a flat ``params`` tensor into consecutive aliases of the given shapes."""
    flat = params.reshape(-1)
    needed = sum(math.prod(s) for s in shapes)
    if needed != flat.size:
        raise DlibFormatError(f"params hold {flat.size} floats, aliases need {needed}")
    out: list[np.ndarray] = []
    offset = 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(flat[offset : offset + size].reshape(shape).copy())
        offset += size
    return out
