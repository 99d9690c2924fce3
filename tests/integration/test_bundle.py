"""The default bundle, end to end: built, verified, evaluated through the device path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge.bundle import BundleError, load_bundle
from edge.engine import distance, load_engine
from edge.images import read_image
from model_export.cli import main as export_cli
from model_export.verify import verify_bundle

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_manifest_carries_the_figures(bundle_dir: Path) -> None:
    m = json.loads((bundle_dir / "manifest.json").read_text())
    ev, q = m["evaluation"], m["quantization_check"]
    assert ev["accuracy_mean"] >= 0.985  # face_recognition's own pipeline: about 98.5% here
    variants = ev["variants"]
    # the quantization the build shipped (int8 where it is fastest; float16 on a machine
    # whose int8 kernels are slower, e.g. one with AVX2 only) against the float model
    shipped = m["encoder"]["quantization"]
    assert variants[shipped]["accuracy_mean"] >= variants["float"]["accuracy_mean"] - 0.002
    assert (
        variants[f"{shipped}+mirror"]["accuracy_mean"]
        >= variants["float+mirror"]["accuracy_mean"] - 0.002
    )
    assert q["cosine_mean"] >= 0.995
    assert 0.3 < m["tau"]["identify"] <= m["tau"]["verify"] < 0.8
    assert set(m["files"]) == {"encoder.tflite", "detector_yunet.onnx", "landmarks_5.npz"}
    assert m["encoder"]["macs"] > 2e8 and m["provenance"]["licence"].startswith("CC0")
    assert ev["no_face"] <= 0.005 * 3811  # the detector finds >= 99.5% of LFW faces


def test_verify_passes_and_a_tampered_copy_is_refused(
    bundle_dir: Path, face_data: Path, tmp_path: Path
) -> None:
    result = verify_bundle(bundle_dir, face_data)
    assert result["ok"], result["problems"]
    assert result["cosine_min"] >= 0.99 and result["faces"] == 16
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_dir, copy)
    data = bytearray((copy / "encoder.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "encoder.tflite").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        load_bundle(copy)
    out = CliRunner().invoke(
        export_cli, ["verify", "--bundle", str(copy), "--data", str(face_data)]
    )
    assert out.exit_code == 1 and "changed or damaged" in out.output


def test_device_path_tells_people_apart(bundle_dir: Path, face_data: Path) -> None:
    bundle = load_bundle(bundle_dir)
    engine = load_engine(bundle)
    lfw = face_data / "lfw"
    photos = [lfw / "Colin_Powell/Colin_Powell_0001.jpg", lfw / "Colin_Powell/Colin_Powell_0002.jpg",
              lfw / "Queen_Elizabeth_II/Queen_Elizabeth_II_0001.jpg"]  # fmt: skip
    vectors = []
    for path in photos:
        image = read_image(path)
        [face] = [engine.align(image, d) for d in engine.detect(image)[:1]]
        [emb] = engine.embed([face])
        assert emb.encoder_id == bundle.manifest.encoder_id and emb.vector.shape == (128,)
        vectors.append(emb.vector)
    d = distance(np.stack(vectors), np.stack(vectors), bundle.manifest.encoder.metric)
    tau = bundle.manifest.tau.verify
    assert d[0, 1] <= tau < min(d[0, 2], d[1, 2])


def test_evaluate_cli_writes_the_report(bundle_dir: Path, face_data: Path, tmp_path: Path) -> None:
    lines = (face_data / "lfw_protocol" / "pairs_dev.txt").read_text().splitlines()
    pairs = tmp_path / "pairs.txt"  # one fold: 300 same + 300 different
    pairs.write_text("\n".join(["1\t300", *lines[1:601]]) + "\n")
    report_file = tmp_path / "eval.json"
    args = ["evaluate", "--bundle", str(bundle_dir), "--pairs", str(pairs),
            "--images", str(face_data / "lfw"), "--json", str(report_file)]  # fmt: skip
    out = CliRunner().invoke(export_cli, args)
    assert out.exit_code == 0, out.output
    report = json.loads(report_file.read_text())
    for key in ("accuracy_mean", "accuracy_std", "tau", "tar_at_far", "auc", "pairs", "no_face"):
        assert key in report
    assert report["pairs"] == 600 and report["accuracy_mean"] > 0.97
