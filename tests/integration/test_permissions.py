"""A gallery that belongs to another user, or that this user may only read: every verb
says so and what to do, never a traceback (issue 29, item 6).

As root the test drops the capabilities that let root ignore file modes
(CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) with setpriv, so root meets the gallery of the
service user as any other user would; as another user it uses a file of its own with
mode 0000 / 0444."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.gallery import Gallery, Sample

EDGE_FACE = [sys.executable, "-m", "edge"]
AS_ROOT = os.geteuid() == 0
if AS_ROOT and shutil.which("setpriv") is None:
    pytest.skip(
        "setpriv (util-linux) is needed to run as root without DAC override",
        allow_module_level=True,
    )
DROP = (
    ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps=-all"]
    if AS_ROOT
    else []
)
NOBODY = 65534


@pytest.fixture
def setup(tmp_path: Path, repo_root: Path) -> tuple[Path, Path]:
    folder = tmp_path / "lib"
    folder.mkdir()
    db = folder / "gallery.db"
    with Gallery(db) as g:
        g.add("Alice", [Sample(np.ones(4, np.float32), "enc-1", "a.jpg", 50.0)])
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[gallery]\npath = "{db}"\n[model]\nbundle = "{repo_root / "models/edge-face-dlib-cut"}"\n'
    )
    for path in (tmp_path, folder, cfg):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return cfg, db


def edge_face(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_FACE_")}
    return subprocess.run(
        [*DROP, *EDGE_FACE, "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def other_users(db: Path, mode: int) -> None:
    """Make the gallery (and its folder) another user's with ``mode``."""
    if AS_ROOT:
        for path in (db.parent, db):
            os.chown(path, NOBODY, NOBODY)
    db.chmod(mode)


VERBS = [("people",), ("remove", "Alice", "--yes"), ("rename", "Alice", "Alicia")]


@pytest.mark.parametrize("verb", VERBS, ids=lambda v: v[0])
def test_a_gallery_this_user_may_not_read(setup: tuple[Path, Path], verb: tuple[str, ...]) -> None:
    cfg, db = setup
    other_users(db, 0o600 if AS_ROOT else 0o000)
    out = edge_face(cfg, *verb)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr + out.stdout
    assert "may not read and write it" in out.stderr, out.stderr


@pytest.mark.parametrize("verb", VERBS[1:], ids=lambda v: v[0])
def test_a_gallery_this_user_may_only_read(setup: tuple[Path, Path], verb: tuple[str, ...]) -> None:
    cfg, db = setup
    other_users(db, 0o644 if AS_ROOT else 0o444)
    listed = edge_face(cfg, "people")
    assert "Traceback" not in listed.stderr + listed.stdout
    changed = edge_face(cfg, *verb)
    assert changed.returncode != 0 and "Traceback" not in changed.stderr + changed.stdout
    assert "may not read and write it" in changed.stderr or "read-only" in changed.stderr, (
        changed.stderr
    )
    with Gallery(db) as g:  # nothing lost
        assert [p.name for p in g.people()] == ["Alice"]
