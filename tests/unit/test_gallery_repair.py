"""A damaged gallery file: every verb says so and what to do; check finds it; repair keeps
what can be read, says what was lost, and the verbs work again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.gallery import Gallery, GalleryError, Sample
from edge.gallery_repair import check, repair


def damaged_gallery(path: Path, people: int = 300) -> None:
    rng = np.random.default_rng(3)
    with Gallery(path) as g:
        for i in range(people):
            g.add(f"P{i}", [Sample(rng.random(128).astype(np.float32), "enc", "x.jpg", 1.0)])
    with path.open("r+b") as fh:  # a page of garbage in the middle (a failing SD card)
        fh.seek(4096 * 22)  # page 23: a leaf of the people table (schema version 2)
        fh.write(b"\xde\xad" * 2048)


def test_a_damaged_gallery_is_named_checked_and_repaired(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    damaged_gallery(path)
    with Gallery(path) as g:
        for verb in (g.people, lambda: g.remove("P5")):
            with pytest.raises(GalleryError, match=r"is damaged .* gallery repair"):
                verb()
    assert check(path)  # SQLite's problems
    report = repair(path)
    assert check(path) == [] and Path(str(report.damaged_copy)).is_file()
    assert report.unreadable_people + report.lost_embeddings > 0
    assert len(report.kept_people) + report.unreadable_people == 300
    with Gallery(path) as g:
        names = [p.name for p in g.people()]
        assert names == sorted(report.kept_people, key=str.lower)
        kept = names[0]
        assert g.remove(kept) == 1  # the verbs work again
        assert len(g.matrix("enc").names) == len(names) - 1


def test_a_sound_gallery_checks_ok_and_repairs_to_itself(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    with Gallery(path) as g:
        g.add("Alice", [Sample(np.ones(4, np.float32), "enc", "a.jpg", 1.0)])
    assert check(path) == []
    report = repair(path)
    assert report.kept_people == ["Alice"] and report.kept_embeddings == 1
    assert report.unreadable_people == report.lost_embeddings == 0
    with pytest.raises(GalleryError, match="no gallery"):
        check(tmp_path / "missing.db")


def test_opening_problems_say_what_to_do() -> None:
    import sqlite3

    from edge.db import opening_problem

    assert "read-only for this user" in opening_problem(
        sqlite3.OperationalError("attempt to write a readonly database"), "gallery"
    )
    assert "may not open it" in opening_problem(
        sqlite3.OperationalError("unable to open database file"), "gallery"
    )
    assert "gallery repair" in opening_problem(
        sqlite3.DatabaseError("database disk image is malformed"), "gallery"
    )
    assert "not an edge-face outbox" in opening_problem(
        sqlite3.DatabaseError("file is not a database"), "outbox"
    )


def test_the_gallery_verbs_check_and_repair(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from edge.cli import main

    path = tmp_path / "gallery.db"
    damaged_gallery(path)
    env = {"EDGE_FACE_CONFIG": "", "EDGE_FACE_GALLERY_PATH": str(path)}
    runner = CliRunner()
    bad = runner.invoke(main, ["gallery", "check", "--json"], env=env)
    assert bad.exit_code == 1 and json.loads(bad.stdout)["ok"] is False
    fixed = runner.invoke(main, ["gallery", "repair", "--json"], env=env)
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(fixed.stdout)["kept_people"]
    assert runner.invoke(main, ["gallery", "check"], env=env).exit_code == 0
