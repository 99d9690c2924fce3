"""The package installs with only its runtime dependencies, and the CLI works there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def sh(*cmd: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)  # type: ignore[call-overload]


def test_help_runs_with_only_runtime_dependencies(tmp_path: Path, repo_root: Path) -> None:
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv, check=True)
    py = venv / "bin" / "python"
    install = sh(py, "-m", "pip", "install", "--quiet", repo_root)
    assert install.returncode == 0, install.stderr[-3000:]

    installed = sh(py, "-m", "pip", "list", "--format=freeze").stdout.lower()
    assert "tensorflow" not in installed and "picamera2" not in installed
    assert "ai-edge-litert" in installed and "opencv-python-headless" in installed

    help_out = sh(venv / "bin" / "edge-face", "--help")
    assert help_out.returncode == 0, help_out.stderr
    assert "check-config" in help_out.stdout
    check = sh(venv / "bin" / "edge-face", "--config", repo_root / "config.toml", "check-config")
    assert check.returncode == 0, check.stderr
    export_help = sh(venv / "bin" / "model-export", "--help")
    assert export_help.returncode == 0, export_help.stderr
    # the runtime itself loads: the interpreter the device will use
    probe = sh(
        py, "-c", "from ai_edge_litert.interpreter import Interpreter; import cv2, paho.mqtt"
    )
    assert probe.returncode == 0, probe.stderr
