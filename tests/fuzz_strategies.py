"""Fuzzing the four parsers that take outside input (issue 29): the hypothesis strategies
and the property each parser must hold, shared by ``tests/unit/test_fuzz_inputs.py`` (a
modest number of examples in every test run) and ``bench/fuzz.py`` (the long run behind
``bench/results/fuzz.json``).

- ``image``: ``edge.images.read_image`` (what ``enroll``, ``identify`` and ``verify`` read a
  photo with) on arbitrary bytes, on small real PNG/JPEG/WebP/BMP/GIF/TIFF/PPM/... files
  mutated (truncated, bytes flipped, inserted, deleted, spliced, header dimensions set
  huge) and on decompression bombs of every format just above ``MAX_PIXELS``. It returns
  an RGB uint8 image of at most ``MAX_PIXELS`` pixels or raises ``ImageError``.
- ``config``: ``edge.config.load_config`` on TOML documents built from the real sections
  and keys with values of every type (boundaries, NaN, huge and deeply nested values,
  control characters, NUL), unknown sections and keys, ``EDGE_FACE_*`` environment
  overrides, byte-level damage and arbitrary text. A ``Config`` (every path absolute) or a
  ``ConfigError`` with one non-empty message per problem.
- ``manifest``: ``edge.bundle.load_bundle`` on a copy of the committed bundle
  ``models/edge-face-dlib-cut`` whose ``manifest.json`` is mutated (fields replaced by random
  or hostile JSON values, deleted, added; the text truncated, damaged, deeply nested, with
  huge numbers; garbage bytes). A ``Bundle`` (whose listed files then match their sha256
  when hashes are verified) or a ``BundleError``.
- ``payload``: ``edge.payloads`` event and status payloads from arbitrary names (unicode,
  control and bidi characters), distances, boxes and times (NaN, infinities, far dates),
  and ``mark_stale`` on arbitrary, damaged and real payloads. Strict JSON that reads back
  to the values given, or a ``ValueError`` exactly when an input cannot be written as
  strict JSON.

Each target's ``check(example, workdir)`` returns when the property holds ("value" or
"error": what the parser gave) and raises otherwise: an ``AssertionError`` when the
parser returned something wrong, the parser's own exception when it raised anything but
its documented error type.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import math
import re
import shutil
import struct
import types
import typing
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from hypothesis import strategies as st

from edge.bundle import MANIFEST, Bundle, BundleError, load_bundle, sha256_file
from edge.config import SECTIONS, Config, load_config
from edge.errors import ConfigError
from edge.images import MAX_PIXELS, ImageError, read_image
from edge.payloads import Status, event_payload, mark_stale, status_payload
from edge.types import BBox, RecognitionEvent

REPO = Path(__file__).resolve().parent.parent
BUNDLE = REPO / "models" / "edge-face-dlib-cut"


def _short(data: bytes) -> str:
    if len(data) <= 600:
        return repr(data)
    return f"<{len(data)} bytes: {data[:300]!r} ... {data[-100:]!r}>"


@dataclass(frozen=True)
class Target:
    name: str
    module: str  # the parser's module (bench/results/fuzz.json)
    entry: str  # what is called
    strategy: st.SearchStrategy[Any]
    #: (example, workdir) -> "value" or "error" (what the parser gave) when the property holds
    check: Callable[[Any, Path], str]
    prepare: Callable[[Path], None]  # fills a fresh workdir once, before the first check


def _nothing_to_prepare(workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)


# --------------------------------------------------------------------------------------
# byte-level damage, shared by the image, config and manifest targets

#: (kind, position 0-1, length, bytes): applied in order by ``damage``
Mutation = tuple[str, float, int, bytes]

_mutation: st.SearchStrategy[Mutation] = st.tuples(
    st.sampled_from(
        ["truncate", "flip", "overwrite", "insert", "delete", "splice", "zero", "stray"]
    ),
    st.floats(0, 1),
    st.integers(1, 64),
    st.binary(min_size=1, max_size=16),
)
mutations = st.lists(_mutation, max_size=6)


def damage(data: bytes, steps: Iterable[Mutation]) -> bytes:
    """``data`` after each step: cut, a bit flipped, bytes overwritten, inserted, deleted,
    a slice of itself copied elsewhere, zeroed, or stray bytes put before a 0xFF."""
    out = bytearray(data)
    for kind, where, length, chunk in steps:
        at = min(int(where * len(out)), max(len(out) - 1, 0))
        if kind == "truncate":
            del out[int(where * len(out)) :]
        elif not out:
            out += chunk
        elif kind == "flip":
            out[at] ^= 1 << (length % 8)
        elif kind == "overwrite":
            out[at : at + len(chunk)] = chunk
        elif kind == "insert":
            out[at:at] = chunk
        elif kind == "delete":
            del out[at : at + length]
        elif kind == "splice":
            source = (at * 7 + length) % len(out)
            out[at:at] = out[source : source + length]
        elif kind == "stray":  # bytes before a marker (JPEG: libjpeg skips them)
            spot = out.find(b"\xff", at)
            spot = spot if spot >= 0 else max(out.find(b"\xff"), 0)
            out[spot:spot] = chunk[: 1 + length % 3]
        else:  # zero
            out[at : at + length] = bytes(len(out[at : at + length]))
    return bytes(out)


# --------------------------------------------------------------------------------------
# image: edge.images.read_image

#: what the small valid images are written as (every format this OpenCV writes and reads)
IMAGE_FORMATS = (".png", ".jpg", ".webp", ".bmp", ".gif", ".tiff", ".ppm", ".pam", ".pfm", ".hdr", ".ras")  # fmt: skip
#: header dimensions tried: boundaries of the fields and of MAX_PIXELS (8000x8000)
HUGE_DIMS = (0, 1, 2, 255, 256, 8000, 8001, 9000, 16383, 16384, 65535, 2**31 - 1, 2**32 - 1)
_SIDE = 8001  # a bomb's side: 8001 x 8001 is just above MAX_PIXELS
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"GIF87a", b"BM", b"RIFF\0\0\0\0WEBPVP8 ",
          b"II*\0", b"MM\0*", b"II+\0", b"P6\n", b"P4\n", b"PF\n", b"#?RADIANCE\n",
          b"\x59\xa6\x6a\x95", b"\0\0\0\x1cftypavif", b"\0\0\0\x0cjP  \r\n\x87\n")  # fmt: skip


@dataclass(frozen=True)
class SmallImage:
    fmt: str
    height: int
    width: int
    channels: int
    wide: bool  # 16-bit samples where the format has them
    seed: int


def encode(spec: SmallImage) -> bytes:
    """A real file of that format, as OpenCV writes it (PNG when it cannot)."""
    rng = np.random.default_rng(spec.seed)
    dtype = np.uint16 if spec.wide and spec.fmt in (".png", ".tiff") else np.uint8
    top = 65535 if dtype == np.uint16 else 255
    pixels = rng.integers(0, top + 1, (spec.height, spec.width, spec.channels), dtype=dtype)
    if spec.fmt in (".pfm", ".hdr"):
        pixels = pixels[:, :, :3].astype(np.float32) / top
        if pixels.shape[2] == 1:
            pixels = np.repeat(pixels, 3, axis=2)
    for fmt, image in ((spec.fmt, pixels), (".png", pixels[:, :, :3].astype(np.uint8))):
        try:
            ok, buf = cv2.imencode(fmt, image)
        except cv2.error:
            continue
        if ok:
            return buf.tobytes()
    raise AssertionError(f"OpenCV cannot write {spec}")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _tiff_dims_at(data: bytes) -> list[tuple[int, int, str]]:
    """(tag, offset of its value, struct code) of the first IFD's width and length."""
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 8:
        return []
    (ifd,) = struct.unpack(order + "I", data[4:8])
    if ifd + 2 > len(data):
        return []
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    found = []
    for n in range(count):
        at = ifd + 2 + 12 * n
        if at + 12 > len(data):
            break
        tag, kind = struct.unpack(order + "HH", data[at : at + 4])
        if tag in (256, 257) and kind in (3, 4):
            found.append((tag, at + 8, order + ("H" if kind == 3 else "I")))
    return found


def set_dims(data: bytes, width: int, height: int) -> bytes:
    """The file with the dimensions its header declares set to (width, height), each field
    masked to its size; checksums are recomputed where the format has them (PNG)."""
    out = bytearray(data)

    def put(at: int, fmt: str, *values: int) -> None:
        size = struct.calcsize(fmt)
        if at + size <= len(out):
            masks = [(1 << (8 * struct.calcsize(fmt[0] + c))) - 1 for c in fmt[1:]]
            signed = [c.islower() for c in fmt[1:]]
            fixed = []
            for v, mask, s in zip(values, masks, signed, strict=True):
                v &= mask
                fixed.append(v - (mask + 1) if s and v > mask // 2 else v)
            out[at : at + size] = struct.pack(fmt, *fixed)

    w, h = width, height
    if out[:8] == b"\x89PNG\r\n\x1a\n" and len(out) >= 33:
        put(16, ">II", w, h)
        out[29:33] = struct.pack(">I", zlib.crc32(bytes(out[12:29])) & 0xFFFFFFFF)
    elif out[:2] == b"\xff\xd8":
        sof = [m.start() for m in re.finditer(rb"\xff[\xc0-\xc3\xc5-\xc7\xc9-\xcb\xcd-\xcf]", out)]
        if sof:
            put(sof[0] + 5, ">HH", h, w)
    elif out[:3] == b"GIF":
        put(6, "<HH", w, h)
        frame = out.find(b"\x2c\0\0\0\0")
        if frame > 0:
            put(frame + 5, "<HH", w, h)
    elif out[:2] == b"BM":
        put(18, "<ii", w, h)
    elif out[:4] == b"RIFF" and out[8:12] == b"WEBP":
        kind = bytes(out[12:16])
        if kind == b"VP8 ":
            put(26, "<HH", w & 0x3FFF, h & 0x3FFF)
        elif kind == b"VP8L" and len(out) >= 25:
            bits = int.from_bytes(out[21:25], "little")
            bits = (bits & ~0xFFFFFFF) | ((w - 1) & 0x3FFF) | (((h - 1) & 0x3FFF) << 14)
            out[21:25] = bits.to_bytes(4, "little")
        elif kind == b"VP8X" and len(out) >= 30:
            out[24:27] = ((w - 1) & 0xFFFFFF).to_bytes(3, "little")
            out[27:30] = ((h - 1) & 0xFFFFFF).to_bytes(3, "little")
    elif out[:2] in (b"II", b"MM"):
        for tag, at, fmt in _tiff_dims_at(bytes(out)):
            put(at, fmt, w if tag == 256 else h)
    elif out[:4] == b"\x59\xa6\x6a\x95":
        put(4, ">II", w, h)
    elif out[:2] in (b"P5", b"P6", b"PF", b"Pf"):
        return re.sub(rb"^(P[56Ff]\s+)\d+\s+\d+", b"\\g<1>%d %d" % (w, h), bytes(out), count=1)
    elif out[:2] == b"P7":
        text = re.sub(rb"WIDTH \d+", b"WIDTH %d" % w, bytes(out), count=1)
        return re.sub(rb"HEIGHT \d+", b"HEIGHT %d" % h, text, count=1)
    elif out[:2] == b"#?":
        return re.sub(rb"-Y \d+ \+X \d+", b"-Y %d +X %d" % (h, w), bytes(out), count=1)
    return bytes(out)


#: the formats of ``bomb``
BOMBS = (".png", ".jpg", ".webp", ".tiff", ".gif", ".hdr", ".pbm", ".png-lie")


@functools.cache
def bomb(kind: str) -> bytes:
    """A small file that decodes to 8001 x 8001 pixels (just above MAX_PIXELS): compressed
    as OpenCV writes each format, a 1-bit PBM, and a PNG whose header says 1 x 1."""
    if kind == ".pbm":
        return b"P4\n%d %d\n" % (_SIDE, _SIDE) + bytes((_SIDE + 7) // 8 * _SIDE)
    if kind == ".png-lie":
        ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
        idat = zlib.compress(b"\0" * (1 + _SIDE) * _SIDE, 9)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b"")
        )
    if kind == ".hdr":
        image: np.ndarray = np.zeros((_SIDE, _SIDE, 3), np.float32)
    elif kind == ".gif":
        image = np.zeros((_SIDE, _SIDE, 3), np.uint8)
    else:
        image = np.zeros((_SIDE, _SIDE), np.uint8)
    ok, buf = cv2.imencode(kind, image)
    assert ok, f"OpenCV cannot write a {kind} bomb"
    return buf.tobytes()


@st.composite
def _small_image(draw: st.DrawFn) -> bytes:
    spec = SmallImage(
        fmt=draw(st.sampled_from(IMAGE_FORMATS)),
        height=draw(st.integers(1, 24)),
        width=draw(st.integers(1, 24)),
        channels=draw(st.sampled_from([1, 3, 4])),
        wide=draw(st.booleans()),
        seed=draw(st.integers(0, 2**32 - 1)),
    )
    return encode(spec)


_dims = st.tuples(st.sampled_from(HUGE_DIMS), st.sampled_from(HUGE_DIMS))


@st.composite
def _mutated_image(draw: st.DrawFn) -> bytes:
    data = draw(_small_image())
    if draw(st.booleans()):
        data = set_dims(data, *draw(_dims))
    return damage(data, draw(mutations))


@st.composite
def _bomb(draw: st.DrawFn) -> bytes:
    data = bomb(draw(st.sampled_from(BOMBS)))
    return damage(data, draw(st.lists(_mutation, max_size=2)))


@dataclass(frozen=True)
class ImageInput:
    data: bytes

    def __repr__(self) -> str:
        return f"ImageInput({_short(self.data)})"


image_inputs: st.SearchStrategy[ImageInput] = st.one_of(
    st.binary(max_size=2048),
    st.tuples(st.sampled_from(_MAGIC), st.binary(max_size=512)).map(lambda t: t[0] + t[1]),
    _mutated_image(),
    _bomb(),
).map(ImageInput)


def _kind(data: bytes) -> str:
    """The format the file's first bytes say, for messages."""
    for magic, name in (
        (b"\x89PNG", "PNG"),
        (b"\xff\xd8", "JPEG"),
        (b"GIF8", "GIF"),
        (b"BM", "BMP"),
        (b"RIFF", "WebP"),
        (b"II", "TIFF"),
        (b"MM", "TIFF"),
        (b"P", "PNM/PFM"),
        (b"#?", "HDR"),
        (b"\x59\xa6\x6a\x95", "Sun raster"),
    ):
        if data.startswith(magic):
            return f"a {name} file"
    return "a file of no known format"


def check_image(example: ImageInput, workdir: Path) -> str:
    path = workdir / "photo.jpg"
    path.write_bytes(example.data)
    try:
        image = read_image(path)
    except ImageError as exc:
        assert str(exc).startswith(str(path)), f"the message does not name the file: {exc}"
        return "error"
    assert isinstance(image, np.ndarray) and image.dtype == np.uint8, type(image)
    assert image.ndim == 3 and image.shape[2] == 3, image.shape
    h, w = image.shape[:2]
    assert h >= 1 and w >= 1, image.shape
    assert h * w <= MAX_PIXELS, (
        f"{w}x{h} pixels decoded from {_kind(example.data)}: over MAX_PIXELS"
    )
    return "value"


# --------------------------------------------------------------------------------------
# config: edge.config.load_config


class Raw(str):
    """TOML text written as it is (a huge number, a deeply nested array)."""


#: values at the config's boundaries and of the shapes its validators look at
_TOML_EDGES = [0, -1, 1, 5, 8, 1000, 1001, 65535, 65536, 0.0, -0.0, 0.5, 1.0, 4.0, 4.000001,
               1e308, -1e308, 5e-324, "", " ", "abc", "²", "١٢", "１２", "0x10", "1e3", " 7 ",
               "-1", "INFO", "debug", "/dev/video0", "rtsp://u:p@cam/s", "a\x00b", "\u202ename",
               "home/#", "a/+/b", "/lead", "trail/", "..", "~", "a\nb", "ok.name"]  # fmt: skip
_toml_scalar: st.SearchStrategy[Any] = st.one_of(
    st.booleans(),
    st.integers(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.text(max_size=24),
    st.sampled_from(_TOML_EDGES),
    st.datetimes(),
    st.dates(),
    st.times(),
)
_toml_value: st.SearchStrategy[Any] = st.recursive(
    _toml_scalar,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
_raw_value = st.one_of(
    st.integers(4000, 6000).map(lambda n: Raw("9" * n)),
    st.integers(1, 2000).map(lambda n: Raw("[" * n + "0" + "]" * n)),
    st.integers(1, 2000).map(lambda n: Raw("{a = " * n + "0" + "}" * n)),
)


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def toml_string(text: str) -> str:
    out = []
    for c in text:
        if c in '"\\':
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return {math.inf: "inf", -math.inf: "-inf"}.get(value, repr(value))
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return value.isoformat()  # datetime, date, time


def _keys(section: str) -> list[str]:
    return list(getattr(SECTIONS[section], "__pydantic_fields__", {}))


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """The type under ``X | None`` and ``Annotated[X, Field(...)]``, with its constraints."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _unwrap(args[0], metadata)
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        infos = [m for e in extra for m in getattr(e, "metadata", [e])]
        return _unwrap(base, metadata + infos)
    return annotation, metadata


@functools.cache
def typed_value(section: str, key: str) -> st.SearchStrategy[Any]:
    """Values of the key's own type, around and across its bounds: most are valid."""
    info = SECTIONS[section].__pydantic_fields__[key]
    kind, metadata = _unwrap(info.annotation, list(info.metadata))
    lo = next((getattr(m, a) for m in metadata for a in ("ge", "gt") if hasattr(m, a)), -10)
    hi = next((getattr(m, a) for m in metadata for a in ("le", "lt") if hasattr(m, a)), 70000)
    edges = st.sampled_from([lo, hi, lo - 1, hi + 1, (lo + hi) / 2])
    if kind is bool:
        return st.booleans()
    if kind is int:
        return st.integers(int(lo) - 2, int(hi) + 2) | edges.map(int)
    if kind is float:
        return st.floats(lo - 1, hi + 1) | edges.map(float)
    if kind is Path:
        part = st.text(
            st.characters(codec="utf-8", exclude_characters="/\0"), min_size=1, max_size=8
        )
        return st.lists(part, min_size=1, max_size=3).map("/".join) | part.map(
            lambda p: "/var/" + p
        )
    if typing.get_origin(kind) is typing.Literal:
        return st.sampled_from(typing.get_args(kind)) | st.text(max_size=8)
    if typing.get_origin(kind) is list:  # zones
        point = st.tuples(st.floats(-0.1, 1.1), st.floats(-0.1, 1.1)).map(list)
        return st.lists(st.lists(point, min_size=2, max_size=5), max_size=3)
    if kind is str:
        return st.text("abcXYZ019-_./+# ", max_size=16) | st.text(max_size=16)
    return st.integers(-1, 9) | st.text(max_size=16)  # camera source: a number, a path, a URL


@st.composite
def toml_document(draw: st.DrawFn, raw: bool = True) -> str:
    """A config file. Typed: real sections and keys, each value of its key's own type
    around its bounds (many such files are valid). Otherwise: real and unknown sections
    and keys, values of any type (with ``raw``, also numbers too long for int() and
    nesting too deep for the stack) and a key outside any section."""
    typed = draw(st.booleans())
    real_sections = st.sampled_from(list(SECTIONS))
    section_names: st.SearchStrategy[str] = real_sections
    if not typed:
        section_names |= st.sampled_from(["Mqtt", "cam", "mqtt.tls"]) | st.text(max_size=8)
    lines: list[str] = []
    outside = {} if typed else draw(st.dictionaries(st.text(max_size=8), _toml_scalar, max_size=1))
    for key, value in outside.items():
        lines.append(f"{toml_key(key)} = {toml_value(value)}")  # a key outside any section
    sections = st.lists(section_names.filter(lambda s: s not in outside), max_size=5, unique=True)
    for section in draw(sections):
        lines.append(f"[{toml_key(section)}]")
        real = _keys(section) if section in SECTIONS else []
        names = st.sampled_from(real) if real else st.text(max_size=10)
        if real and not typed:
            names |= st.text(max_size=10)
        for key in draw(st.lists(names, max_size=5, unique=True)):
            choice = draw(st.integers(0, 19))
            if raw and not typed and choice == 0:
                value = draw(_raw_value)
            elif key in real and (typed or choice >= 10):
                value = draw(typed_value(section, key))
            else:
                value = draw(_toml_value)
            lines.append(f"{toml_key(key)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def _env_names() -> list[str]:
    return [f"EDGE_FACE_{s.upper()}_{k.upper()}" for s in SECTIONS for k in _keys(s)]


_env_value = st.one_of(
    st.text(max_size=16), st.sampled_from(["", "0", "-1", "1883", "true", "nan", "1e400"])
)
config_env = st.dictionaries(
    st.sampled_from(_env_names()) | st.text(max_size=12).map(lambda s: "EDGE_FACE_" + s),
    _env_value.map(lambda v: v.replace("\0", "")),  # an environment cannot hold NUL
    max_size=4,
)


@dataclass(frozen=True)
class ConfigInput:
    content: bytes
    env: dict[str, str]

    def __repr__(self) -> str:
        return f"ConfigInput({_short(self.content)}, env={self.env!r})"


config_inputs: st.SearchStrategy[ConfigInput] = st.builds(
    ConfigInput,
    st.one_of(
        toml_document().map(str.encode),
        st.tuples(toml_document(), mutations).map(lambda t: damage(t[0].encode(), t[1])),
        st.text(max_size=400).map(str.encode),
        st.binary(max_size=400),
    ),
    config_env,
)


def _paths(config: Config) -> list[Path]:
    return [
        value
        for name in SECTIONS
        for value in dataclasses.astuple(getattr(config, name))
        if isinstance(value, Path)
    ]


def _leaves(value: Any) -> list[Any]:
    if dataclasses.is_dataclass(value):
        return [x for f in dataclasses.fields(value) for x in _leaves(getattr(value, f.name))]
    if isinstance(value, list | tuple):
        return [x for v in value for x in _leaves(v)]
    return [value]


def check_config(example: ConfigInput, workdir: Path) -> str:
    path = workdir / "config.toml"
    path.write_bytes(example.content)
    try:
        config = load_config(path, example.env)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError without a problem"
        for line in exc.problems:
            assert line.strip(), f"an empty problem in {exc.problems}"
            assert line.startswith((str(path), "environment variable EDGE_FACE_")), (
                f"a problem that names neither the file nor the variable: {line!r}"
            )
        return "error"
    assert isinstance(config, Config), type(config)
    assert config.source == path.resolve(), config.source
    relative = [p for p in _paths(config) if not p.is_absolute()]
    assert not relative, f"paths not resolved against the config's folder: {relative}"
    assert not any("\0" in str(v) for v in _leaves(config)), "a NUL character in a value"
    return "value"


# --------------------------------------------------------------------------------------
# manifest: edge.bundle.load_bundle

_HOSTILE_JSON = [None, True, False, 0, -1, 1, 2, 0.5, -0.0, 1e308, -1e308, math.nan, math.inf,
                 -math.inf, 2**63, 10**30, "", ".", "..", "/", "/dev/zero", "/etc/passwd",
                 "manifest.json", "../manifest.json", "a\x00b", "x" * 5000, [], {}, [[]],
                 "euclidean", "cosine", "yunet", "similarity", "dlib-chip", "int8"]  # fmt: skip
_json_value: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(_HOSTILE_JSON),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
#: the manifest's parts that load_bundle reads (the rest are figures for people)
_READ = (
    "format",
    "name",
    "encoder_id",
    "encoder",
    "detector",
    "alignment",
    "tau",
    "files",
    "identify",
    "cohort",
)
_BIG = "\u0000big\u0000"  # a placeholder for a number too long for int()


@functools.cache
def base_manifest() -> dict[str, Any]:
    return json.loads((BUNDLE / MANIFEST).read_text(encoding="utf-8"))


def _all_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _all_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _all_paths(v, (*prefix, i))
    return out


@functools.cache
def manifest_paths() -> tuple[tuple[tuple[Any, ...], ...], tuple[tuple[Any, ...], ...]]:
    """(the paths load_bundle reads, every path) of the committed manifest."""
    every = _all_paths(base_manifest())
    figures = ("margin", "sizes", "rates", "tau")  # of "identify", the rest are figures
    read = [p for p in every if p[0] in _READ and not (p[0] == "identify" and len(p) > 1
                                                       and p[1] not in figures)]  # fmt: skip
    return tuple(read), tuple(every)


def _nudged(value: Any, factor: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return type(value)(value * factor) if math.isfinite(value * factor) else value * factor


def _holds(node: Any, key: Any) -> bool:
    """Whether ``node[key]`` is a value of the JSON tree (not a character of a string)."""
    if isinstance(node, dict):
        return key in node
    return isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)


@st.composite
def manifest_tree(draw: st.DrawFn) -> Any:
    """The committed manifest with some of its values replaced, scaled, deleted or added."""
    tree = json.loads(json.dumps(base_manifest()))  # a deep copy
    read, every = manifest_paths()
    for _ in range(draw(st.integers(0, 4))):
        path = draw(st.sampled_from(read) if draw(st.integers(0, 4)) else st.sampled_from(every))
        parent = tree
        for part in path[:-1]:
            parent = parent[part] if _holds(parent, part) else None
        last = path[-1]
        if not _holds(parent, last):
            continue  # an earlier step replaced or deleted it
        old = parent[last]
        op = draw(st.sampled_from(["replace", "delete", "scale", "add", "big"]))
        if op == "replace":
            parent[last] = draw(_json_value)
        elif op == "delete":
            del parent[last]
        elif op == "scale":
            factor = draw(st.sampled_from([-1.0, 0.0, 0.5, 0.99, 1.01, 2.0, 1e9]))
            parent[last] = _nudged(old, factor)
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(_json_value)
        elif op == "big":
            parent[last] = _BIG
    return tree


@dataclass(frozen=True)
class ManifestInput:
    content: bytes
    verify_hashes: bool

    def __repr__(self) -> str:
        return f"ManifestInput({_short(self.content)}, verify_hashes={self.verify_hashes})"


def _serialize(tree: Any, depth: int, digits: int) -> str:
    text = json.dumps(tree).replace(json.dumps(_BIG), "9" * digits)
    return "[" * depth + text + "]" * depth


_manifest_text = st.builds(
    _serialize, manifest_tree(), st.sampled_from([0, 0, 0, 1, 100, 5000]), st.integers(4000, 6000)
).map(str.encode)
manifest_inputs: st.SearchStrategy[ManifestInput] = st.builds(
    ManifestInput,
    st.one_of(
        _manifest_text,
        st.tuples(_manifest_text, mutations).map(lambda t: damage(t[0], t[1])),
        _json_value.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=300),
    ),
    st.booleans(),
)


def prepare_bundle(workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(BUNDLE, workdir / "bundle", dirs_exist_ok=True)


def check_manifest(example: ManifestInput, workdir: Path) -> str:
    root = workdir / "bundle"
    (root / MANIFEST).write_bytes(example.content)
    try:
        bundle = load_bundle(root, verify_hashes=example.verify_hashes)
    except BundleError as exc:
        assert str(exc).strip(), "a BundleError without a message"
        return "error"
    assert isinstance(bundle, Bundle), type(bundle)
    m = bundle.manifest
    assert 0 < m.tau.verify < math.inf and 0 < m.tau.identify < math.inf, m.tau
    if m.cohort is not None:
        assert bundle.cohort is not None, "a cohort in the manifest, none loaded"
        shape = (m.cohort.faces, m.encoder.embedding_size)
        assert bundle.cohort.vectors.shape == shape, (bundle.cohort.vectors.shape, shape)
    if example.verify_hashes:
        for name, digest in bundle.manifest.files.items():
            assert sha256_file(root / name) == digest, f"{name}: loaded with a wrong sha256"
    return "value"


# --------------------------------------------------------------------------------------
# payload: edge.payloads

_names = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(
        ["Zoë", "\u202eevil", "a\nb", "\x1b[31mred", "\x00", "\u200f", '"}', "\\", "\ud800"]
    ),
)
_finite = st.floats(allow_nan=False, allow_infinity=False)
_any_float = st.one_of(
    st.floats(), _finite, st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0])
)
#: unix times: the daemon's range (1970-2100), then any float (year 10000, NaN, ...)
_times = st.one_of(
    st.floats(0, 4_102_444_800), st.floats(), st.integers(-(2**40), 2**40).map(float)
)
_FAR = (-62_135_596_800.0, 253_402_300_799.0)  # datetime's years 1-9999


@dataclass(frozen=True)
class PayloadInput:
    event: RecognitionEvent
    include_crop: bool
    status: Status
    stored: bytes  # what mark_stale is given
    age_s: float


def _event() -> st.SearchStrategy[RecognitionEvent]:
    return st.builds(
        RecognitionEvent,
        event_id=st.text(max_size=34),
        type=st.sampled_from(["recognized", "unknown"]),
        person=st.none() | _names,
        distance=_any_float,
        tau=_any_float,
        camera=_names,
        track_id=st.integers(),
        box=st.builds(BBox, _any_float, _any_float, _any_float, _any_float),
        frames=st.integers(),
        time=_times,
        crop_jpeg=st.none() | st.binary(max_size=64),
    )


_status = st.builds(
    Status,
    fps=_any_float,
    latency_ms=st.dictionaries(_names, st.tuples(_any_float, _any_float), max_size=3),
    faces_seen=st.integers(),
    gallery_size=st.integers(),
    uptime_s=_any_float,
    version=_names,
    outbox_pending=st.integers(),
    outbox_dropped=st.integers(),
    camera_ok=st.booleans(),
    outbox_ok=st.booleans(),
)


@st.composite
def payload_inputs(draw: st.DrawFn) -> PayloadInput:
    event = draw(_event())
    include_crop = draw(st.booleans())
    try:  # what the outbox holds: the payload of an event (any error is check_payload's)
        real = event_payload(event, include_crop)
    except Exception:
        real = b'{"v":1}'
    stored = draw(
        st.one_of(
            st.just(real),
            mutations.map(lambda m: damage(real, m)),
            st.binary(max_size=200),
            st.tuples(_json_value, st.booleans()).map(
                lambda t: json.dumps(t[0], ensure_ascii=t[1]).encode()
            ),
            st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
            st.integers(1, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
            st.just(b'{"person":"\\ud800"}'),
        )
    )
    age = draw(st.one_of(st.floats(0, 1e9), _any_float))
    return PayloadInput(event, include_crop, draw(_status), stored, age)


def _strict(payload: bytes) -> Any:
    assert isinstance(payload, bytes), type(payload)

    def refuse(name: str) -> None:
        raise AssertionError(f"not strict JSON: {name}")

    return json.loads(payload.decode("utf-8"), parse_constant=refuse)


def _writable(text: str | None) -> bool:
    return text is None or not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def _num(value: float, digits: int) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def check_payload(example: PayloadInput, workdir: Path) -> str:
    e = example.event
    box_ok = all(math.isfinite(v) for v in (e.box.x1, e.box.y1, e.box.x2, e.box.y2))
    text_ok = all(_writable(t) for t in (e.event_id, e.person, e.camera))
    time_ok = math.isfinite(e.time) and _FAR[0] <= e.time <= _FAR[1]
    try:
        payload = event_payload(e, example.include_crop)
    except ValueError as exc:
        # refused: only an input that strict JSON cannot hold (a NaN or infinite box, a
        # lone surrogate, a time outside datetime's years 1-9999), said in the message
        assert not (box_ok and text_ok and time_ok), f"a valid event refused: {exc!r}"
        assert str(exc), "an error without a message"
        outcome = "error"
    else:
        outcome = "value"
        assert box_ok and text_ok, "an event that strict JSON cannot hold was written"
        obj = _strict(payload)
        assert obj["person"] == e.person and obj["camera"] == e.camera, obj
        assert obj["event_id"] == e.event_id and obj["type"] == e.type, obj
        assert obj["distance"] == _num(e.distance, 4) and obj["tau"] == _num(e.tau, 4), obj
        assert obj["track_id"] == e.track_id and obj["frames"] == e.frames, obj
        assert obj["box"] == e.box.as_list(), obj
        stamp = datetime.fromisoformat(obj["time"].replace("Z", "+00:00"))
        assert stamp.tzinfo is not None and stamp.utcoffset() == UTC.utcoffset(None), obj["time"]
        assert abs(stamp.timestamp() - e.time) < 1e-3 + 1e-15 * abs(e.time), (stamp, e.time)
        crop = example.include_crop and bool(e.crop_jpeg)
        assert ("crop" in obj) == crop, obj.keys()
        if crop:
            assert base64.b64decode(obj["crop"], validate=True) == e.crop_jpeg
    check_status(example.status)
    check_stale(example.stored, example.age_s)
    return outcome


def check_status(status: Status) -> None:
    texts = [status.version, *status.latency_ms]
    try:
        obj = _strict(status_payload(status))
    except ValueError:
        assert not all(_writable(t) for t in texts), "a valid status refused"
        return
    assert obj["fps"] == _num(status.fps, 2) and obj["uptime_s"] == _num(status.uptime_s, 1)
    assert obj["version"] == status.version and obj["camera_ok"] is status.camera_ok
    assert set(obj["latency_ms"]) == set(status.latency_ms), obj["latency_ms"]


def check_stale(stored: bytes, age_s: float) -> None:
    try:
        parsed: Any = json.loads(stored)
    except (ValueError, RecursionError):
        parsed = None
    try:
        marked = mark_stale(stored, age_s)
    except ValueError as exc:
        # refused: only a JSON object that strict JSON cannot hold once marked (a
        # non-finite age, a NaN or a lone surrogate in the stored object)
        assert isinstance(parsed, dict), f"{exc!r} for a payload that is not a JSON object"
        assert not (math.isfinite(age_s) and _strict_ok(parsed)), f"a stale event refused: {exc!r}"
        return
    if not isinstance(parsed, dict):
        assert marked == stored, "a payload that is not a JSON object was changed"
        return
    if marked == stored and _depth(parsed) > 500:
        return  # read at the stack's limit, one frame too deep to write back: as it is
    obj = _strict(marked)
    assert obj["stale"] is True and obj["age_s"] == round(age_s, 1), obj
    rest = {k: v for k, v in obj.items() if k not in ("stale", "age_s")}
    assert rest == {k: v for k, v in parsed.items() if k not in ("stale", "age_s")}, (
        "mark_stale changed the event's fields"
    )


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (without recursion)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        node, level = todo.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            todo += [(v, level + 1) for v in (node.values() if isinstance(node, dict) else node)]
    return deepest


def _strict_ok(value: Any) -> bool:
    """Whether strict UTF-8 JSON can hold ``value`` (no NaN, no infinity, no surrogate)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return _writable(value)
    if isinstance(value, dict):
        return all(_strict_ok(k) and _strict_ok(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_strict_ok(v) for v in value)
    return True


TARGETS: tuple[Target, ...] = (
    Target("image", "edge.images", "read_image", image_inputs, check_image, _nothing_to_prepare),
    Target(
        "config", "edge.config", "load_config", config_inputs, check_config, _nothing_to_prepare
    ),
    Target(
        "manifest", "edge.bundle", "load_bundle", manifest_inputs, check_manifest, prepare_bundle
    ),
    Target(
        "payload",
        "edge.payloads",
        "event_payload, status_payload, mark_stale",
        payload_inputs(),
        check_payload,
        _nothing_to_prepare,
    ),
)
BY_NAME = {t.name: t for t in TARGETS}
