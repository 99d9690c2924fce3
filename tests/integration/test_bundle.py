"""The default bundle, end to end: built, verified, evaluated through the device path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge.bundle import BundleError, load_bundle
from edge.decision import distance
from edge.engine import load_engine
from edge.images import read_image
from model_export.cli import main as export_cli
from model_export.verify import verify_bundle

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_manifest_carries_the_figures(bundle_dir: Path) -> None:
    m = json.loads((bundle_dir / "manifest.json").read_text())
    fit, q = m["calibration_pairs"], m["quantization_check"]
    assert fit["pairs"] >= 600 and fit["accuracy_mean"] >= 0.95  # fitted here: not a result
    assert "evaluation" not in m  # held-out figures come from make bench, on other people
    variants = fit["variants"]
    # the quantization the build shipped against the float model
    shipped = m["encoder"]["quantization"]
    assert variants[shipped]["accuracy_mean"] >= variants["float"]["accuracy_mean"] - 0.002
    assert (
        variants[f"{shipped}+mirror"]["accuracy_mean"]
        >= variants["float+mirror"]["accuracy_mean"] - 0.002
    )
    assert q["cosine_mean"] >= 0.995
    # dlib's ResNet has no PReLU: the Pi 4 table takes full int8 when it is accurate
    chosen = m["quantization"]
    assert chosen["target"] == "pi4" and chosen["prelu"] is False
    assert shipped == "int8" or not chosen["candidates"]["int8"]["accurate"]
    assert 0.3 < m["tau"]["verify"] < 0.8
    assert set(m["files"]) == {"encoder.tflite", "detector_yunet.onnx", "landmarks_5.npz",
                               "cohort.npy", "cohort_domains.npy"}  # fmt: skip
    # the open-set table in cohort scores: a stranger's nearest enrolled face against the
    # mean of its 20 nearest cohort faces (every photo the table was fitted on, up to 10
    # per calibrate person), which are nearer than a typical stranger
    people = m["identify"]["people"]
    assert m["cohort"]["people"] == people and m["cohort"]["k"] == 20
    assert people + m["identify"]["with_second_photo"] < m["cohort"]["faces"] <= 10 * people
    assert "cohort" in m["identify"]["score"] and 0.5 < m["tau"]["identify"] < 1.0
    assert m["encoder"]["macs"] > 2e8 and m["provenance"]["licence"].startswith("CC0")
    assert fit["no_face"] <= 0.005 * 2 * fit["pairs"]
    assert m["identify"]["people"] >= 700 and "calibrate people" in m["identify"]["people_from"]
    # each cohort face's domain, and each domain's own taus, between which the averaged lie
    loaded = load_bundle(bundle_dir)
    assert loaded.cohort is not None and loaded.cohort.domains == ("cfp", "lfw")
    assert loaded.cohort.label is not None
    counts = np.bincount(loaded.cohort.label, minlength=2)
    assert 0 < counts[0] < counts[1]  # fewer CFP calibrate faces than LFW's
    own = m["identify"]["tau_by_domain"]
    assert set(own) == {"cfp", "lfw"}
    low, high = np.minimum(own["cfp"], own["lfw"]), np.maximum(own["cfp"], own["lfw"])
    assert (low - 1e-4 <= np.asarray(m["identify"]["tau"])).all()
    assert (np.asarray(m["identify"]["tau"]) <= high + 1e-4).all()


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


PHOTOS = 2320  # in the 1,800 pairs of folds 1-3


def test_evaluate_cli_on_the_held_out_lfw_pairs(
    bundle_dir: Path, face_data: Path, tmp_path: Path
) -> None:
    """The LFW View 2 pairs of folds 1-3 (report people: nothing of the bundle was fitted
    on them; folds 4-5's people are calibrate and select people)."""
    report_file = tmp_path / "eval.json"
    args = ["evaluate", "--bundle", str(bundle_dir), "--data", str(face_data), "--json",
            str(report_file)]  # fmt: skip
    out = CliRunner().invoke(export_cli, args)
    assert out.exit_code == 0, out.output
    report = json.loads(report_file.read_text())
    for key in ("accuracy_mean", "accuracy_std", "tau", "tar_at_far", "auc", "pairs", "no_face"):
        assert key in report
    assert report["pairs"] == 1800
    assert report["accuracy_mean"] >= 0.985  # face_recognition's own pipeline: about 98.5% here
    assert report["no_face"]["count"] <= 0.005 * PHOTOS  # the detector finds >= 99.5% of them


def test_calibrate_fits_the_builds_own_rule_again(
    bundle_dir: Path, face_data: Path, tmp_path: Path
) -> None:
    """``model-export calibrate`` runs the bundle's own encoder over the calibrate people:
    on a bundle the build has just fitted, it finds the same cohort and table; a bundle
    without a cohort (as built before them) gets one, its encoder and id unchanged."""
    old = tmp_path / "old"
    shutil.copytree(bundle_dir, old)
    m = json.loads((old / "manifest.json").read_text())
    built = {k: m.pop(k) for k in ("cohort", "identify")} | {"files": dict(m["files"])}
    for name in ("cohort.npy", "cohort_domains.npy"):
        del m["files"][name]
        (old / name).unlink()
    (old / "manifest.json").write_text(json.dumps(m))
    assert load_bundle(old).cohort is None  # loads as a bundle of before cohorts
    out = tmp_path / "refit"
    result = CliRunner().invoke(
        export_cli, ["calibrate", "--bundle", str(old), "--out", str(out), "--data", str(face_data)]
    )
    assert result.exit_code == 0, result.output
    refit = load_bundle(out)
    assert refit.manifest.encoder_id == load_bundle(bundle_dir).manifest.encoder_id
    assert refit.cohort is not None
    original = np.load(bundle_dir / "cohort.npy")
    assert np.allclose(refit.cohort.vectors, original.astype(np.float32), atol=1e-3)
    table = refit.raw["identify"]
    assert table["margin"] == built["identify"]["margin"]
    assert np.allclose(table["tau"], built["identify"]["tau"], atol=1e-3)
    for d, taus in built["identify"]["tau_by_domain"].items():
        assert np.allclose(table["tau_by_domain"][d], taus, atol=1e-3), d
    assert refit.cohort.domains == ("cfp", "lfw")
    assert refit.raw["files"]["encoder.tflite"] == built["files"]["encoder.tflite"]
    assert "model-export calibrate" in refit.raw["cohort"]["fitted_by"]
    assert out.stat().st_mode & 0o777 == 0o755  # readable by the service user
    # in place: replaced only by a bundle that verifies; a missing bundle is a clear error
    again = CliRunner().invoke(
        export_cli, ["calibrate", "--bundle", str(out), "--data", str(face_data)]
    )
    assert again.exit_code == 0, again.output
    assert load_bundle(out).raw["identify"]["tau"] == table["tau"]
    missing = CliRunner().invoke(
        export_cli, ["calibrate", "--bundle", str(tmp_path), "--data", str(face_data)]
    )
    assert missing.exit_code == 1 and "no model bundle" in missing.output
