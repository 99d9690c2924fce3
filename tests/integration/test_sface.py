"""The SFace bundle (OpenCV zoo's encoder imported from ONNX), end to end on shared photos:
built through the same export stage, checked against OpenCV's own SFace, used by the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from edge.bundle import load_bundle
from edge.cli import main as edge_cli
from edge.engine import load_engine
from edge.images import read_image
from edge.tflite import RuntimeMissingError
from model_export.assets import SFACE, wheel_asset
from model_export.cli import main as export_cli
from model_export.faces import nearest_to_centre
from model_export.verify import verify_bundle

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_manifest_describes_an_sface_bundle(sface_bundle_dir: Path) -> None:
    m = json.loads((sface_bundle_dir / "manifest.json").read_text())
    assert m["alignment"]["type"] == "similarity" and m["alignment"]["size"] == 112
    assert m["encoder"]["metric"] == "cosine" and m["encoder"]["l2_normalize"] is True
    assert set(m["files"]) == {
        "encoder.tflite",
        "detector_yunet.onnx",
        "cohort.npy",
        "cohort_domains.npy",
    }  # no landmarks
    q = m["quantization"]
    assert set(q["candidates"]) == {"int8", "dynamic", "float16", "float32"}
    assert q["chosen"] == m["encoder"]["quantization"]
    assert q["candidates"][q["chosen"]]["accurate"]
    # built for the Pi 4 by its table, whatever this machine timed: SFace has PReLU layers,
    # so dynamic range (int8 weights, float PReLU) when it follows float closely
    assert q["target"] == "pi4" and q["prelu"] is True
    assert q["chosen"] == "dynamic" or not q["candidates"]["dynamic"]["accurate"]
    assert m["encoder"]["runtimes"] == q["candidates"][q["chosen"]]["runtimes"]
    assert m["calibration_pairs"]["accuracy_mean"] >= 0.95  # where tau is fitted
    assert m["provenance"]["licence"].startswith("Apache-2.0")


def test_sface_on_the_held_out_lfw_pairs(sface_bundle_dir: Path, face_data: Path) -> None:
    from model_export.data import read_pairs
    from model_export.evaluate import evaluate_bundle

    pairs = read_pairs(face_data / "lfw_protocol" / "pairs_dev.txt", face_data / "lfw")
    report = evaluate_bundle(load_bundle(sface_bundle_dir), pairs)
    assert report["accuracy_mean"] >= 0.985  # OpenCV's SFace: about 99.3% here
    assert report["tar_at_far"] >= 0.97


def test_device_path_matches_opencvs_sface(sface_bundle_dir: Path, face_data: Path) -> None:
    bundle = load_bundle(sface_bundle_dir)
    engine = load_engine(bundle)
    mirror = bundle.manifest.encoder.mirror_average
    reference = cv2.FaceRecognizerSF.create(str(wheel_asset(SFACE)), "")
    photos = sorted((face_data / "lfw").glob("A*/*_0001.jpg"))[:25]
    photos += sorted((face_data / "photos" / "ageitgey" / "knn_examples" / "train").glob("*/*"))
    cosines = []
    for path in photos:
        rgb = read_image(path)
        det = nearest_to_centre(engine.detect(rgb), rgb.shape)
        assert det is not None, path
        ours = engine.embed([engine.align(rgb, det)])[0].vector
        b = det.box
        row = np.array(
            [[b.x1, b.y1, b.width, b.height, *det.landmarks.ravel(), det.score]], np.float32
        )
        crop = reference.alignCrop(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), row)
        theirs = reference.feature(crop).ravel()
        if mirror:  # the bundle averages a face with its mirror image: so must the reference
            theirs = (theirs + reference.feature(np.ascontiguousarray(crop[:, ::-1])).ravel()) / 2
        cosines.append(float(ours @ theirs / np.linalg.norm(ours) / np.linalg.norm(theirs)))
    assert min(cosines) > 0.99, cosines  # measured: mean 0.9991, min 0.9969 over 3811 photos


def test_verify_passes(sface_bundle_dir: Path, face_data: Path) -> None:
    result = verify_bundle(sface_bundle_dir, face_data)
    assert result["ok"], result


def test_enroll_and_identify_with_the_sface_bundle(
    sface_bundle_dir: Path, face_data: Path, tmp_path: Path
) -> None:
    env = {"EDGE_FACE_MODEL_BUNDLE": str(sface_bundle_dir), "EDGE_FACE_CONFIG": "",
           "EDGE_FACE_GALLERY_PATH": str(tmp_path / "gallery.db")}  # fmt: skip
    knn = face_data / "photos" / "ageitgey" / "knn_examples"
    run = CliRunner().invoke
    for person in sorted((knn / "train").iterdir()):
        out = run(edge_cli, ["enroll", person.name, str(person)], env=env)
        assert out.exit_code == 0, out.output
    out = run(edge_cli, ["identify", str(knn / "test"), "--json"], env=env)
    assert out.exit_code == 0, out.output
    named = {
        Path(r["image"]).name: sorted(f["person"] for f in r["faces"] if f["known"])
        for r in json.loads(out.stdout)
    }
    assert named["obama1.jpg"] == ["obama"]
    assert named["kit_with_rose.jpg"] == ["kit_harington", "rose_leslie"]
    assert named["alex_lacamoire1.jpg"] == ["alex_lacamoire"]
    strangers = run(
        edge_cli, ["identify", str(face_data / "photos" / "timesler" / "test_images"), "--json"],
        env=env,
    )  # fmt: skip
    for r in json.loads(strangers.stdout):
        assert r["faces"] and not any(f["known"] for f in r["faces"]), r
    lfw = face_data / "lfw"
    same = run(edge_cli, ["verify", str(lfw / "Colin_Powell/Colin_Powell_0001.jpg"),
                          str(lfw / "Colin_Powell/Colin_Powell_0002.jpg"), "--json"], env=env)  # fmt: skip
    assert json.loads(same.stdout)["same"] is True


def test_a_runtime_the_bundle_does_not_list_is_refused_clearly(sface_bundle_dir: Path) -> None:
    bundle = load_bundle(sface_bundle_dir)
    if "tflite-runtime 2.14" in bundle.manifest.encoder.runtimes:
        pytest.skip("this machine's build chose a quantization that tflite-runtime loads")
    with pytest.raises(RuntimeMissingError, match="loads only in ai-edge-litert"):
        load_engine(bundle, runtime="tflite-runtime")


def test_an_onnx_op_the_importer_lacks_is_named(tmp_path: Path, face_data: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 112, 112])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 128])
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 0.5, 0.5])
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["small"], name="shrink"),
        helper.make_node("Flatten", ["small"], ["flat"]),
        helper.make_node("Gemm", ["flat", "w"], ["y"], transB=1),
    ]
    w = helper.make_tensor("w", TensorProto.FLOAT, [128, 3 * 56 * 56], [0.0] * (128 * 3 * 56 * 56))
    graph = helper.make_graph(nodes, "enc", [x], [y], initializer=[scales, w])
    path = tmp_path / "resizing.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), path)
    out = CliRunner().invoke(
        export_cli, ["build", "--out", str(tmp_path / "b"), "--encoder", str(path),
                     "--data", str(face_data), "--no-evaluate"],
    )  # fmt: skip
    assert out.exit_code == 1
    assert "unsupported ONNX op Resize (node shrink)" in out.output
    assert not (tmp_path / "b").exists()


def test_a_manifest_that_disagrees_with_its_encoder_is_a_clear_error(
    sface_bundle_dir: Path, tmp_path: Path
) -> None:
    import shutil

    from edge.bundle import BundleError

    copy = tmp_path / "bundle"
    shutil.copytree(sface_bundle_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["encoder"]["input_size"] = 96
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="takes 112x112 pixel faces, the manifest says 96x96"):
        load_engine(load_bundle(copy))
