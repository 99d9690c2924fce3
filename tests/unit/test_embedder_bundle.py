from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge.boxmap import BoxMap, apply_box_map
from edge.bundle import BundleError, load_bundle, sha256_file
from edge.embedder import dequantize, quantize
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


def test_box_map_in_the_face_frame() -> None:
    det = Detection(BBox(100, 100, 200, 220), 0.9, np.zeros((5, 2), np.float32))
    # identity-like map for box_norm: features [1, (w-h)/s]; target = (box - centre) / s
    coef = ((-0.5, -0.5, 0.5, 0.5), (0.0, 0.0, 0.0, 0.0))
    left, top, right, bottom = apply_box_map(BoxMap("box_norm", coef), det)
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


IDENTIFY = {"margin": 0.05, "sizes": [1, 100], "rates": [0.01, 0.1], "tau": [[0.5, 0.6], [0.4, 0.5]],
            "people": 2709}  # fmt: skip
BOX_MAP = {"design": "box_norm", "coef": [[-0.5, -0.5, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]], "n_fit": 9}


def with_sections(root: Path, **sections: object) -> Path:
    data = json.loads((root / "manifest.json").read_text())
    for key, value in sections.items():
        if key == "box_map":
            data["alignment"]["box_map"] = value
        else:
            data[key] = value
    (root / "manifest.json").write_text(json.dumps(data))
    return root


def test_the_rules_sections_are_typed_on_load(tmp_path: Path) -> None:
    m = load_bundle(
        with_sections(write_bundle(tmp_path / "b"), identify=IDENTIFY, box_map=BOX_MAP)
    ).manifest
    assert m.identify is not None and m.identify.tau == ((0.5, 0.6), (0.4, 0.5))
    assert m.identify.tau_for(100, 0.01) == 0.4
    assert m.alignment.box_map is not None and m.alignment.box_map.design == "box_norm"
    assert load_bundle(write_bundle(tmp_path / "plain")).manifest.identify is None


@pytest.mark.parametrize(
    ("sections", "field", "why"),
    [
        ({"identify": {**IDENTIFY, "tau": [[0.5, 0.6]]}}, "identify", "expected 2 rows of 2"),
        ({"identify": {**IDENTIFY, "rates": [0.1, 0.01]}}, "identify", "strictly increasing"),
        (
            {"identify": {k: v for k, v in IDENTIFY.items() if k != "margin"}},
            "identify.margin",
            "required",
        ),
        ({"box_map": {**BOX_MAP, "design": "other"}}, "alignment.box_map.design", "box_norm"),
        (
            {"box_map": {**BOX_MAP, "coef": [[1.0, 2.0, 3.0, 4.0]]}},
            "alignment.box_map",
            "2 rows of 4",
        ),
    ],
)
def test_a_malformed_rule_section_is_a_bundle_error_naming_it(
    tmp_path: Path, sections: dict[str, object], field: str, why: str
) -> None:
    root = with_sections(write_bundle(tmp_path / "b"), **sections)
    with pytest.raises(BundleError, match="invalid manifest") as err:
        load_bundle(root)
    assert field in str(err.value) and why in str(err.value)


def with_cohort(root: Path, vectors: np.ndarray, k: int = 2, faces: int | None = None) -> Path:
    np.save(root / "cohort.npy", vectors, allow_pickle=False)
    data = json.loads((root / "manifest.json").read_text())
    data["identify"] = IDENTIFY
    data["cohort"] = {
        "file": "cohort.npy",
        "k": k,
        "faces": len(vectors) if faces is None else faces,
    }
    data["files"]["cohort.npy"] = sha256_file(root / "cohort.npy")
    (root / "manifest.json").write_text(json.dumps(data))
    return root


def test_the_cohort_loads_checked(tmp_path: Path) -> None:
    faces = np.random.default_rng(0).normal(size=(5, 128)).astype(np.float16)
    bundle = load_bundle(with_cohort(write_bundle(tmp_path / "b"), faces, k=3))
    assert bundle.cohort is not None and bundle.cohort.k == 3
    assert bundle.cohort.vectors.dtype == np.float32
    assert np.array_equal(bundle.cohort.vectors, faces.astype(np.float32))
    assert load_bundle(write_bundle(tmp_path / "plain")).cohort is None
    # tampered: the hash check refuses it like any other file
    root = with_cohort(write_bundle(tmp_path / "t"), faces)
    np.save(root / "cohort.npy", faces[:4], allow_pickle=False)
    with pytest.raises(BundleError, match=r"cohort\.npy: sha256"):
        load_bundle(root)


def with_domains(root: Path, label: np.ndarray, domains: list[str], taus: object = None) -> Path:
    """``root``'s cohort with each face's domain, and the table with a tau per domain."""
    np.save(root / "cohort_domains.npy", label, allow_pickle=False)
    data = json.loads((root / "manifest.json").read_text())
    data["cohort"] |= {"domain_file": "cohort_domains.npy", "domains": domains}
    own = {"lfw": [[0.45, 0.55], [0.35, 0.45]], "cfp": [[0.55, 0.65], [0.45, 0.55]]}
    data["identify"] = {**IDENTIFY, "tau_by_domain": own if taus is None else taus}
    data["files"]["cohort_domains.npy"] = sha256_file(root / "cohort_domains.npy")
    (root / "manifest.json").write_text(json.dumps(data))
    return root


def test_the_cohorts_domains_and_the_tables_taus_per_domain_load_checked(tmp_path: Path) -> None:
    faces = np.random.default_rng(0).normal(size=(5, 128)).astype(np.float16)
    label = np.array([0, 0, 1, 1, 1], np.uint8)
    b = load_bundle(with_domains(with_cohort(write_bundle(tmp_path / "b"), faces), label, ["cfp", "lfw"]))  # fmt: skip
    assert b.cohort is not None and b.cohort.domains == ("cfp", "lfw")
    assert b.cohort.label is not None and b.cohort.label.tolist() == [0, 0, 1, 1, 1]
    assert b.manifest.identify is not None and b.manifest.identify.tau_for(100, 0.01, "lfw") == 0.35
    bad = [
        (np.array([0, 0, 1, 1, 2], np.uint8), None, r"in \[0, 2\)"),
        (np.array([0, 1], np.uint8), None, "one domain label per face"),
        (label, {"lfw": [[0.4, 0.5]]}, r"tau_by_domain\.lfw: expected 2 rows"),
        (
            label,
            {"lfw": [[0.4, 0.5], [0.5, 0.6]]},
            r"lfw's taus\) gets looser as the gallery grows",
        ),
    ]
    for i, (wrong, taus, why) in enumerate(bad):
        root = with_domains(with_cohort(write_bundle(tmp_path / f"x{i}"), faces), wrong, ["cfp", "lfw"], taus)  # fmt: skip
        with pytest.raises(BundleError, match=why):
            load_bundle(root)
    root = with_domains(with_cohort(write_bundle(tmp_path / "t"), faces), label, ["cfp", "lfw"])
    (root / "cohort_domains.npy").write_bytes(b"not numpy")
    with pytest.raises(BundleError, match=r"cohort_domains\.npy: sha256"):
        load_bundle(root)
    with pytest.raises(BundleError, match="not readable domain labels"):
        load_bundle(root, verify_hashes=False)


@pytest.mark.parametrize(
    ("vectors", "k", "faces", "why"),
    [
        (np.zeros((5, 64), np.float16), 2, None, r"shape \(5, 64\), the manifest says \(5, 128\)"),
        (np.zeros((5, 128), np.float16), 2, 6, r"shape \(5, 128\), the manifest says \(6, 128\)"),
        (np.zeros((5, 128), np.float16), 6, None, "k must be in"),
        (np.full((5, 128), np.inf, np.float16), 2, None, "finite"),
    ],
)
def test_a_bad_cohort_is_a_bundle_error(
    tmp_path: Path, vectors: np.ndarray, k: int, faces: int | None, why: str
) -> None:
    root = with_cohort(write_bundle(tmp_path / "b"), vectors, k, faces)
    with pytest.raises(BundleError, match=why):
        load_bundle(root)


def test_a_cohort_needs_the_open_set_table_and_a_readable_file(tmp_path: Path) -> None:
    root = with_cohort(write_bundle(tmp_path / "b"), np.zeros((5, 128), np.float16))
    data = json.loads((root / "manifest.json").read_text())
    del data["identify"]
    (root / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="a cohort without an open-set table"):
        load_bundle(root)
    other = with_cohort(write_bundle(tmp_path / "c"), np.zeros((5, 128), np.float16))
    (other / "cohort.npy").write_bytes(b"not numpy")
    with pytest.raises(BundleError, match="not a readable cohort"):
        load_bundle(other, verify_hashes=False)
