"""Shared fixtures. Real face data is found through $EDGE_FACE_DATA (default ../shared/faces)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    return Path(os.environ.get("EDGE_FACE_DATA", REPO.parent / "shared" / "faces")).resolve()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def face_data() -> Path:
    root = data_root()
    if not (root / "lfw").is_dir():
        pytest.fail(f"face data not found at {root}: set EDGE_FACE_DATA to the shared faces folder")
    return root


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No EDGE_FACE_* settings or systemd variables leak in from the caller's shell."""
    for var in list(os.environ):
        if (var.startswith("EDGE_FACE_") and var != "EDGE_FACE_DATA") or var in (
            "CREDENTIALS_DIRECTORY",
            "CONFIGURATION_DIRECTORY",
        ):
            monkeypatch.delenv(var, raising=False)
