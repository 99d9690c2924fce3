"""The real model bundle, built once (or taken from the build cache) for every integration test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import Broker


@pytest.fixture(scope="session")
def bundle_dir(repo_root: Path, face_data: Path) -> Path:
    from model_export.build import BuildOptions, build

    out = repo_root / "build" / "bundle"  # the dlib bundle: loads in both TFLite runtimes
    return build(BuildOptions(out=out, data_root=face_data, encoder="dlib"))


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
