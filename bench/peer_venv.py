"""The peer's own venv (build/bench-venv-dlib): face_recognition without its dlib source
build, on the prebuilt dlib-bin wheel. Created on first use, reused after; never the
project's venv."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).with_name("peer_dlib.py")
# face_recognition declares a dependency on "dlib" (a source build); dlib-bin provides the
# same module prebuilt, so face_recognition goes in with --no-deps and the rest beside it.
NO_DEPS = ["face_recognition==1.3.0"]
PACKAGES = [
    "dlib-bin==20.0.1.post1",
    "face_recognition_models==0.3.0",  # imports pkg_resources: needs setuptools < 81
    "setuptools<81",
    "numpy==2.4.6",
    "pillow==13.0.0",
    "click==8.5.1",
]
STAMP = ".bench-installed.json"


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def pip(venv: Path, *args: str) -> None:
    cmd = [str(python_of(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*cmd, *args], check=True)


def ensure_venv(venv: Path) -> Path:
    """The peer venv's python, creating the venv and installing the pins when needed."""
    wanted = {"no_deps": NO_DEPS, "packages": PACKAGES}
    stamp = venv / STAMP
    if python_of(venv).is_file() and stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return python_of(venv)
    print(f"creating the peer venv {venv} (face_recognition + dlib-bin) ...", flush=True)
    if not python_of(venv).is_file():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip(venv, "--no-deps", *NO_DEPS)
    pip(venv, *PACKAGES)
    stamp.write_text(json.dumps(wanted))
    return python_of(venv)


def run_worker(python: Path, *args: str, capture: bool = False) -> str:
    """Run peer_dlib.py in the peer venv; its progress goes to our stderr."""
    done = subprocess.run(
        [str(python), str(WORKER), *args],
        check=True,
        stdout=subprocess.PIPE if capture else None,
        text=True,
    )
    return done.stdout or ""


def peer_versions(python: Path) -> dict[str, object]:
    versions: dict[str, object] = json.loads(run_worker(python, "versions", capture=True))
    return versions
