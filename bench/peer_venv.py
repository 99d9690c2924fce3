"""The peers' own venvs, never the project's: created on first use, reused after.

- ``DLIB`` (build/bench-venv-dlib): face_recognition without its dlib source build, on the
  prebuilt dlib-bin wheel.
- ``OPENCV`` (build/bench-venv-opencv): OpenCV's YuNet + SFace (opencv-python-headless).

Creating a venv also measures what a user would pay to install that peer: the time of its
pip installs (download + install, pip's cache off) and the size they add to a bare venv.
Both go into the venv's stamp file; a venv whose stamp lacks them is made afresh.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).with_name("peer_dlib.py")  # encoder_vs_dlib.py's worker
PEER_WORKER = Path(__file__).with_name("peer_worker.py")  # suite.py's worker (both peers)
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
PIP = ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-cache-dir"]


@dataclass(frozen=True, slots=True)
class PeerSpec:
    name: str
    venv: Path
    no_deps: tuple[str, ...]
    packages: tuple[str, ...]

    def wanted(self) -> dict[str, list[str]]:
        return {"no_deps": list(self.no_deps), "packages": list(self.packages)}


DLIB = PeerSpec("dlib", REPO / "build" / "bench-venv-dlib", tuple(NO_DEPS), tuple(PACKAGES))
OPENCV = PeerSpec(
    "opencv",
    REPO / "build" / "bench-venv-opencv",
    (),
    ("opencv-python-headless==4.14.0.94", "numpy==2.4.6"),
)


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def du_bytes(path: Path) -> int:
    """Disk usage of a folder (``du -sb``: apparent sizes, hard links counted once)."""
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def _pip(venv: Path, *args: str) -> None:
    subprocess.run([str(python_of(venv)), *PIP, *args], check=True)


def _read_stamp(venv: Path) -> dict[str, Any] | None:
    try:
        stamp: dict[str, Any] = json.loads((venv / STAMP).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return stamp


def _spec_of(venv: Path) -> PeerSpec:
    for spec in (DLIB, OPENCV):
        if spec.venv == venv:
            return spec
    return PeerSpec(venv.name, venv, tuple(NO_DEPS), tuple(PACKAGES))


def ensure_peer(spec: PeerSpec) -> Path:
    """The peer venv's python, creating the venv (and measuring its install) when needed."""
    stamp = _read_stamp(spec.venv)
    if (
        python_of(spec.venv).is_file()
        and stamp is not None
        and {k: stamp.get(k) for k in ("no_deps", "packages")} == spec.wanted()
        and "install" in stamp
    ):
        return python_of(spec.venv)
    print(f"creating the peer venv {spec.venv} ({spec.name}) ...", flush=True)
    shutil.rmtree(spec.venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(spec.venv)], check=True)
    bare = du_bytes(spec.venv)
    t0 = time.perf_counter()
    if spec.no_deps:
        _pip(spec.venv, "--no-deps", *spec.no_deps)
    _pip(spec.venv, *spec.packages)
    seconds = time.perf_counter() - t0
    install = {
        "pip_seconds": round(seconds, 1),
        "added_bytes": du_bytes(spec.venv) - bare,
        "venv_bytes": du_bytes(spec.venv),
        "bare_venv_bytes": bare,
        "how": "pip install into a fresh venv, download + install, pip cache off",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (spec.venv / STAMP).write_text(json.dumps(spec.wanted() | {"install": install}, indent=1))
    return python_of(spec.venv)


def install_record(spec: PeerSpec) -> dict[str, Any] | None:
    stamp = _read_stamp(spec.venv)
    record = stamp.get("install") if stamp else None
    return record if isinstance(record, dict) else None


def ensure_venv(venv: Path) -> Path:
    """encoder_vs_dlib.py's entry point: the dlib peer's python."""
    return ensure_peer(_spec_of(venv))


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
