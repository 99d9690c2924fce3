"""The device path (issue 30): a venv with the runtime dependencies only (no TensorFlow,
no export or dev extra) runs the demo on the committed bundle models/edge-face-dlib-cut
and gets the Hamilton clip's events, as `make demo-device` does on a Pi.

The venv's dependencies are cached between runs (keyed by pyproject.toml and the Python
version, under ~/.cache/edge-face); the project itself is installed into it afresh on
every run, from this working tree.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edge-face"


def pip(python: Path, *args: str) -> None:
    out = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "install", "--quiet", *args],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if out.returncode != 0:
        pytest.fail(f"pip install {' '.join(args)} failed:\n{out.stderr[-3000:]}")


@pytest.fixture(scope="module")
def device_python(repo_root: Path) -> Path:
    key = hashlib.sha256(
        (repo_root / "pyproject.toml").read_bytes() + sys.version.encode()
    ).hexdigest()[:16]
    venv = CACHE / f"device-venv-{key}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").is_file():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip(python, "--upgrade", "pip")
        pip(python, str(repo_root))  # the runtime dependencies, as a user installs them
        (venv / ".complete").touch()
    pip(python, "--no-deps", "--force-reinstall", str(repo_root))  # this tree's code
    return python


def test_the_device_venv_has_no_export_stage(device_python: Path) -> None:
    for module in ("tensorflow", "onnx", "pytest"):
        out = subprocess.run([str(device_python), "-c", f"import {module}"], capture_output=True)
        assert out.returncode != 0, f"{module} is importable in the device venv"


def test_the_demo_runs_on_the_committed_bundle(
    device_python: Path, repo_root: Path, face_data: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_FACE_")}
    env["EDGE_FACE_DATA"] = str(face_data)
    out = subprocess.run(
        [str(device_python), str(repo_root / "scripts" / "demo.py"),
         "--bundle", str(repo_root / "models" / "edge-face-dlib-cut")],
        capture_output=True, text=True, timeout=600, env=env, cwd=repo_root,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "EVENT recognized Lin-Manuel Miranda" in out.stdout, out.stdout
    assert "recognized: Lin-Manuel Miranda" in out.stdout
