"""``edge-face bundle install``: a bundle built elsewhere, as a folder or a tarball, on
the committed real bundle models/edge-face-dlib-cut (issue 30)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from edge.gallery import Gallery, Sample

pytestmark = [pytest.mark.integration]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_FACE_")}
    return keep | {
        "EDGE_FACE_MODEL_BUNDLE": str(tmp_path / "lib" / "bundle"),
        "EDGE_FACE_GALLERY_PATH": str(tmp_path / "lib" / "gallery.db"),
        "EDGE_FACE_CONFIG": "",
    }


def edge_face(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.fixture
def tarball(tmp_path: Path, repo_root: Path) -> Path:
    out = tmp_path / "bundle.tgz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(repo_root / "models" / "edge-face-dlib-cut", arcname="edge-face-dlib-cut")
    return out


def test_install_a_tarball_then_a_folder(
    env: dict[str, str], tarball: Path, repo_root: Path, tmp_path: Path
) -> None:
    out = edge_face(env, "bundle", "install", str(tarball), "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    manifest = json.loads((repo_root / "models/edge-face-dlib-cut/manifest.json").read_text())
    assert info["encoder_id"] == manifest["encoder_id"] and info["replaced"] is None
    dest = tmp_path / "lib" / "bundle"
    assert (dest / "manifest.json").read_bytes() == (
        repo_root / "models/edge-face-dlib-cut/manifest.json"
    ).read_bytes()
    shown = edge_face(env, "bundle", "show", "--json")
    assert json.loads(shown.stdout)["encoder_id"] == manifest["encoder_id"]
    # a gallery of another encoder: installing says what that means
    with Gallery(tmp_path / "lib" / "gallery.db") as g:
        g.add("Alice", [Sample(np.ones(128, np.float32), "another-encoder", "a.jpg", 50.0)])
    again = edge_face(env, "bundle", "install", str(repo_root / "models/edge-face-dlib-cut"))
    assert again.returncode == 0 and "installed edge-face-student" in again.stdout
    assert "made with another encoder" in again.stderr
    leftovers = [p.name for p in dest.parent.iterdir() if p.name.startswith(".bundle")]
    assert not leftovers  # neither the staging copy nor the old bundle stays behind


def test_a_bad_bundle_is_refused_and_the_installed_one_kept(
    env: dict[str, str], tarball: Path, tmp_path: Path, repo_root: Path
) -> None:
    assert edge_face(env, "bundle", "install", str(tarball)).returncode == 0
    dest = tmp_path / "lib" / "bundle"
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    bad = Path(shutil.copytree(repo_root / "models/edge-face-dlib-cut", tmp_path / "bad"))
    data = bytearray((bad / "encoder.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / "encoder.tflite").write_bytes(bytes(data))
    out = edge_face(env, "bundle", "install", str(bad))
    assert out.returncode == 1 and "does not match the manifest" in out.stderr
    assert "Traceback" not in out.stderr
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    junk = tmp_path / "junk.tgz"
    junk.write_bytes(b"not a tarball")
    out = edge_face(env, "bundle", "install", str(junk))
    assert out.returncode == 1 and "not a readable tarball" in out.stderr


def test_a_tarball_that_writes_outside_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    evil = tmp_path / "evil.tgz"
    with tarfile.open(evil, "w:gz") as tar:
        member = tarfile.TarInfo("../../escaped.txt")
        member.size = 3
        tar.addfile(member, io.BytesIO(b"bad"))
    out = edge_face(env, "bundle", "install", str(evil))
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert not list(tmp_path.parent.glob("escaped.txt"))
    assert not (tmp_path / "lib" / "bundle").exists()


def test_without_tarfiles_data_filter_the_same_rules_hold(
    tmp_path: Path, tarball: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian 12 (Raspberry Pi OS Bookworm) has Python 3.11.2, before tarfile's filters."""
    from edge.bundle import BundleError
    from edge.bundle_install import install_bundle

    monkeypatch.delattr(tarfile, "data_filter")
    done = install_bundle(tarball, tmp_path / "lib" / "bundle")
    assert (tmp_path / "lib" / "bundle" / "manifest.json").is_file() and done.replaced is None
    evil = tmp_path / "evil.tgz"
    with tarfile.open(evil, "w:gz") as tar:
        member = tarfile.TarInfo("../../escaped.txt")
        member.size = 3
        tar.addfile(member, io.BytesIO(b"bad"))
    with pytest.raises(BundleError, match="not a plain file inside the tarball"):
        install_bundle(evil, tmp_path / "other")
    assert not list(tmp_path.parent.glob("escaped.txt"))
