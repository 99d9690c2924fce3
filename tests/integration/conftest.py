"""The real model bundle, built once (or taken from the build cache) for every integration test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def bundle_dir(repo_root: Path, face_data: Path) -> Path:
    from model_export.build import BuildOptions, build

    return build(BuildOptions(out=repo_root / "build" / "bundle", data_root=face_data))
