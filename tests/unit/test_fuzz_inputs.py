"""Property tests of the four parsers that take outside input (issue 29): the image
loader, the config parser, the manifest loader and the event payloads. Each returns a
valid value or raises its own clear error, never another exception, on any input the
strategies of ``tests/fuzz_strategies.py`` make. A modest number of examples here; the
long run is ``bench/fuzz.py`` (bench/results/fuzz.json). Below them, the inputs the
fuzzing found, each a regression test, and checks that the strategies reach the parsers'
success paths (a property that only ever sees errors proves little)."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import cv2
import fuzz_strategies as fz
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from edge.bundle import BundleError, load_bundle
from edge.config import load_config, parse_config
from edge.errors import ConfigError
from edge.images import ImageError, declared_size, decode_image
from edge.payloads import event_payload, mark_stale
from edge.types import BBox, RecognitionEvent


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    for target in fz.TARGETS:
        target.prepare(root / target.name)
    return root


@fuzz(150)
@given(fz.image_inputs)
def test_the_image_loader_returns_a_bounded_rgb_image_or_an_image_error(
    workdir: Path, example: fz.ImageInput
) -> None:
    fz.check_image(example, workdir / "image")


@fuzz(150)
@given(fz.config_inputs)
def test_the_config_parser_returns_a_config_or_a_config_error(
    workdir: Path, example: fz.ConfigInput
) -> None:
    fz.check_config(example, workdir / "config")


@fuzz(100)
@given(fz.manifest_inputs)
def test_the_manifest_loader_returns_a_verified_bundle_or_a_bundle_error(
    workdir: Path, example: fz.ManifestInput
) -> None:
    fz.check_manifest(example, workdir / "manifest")


@fuzz(150)
@given(fz.payload_inputs())
def test_payloads_are_strict_json_of_the_values_given_or_a_value_error(
    workdir: Path, example: fz.PayloadInput
) -> None:
    fz.check_payload(example, workdir / "payload")


# -- the strategies reach the success paths --------------------------------------------

_MAGIC_OF = {
    ".png": b"\x89PNG",
    ".jpg": b"\xff\xd8",
    ".webp": b"RIFF",
    ".bmp": b"BM",
    ".gif": b"GIF8",
    ".tiff": b"II*\0",
    ".ppm": b"P6",
    ".pam": b"P7",
    ".pfm": b"P",
    ".hdr": b"#?",
    ".ras": b"\x59\xa6",
}
PHOTOS = [".png", ".jpg", ".webp", ".bmp", ".gif", ".tiff"]


@pytest.mark.parametrize("fmt", fz.IMAGE_FORMATS)
def test_every_small_image_is_written_in_its_own_format(fmt: str) -> None:
    assert fz.encode(fz.SmallImage(fmt, 5, 7, 3, False, 1)).startswith(_MAGIC_OF[fmt])


@pytest.mark.parametrize("fmt", PHOTOS)
def test_the_photo_formats_decode_and_set_dims_sets_what_the_header_declares(fmt: str) -> None:
    data = fz.encode(fz.SmallImage(fmt, 5, 7, 3, False, 1))
    assert decode_image(data).shape == (5, 7, 3)
    assert declared_size(fz.set_dims(data, 9000, 8001)) == (9000, 8001)


@pytest.mark.parametrize("fmt", PHOTOS)
def test_a_photo_declaring_more_than_max_pixels_is_refused_in_every_format(fmt: str) -> None:
    data = fz.set_dims(fz.encode(fz.SmallImage(fmt, 5, 7, 3, False, 1)), 8001, 8000)
    with pytest.raises(ImageError, match="8001x8000 pixels"):
        decode_image(data)


def test_an_undamaged_manifest_and_a_plain_config_load(workdir: Path) -> None:
    content = json.dumps(fz.base_manifest()).encode()
    fz.check_manifest(fz.ManifestInput(content, True), workdir / "manifest")
    assert load_bundle(workdir / "manifest" / "bundle").manifest.files
    text = '[mqtt]\nport = 8883\nhost = "broker"\n[gallery]\npath = "g.db"\n'
    env = {"EDGE_FACE_CAMERA_SOURCE": "2"}
    fz.check_config(fz.ConfigInput(text.encode(), env), workdir / "config")
    config = load_config(workdir / "config" / "config.toml", env)
    assert config.mqtt.port == 8883 and config.camera.source == 2


@settings(max_examples=50, deadline=None)
@given(fz.toml_document(raw=False))
def test_the_toml_writer_writes_toml(text: str) -> None:
    try:
        parse_config(text)
    except ConfigError as exc:
        assert not any("not valid TOML" in p for p in exc.problems), exc.problems


# -- what the fuzzing found ------------------------------------------------------------


def _jpeg(width: int, height: int) -> bytes:
    """A real 16x16 JPEG whose frame header declares width x height."""
    data = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))[1].tobytes()
    return fz.set_dims(data, width, height)


def test_a_stray_byte_before_a_jpeg_marker_does_not_hide_the_declared_size() -> None:
    # libjpeg skips bytes between markers ("extraneous bytes before marker"): one stray byte
    # before the frame header made declared_size give up, and a 650-byte file declaring
    # 20000x20000 was decoded (2.4 GB, 4.5 s)
    data = _jpeg(20000, 20000)
    sof = data.find(b"\xff\xc0")
    for stray in (b"\x00", b"\x12\x34", b"\xff\x00"):
        assert declared_size(data[:sof] + stray + data[sof:]) == (20000, 20000)
        with pytest.raises(ImageError, match="20000x20000 pixels"):
            decode_image(data[:sof] + stray + data[sof:])


def test_tiff_declares_its_size_little_and_big_endian_and_bigtiff() -> None:
    image = np.zeros((37, 53, 3), np.uint8)
    little = cv2.imencode(".tiff", image)[1].tobytes()
    assert declared_size(little) == (53, 37)
    ifd = struct.unpack("<I", little[4:8])[0]
    entries = [little[ifd + 2 + 12 * n : ifd + 14 + 12 * n] for n in range(little[ifd])]
    big = bytearray(b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", len(entries)))
    for e in entries:
        tag, kind, count = struct.unpack("<HHI", e[:8])
        value = (
            e[8:12]
            if kind not in (3, 4)
            else (
                struct.pack(">HH", struct.unpack("<H", e[8:10])[0], 0)
                if kind == 3
                else struct.pack(">I", struct.unpack("<I", e[8:12])[0])
            )
        )
        big += struct.pack(">HHI", tag, kind, count) + value
    assert declared_size(bytes(big)) == (53, 37)
    bigtiff = (
        b"II\x2b\x00"
        + struct.pack("<HHQ", 8, 0, 16)
        + struct.pack("<Q", 2)
        + struct.pack("<HHQQ", 256, 4, 1, 30000)
        + struct.pack("<HHQQ", 257, 16, 1, 30000)
    )
    assert declared_size(bigtiff) == (30000, 30000)


@pytest.mark.parametrize(
    "text",
    [
        "[camera]\nzones = " + "[" * 600 + "]" * 600,
        "[mqtt]\nport = " + "{a = " * 600 + "1" + "}" * 600,
        "[mqtt]\nport = " + "9" * 5000,
    ],
    ids=["nested-arrays", "nested-tables", "5000-digit-number"],
)
def test_toml_too_deep_or_too_long_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_config(text)


@pytest.mark.parametrize(
    "where", ['[model]\nbundle = "a\\u0000b"\n', '[gallery]\npath = "\\u0000"\n']
)
def test_a_path_with_a_nul_character_is_a_config_error(tmp_path: Path, where: str) -> None:
    # Path.resolve() raised ValueError("embedded null byte") out of load_config
    config = tmp_path / "config.toml"
    config.write_text(where)
    with pytest.raises(ConfigError, match="NUL"):
        load_config(config, {})
    with pytest.raises(ConfigError, match=r"EDGE_FACE_GALLERY_PATH.*NUL"):
        load_config(None, {"EDGE_FACE_GALLERY_PATH": "a\x00b"})


@pytest.mark.parametrize(
    "payload",
    [b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000 + b"1" + b"}" * 5000],
    ids=["array", "object"],
)
def test_mark_stale_returns_a_too_deeply_nested_payload_as_it_is(payload: bytes) -> None:
    # json.loads raised RecursionError: the sender thread retried the row forever
    assert mark_stale(payload, 120.0) == payload


def test_mark_stale_never_raises_recursion_error_at_any_depth() -> None:
    # the fuzz run found an object json.loads could read at the stack's limit and json.dumps
    # could not write back, one frame deeper (RecursionError out of mark_stale)
    for depth in range(1, 1100):
        payload = b'{"a":' * depth + b"1" + b"}" * depth
        marked = mark_stale(payload, 120.0)
        assert marked == payload or json.loads(marked)["stale"] is True


def test_mark_stale_refuses_what_strict_json_cannot_hold_with_a_value_error() -> None:
    for payload, age in ((b'{"person":"\\ud800"}', 1.0), (b'{"d":NaN}', 1.0), (b"{}", math.inf)):
        with pytest.raises(ValueError):
            mark_stale(payload, age)


def test_a_manifest_too_deep_or_with_a_huge_number_is_a_bundle_error(workdir: Path) -> None:
    # json.loads's RecursionError and ValueError (not a JSONDecodeError) escaped load_bundle
    root = workdir / "manifest" / "bundle"
    manifest: dict[str, Any] = fz.base_manifest()
    for text in (
        "[" * 5000 + json.dumps(manifest) + "]" * 5000,
        json.dumps(manifest).replace('"format": 1,', '"format": ' + "1" * 5000 + ",", 1),
    ):
        (root / "manifest.json").write_text(text)
        with pytest.raises(BundleError, match="not a readable manifest"):
            load_bundle(root)


@pytest.mark.parametrize("kind", fz.BOMBS)
def test_every_bomb_is_refused_before_decoding(kind: str) -> None:
    # the 1.2 MB TIFF and the 8 MB PBM decoded to 8001x8001 pixels, the 4 MB HDR to 0.8 GB
    # of floats (3 s) before being refused for its pixel type
    if kind == ".png-lie":  # libpng stops at the 1x1 its header declares
        assert decode_image(fz.bomb(kind)).shape == (1, 1, 3)
        return
    with pytest.raises(ImageError, match=r"8001x8001 pixels, more than|not a JPEG"):
        decode_image(fz.bomb(kind))


def test_what_opencv_refuses_by_raising_is_an_image_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenCV raises (not returns None) for sizes it refuses itself: cv2.error escaped on
    # this PFM the fuzzing made (now refused as a format without a size guard), and is
    # caught whatever the input
    pfm = b"PF\n4294967295 2147483647\n-1\n" + bytes(64)
    with pytest.raises(ImageError):
        decode_image(pfm)

    def refuse(buf: np.ndarray, flags: int) -> np.ndarray:
        raise cv2.error("(-215:Assertion failed) size.width > 0")

    monkeypatch.setattr(cv2, "imdecode", refuse)
    with pytest.raises(ImageError, match="not an image OpenCV can decode"):
        decode_image(fz.encode(fz.SmallImage(".png", 5, 7, 3, False, 1)))


@pytest.mark.parametrize("time", [math.nan, math.inf, -math.inf, 1e20, -1e12, 2**40 * 1e3])
def test_an_event_time_that_is_no_date_is_a_value_error(time: float) -> None:
    # OverflowError, OSError (EOVERFLOW) or ValueError, depending on the value
    event = RecognitionEvent("id", "unknown", None, 1.0, 0.5, "cam", 1, BBox(0, 0, 1, 1), 3, time)
    with pytest.raises(ValueError, match="is not a date"):
        event_payload(event, include_crop=False)


def test_mark_stale_gives_the_age_to_a_tenth_of_a_second() -> None:
    marked = json.loads(mark_stale(b'{"event": "known"}', 1234.5678))
    assert marked == {"event": "known", "stale": True, "age_s": 1234.6}
