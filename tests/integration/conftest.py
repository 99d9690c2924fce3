"""The real model bundle, built once (or taken from the build cache) for every integration test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import Broker


@pytest.fixture(scope="session")
def bundle_dir(repo_root: Path, face_data: Path) -> Path:
    from model_export.build import BuildOptions, build

    out = repo_root / "build" / "bundle"  # the dlib bundle, in the quantization the build picks
    return build(BuildOptions(out=out, data_root=face_data, encoder="dlib"))


@pytest.fixture(scope="session")
def both_runtimes_bundle_dir(repo_root: Path, face_data: Path, bundle_dir: Path) -> Path:
    """A dlib bundle that loads in both TFLite runtimes (ai-edge-litert and tflite-runtime
    2.14): ``bundle_dir`` when the build shipped such a model, else one forced to full int8
    (a CPU whose int8 kernels are slow makes the build ship dynamic range, which
    tflite-runtime 2.14 cannot load)."""
    import json

    from model_export.build import BuildOptions, build

    runtimes = json.loads((bundle_dir / "manifest.json").read_text())["encoder"].get("runtimes")
    if not runtimes or any(r.startswith("tflite-runtime") for r in runtimes):
        return bundle_dir
    out = repo_root / "build" / "bundle-int8"
    return build(BuildOptions(out=out, data_root=face_data, encoder="dlib", quantization="int8"))


@pytest.fixture(scope="session")
def sface_bundle_dir(repo_root: Path, face_data: Path) -> Path:
    """The SFace bundle (imported from ONNX), built once or taken from the build cache."""
    from model_export.build import BuildOptions, build

    out = repo_root / "build" / "bundle-sface"
    return build(BuildOptions(out=out, data_root=face_data, encoder="sface"))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A private mosquitto on a free port, for one test."""
    b = Broker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()
