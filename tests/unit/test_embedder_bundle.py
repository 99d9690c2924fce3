from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.boxmap import apply_box_map
from edge.bundle import BundleError, load_bundle, sha256_file
from edge.embedder import dequantize, quantize
from edge.engine import distance
from edge.types import BBox, Detection


def test_quantize_uint8_identity_and_int8_scaling() -> None:
    img = np.array([[[0, 128, 255]]], np.uint8)
    same = quantize(img, {"dtype": np.uint8, "quantization": (1.0, 0)})
    assert same.dtype == np.uint8 and np.array_equal(same[0], img)
    q = quantize(img, {"dtype": np.int8, "quantization": (1.0, -128)})
    assert q.dtype == np.int8 and q[0, 0, 0].tolist() == [-128, 0, 127]
    f = quantize(img, {"dtype": np.float32, "quantization": (0.0, 0)})
    assert f.dtype == np.float32 and f[0, 0, 0, 2] == 255.0


def test_dequantize() -> None:
    raw = np.array([-4, 0, 10], np.int8)
    out = dequantize(raw, {"dtype": np.int8, "quantization": (0.5, -4)})
    assert out.tolist() == [0.0, 2.0, 7.0]


def test_distances_by_metric() -> None:
    a = np.array([[3.0, 4.0]], np.float32)
    b = np.array([[0.0, 0.0], [6.0, 8.0], [-3.0, -4.0]], np.float32)
    assert distance(a, b, "euclidean")[0].tolist() == pytest.approx([5.0, 5.0, 10.0])
    assert distance(a, b[1:], "cosine")[0].tolist() == pytest.approx([0.0, 2.0], abs=1e-6)


def test_box_map_in_the_face_frame() -> None:
    det = Detection(BBox(100, 100, 200, 220), 0.9, np.zeros((5, 2), np.float32))
    # identity-like map for box_norm: features [1, (w-h)/s]; target = (box - centre) / s
    coef = [[-0.5, -0.5, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]]
    left, top, right, bottom = apply_box_map({"design": "box_norm", "coef": coef}, det)
    s = (100 + 120) / 2
    assert (left, top, right, bottom) == pytest.approx(
        (150 - s / 2, 160 - s / 2, 150 + s / 2, 160 + s / 2)
    )


def write_bundle(root: Path, tamper: bool = False) -> Path:
    root.mkdir()
    for name in ("encoder.tflite", "det.onnx"):
        (root / name).write_bytes(name.encode())
    manifest = {
        "format": 1, "name": "t", "encoder_id": "t-1",
        "encoder": {"file": "encoder.tflite", "input_size": 150, "embedding_size": 128},
        "detector": {"type": "yunet", "file": "det.onnx"},
        "alignment": {"type": "dlib-chip", "size": 150},
        "tau": {"verify": 0.6, "identify": 0.5},
        "files": {n: sha256_file(root / n) for n in ("encoder.tflite", "det.onnx")},
    }  # fmt: skip
    (root / "manifest.json").write_text(json.dumps(manifest))
    if tamper:
        (root / "encoder.tflite").write_bytes(b"changed")
    return root


def test_bundle_loads_and_refuses_tampered_or_missing_files(tmp_path: Path) -> None:
    assert load_bundle(write_bundle(tmp_path / "ok")).manifest.tau.identify == 0.5
    with pytest.raises(BundleError, match="does not match the manifest"):
        load_bundle(write_bundle(tmp_path / "bad", tamper=True))
    (tmp_path / "ok" / "det.onnx").unlink()
    with pytest.raises(BundleError, match=r"det\.onnx is missing"):
        load_bundle(tmp_path / "ok")
    with pytest.raises(BundleError, match="no model bundle"):
        load_bundle(tmp_path / "nowhere")


def test_bundle_of_another_format_is_refused(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    data = json.loads((root / "manifest.json").read_text())
    data["format"] = 99
    (root / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="format 99"):
        load_bundle(root)
