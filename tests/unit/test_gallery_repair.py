"""A damaged gallery file: every verb says so and what to do; check finds it; repair keeps
what can be read, says what was lost, and the verbs work again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from edge.gallery import Gallery, GalleryError, Sample
from edge.gallery_repair import check, repair


def leaf_of(path: Path, table: str, nth: int = 1) -> int:
    """The page number of a leaf page of ``table`` (SQLite's dbstat table)."""
    with sqlite3.connect(path) as conn:
        leaves = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno",
            (table,),
        ).fetchall()
    return int(leaves[nth][0])


def damaged_gallery(path: Path, people: int = 300) -> None:
    rng = np.random.default_rng(3)
    with Gallery(path) as g:
        for i in range(people):
            g.add(f"P{i}", [Sample(rng.random(128).astype(np.float32), "enc", "x.jpg", 1.0)])
    with path.open("r+b") as fh:  # a page of garbage (a failing SD card): P104 to P203
        fh.seek(4096 * (leaf_of(path, "people") - 1))
        fh.write(b"\xde\xad" * 2048)


def rows_vanish(path: Path) -> None:
    """50 people gone without an error and without the count knowing (what a garbled
    interior page can do: its pointers lead elsewhere and ids read as absent)."""
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TRIGGER tally_people_delete")
        conn.execute("DELETE FROM people WHERE id BETWEEN 101 AND 150")  # no cascade


def test_a_damaged_gallery_is_named_checked_and_repaired(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    damaged_gallery(path)
    with Gallery(path) as g:
        for verb in (g.people, lambda: g.remove("P150")):
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


def test_rows_lost_without_an_error_are_counted_as_lost(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    with Gallery(path) as g:
        for i in range(300):
            g.add(f"P{i}", [Sample(np.ones(4, np.float32), "enc", "x.jpg", 1.0)])
    rows_vanish(path)
    report = repair(path)
    assert len(report.kept_people) == 250
    assert report.unreadable_people == 50  # from the gallery's own count
    assert report.kept_embeddings == 250 and report.lost_embeddings == 50
    assert report.counted == {"people": 300, "embeddings": 300, "impostors": 0}


def test_without_a_count_the_missing_ids_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    with Gallery(path) as g:
        for i in range(300):
            g.add(f"P{i}", [Sample(np.ones(4, np.float32), "enc", "x.jpg", 1.0)])
    rows_vanish(path)
    with sqlite3.connect(path) as conn:  # as a gallery from before schema version 3
        conn.execute("DROP TABLE tally")
    report = repair(path)
    assert report.counted is None and report.unreadable_people == 0
    assert report.missing_ids == {"people": 50, "embeddings": 0}


def test_the_count_follows_every_change(tmp_path: Path) -> None:
    from edge import gallery_tally

    path = tmp_path / "gallery.db"
    vector = np.ones(4, np.float32)
    with Gallery(path) as g:
        for name in ("Alice", "Bob"):
            g.add(name, [Sample(vector, "enc", "a.jpg", 1.0)] * 2)
        g.add_impostor("Bob", vector, "enc", "sighting 1")
        g.remove("Bob")  # its embeddings and impostor faces cascade
        g.rename("Alice", "Carol")
    with sqlite3.connect(path) as conn:
        assert gallery_tally.read(conn) == {"people": 1, "embeddings": 2, "impostors": 0}
        conn.execute("UPDATE tally SET count = 'x' WHERE name = 'people'")
        assert gallery_tally.read(conn) is None


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


def test_repair_tells_of_missing_ids_when_nothing_counted_the_rows(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from edge.cli import main

    path = tmp_path / "gallery.db"
    with Gallery(path) as g:
        for i in range(200):
            g.add(f"P{i}", [Sample(np.ones(4, np.float32), "enc", "x.jpg", 1.0)])
    rows_vanish(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE tally")
    env = {"EDGE_FACE_CONFIG": "", "EDGE_FACE_GALLERY_PATH": str(path)}
    said = CliRunner().invoke(main, ["gallery", "repair"], env=env)
    assert said.exit_code == 0, said.output
    assert "kept 150 people" in said.stdout
    assert "50 people id(s) and 0 embedding id(s) are missing" in said.stdout


def test_a_damaged_schema_page_is_reported_as_everything_lost(tmp_path: Path) -> None:
    path = tmp_path / "gallery.db"
    with Gallery(path) as g:
        g.add("Alice", [Sample(np.ones(4, np.float32), "enc", "a.jpg", 1.0)])
    with path.open("r+b") as fh:  # page 1 past the file header: the schema
        fh.seek(100 + 8)
        fh.write(np.random.default_rng(6).bytes(4096 - 108))
    report = repair(path)
    assert report.kept_people == [] and report.counted is None
    assert report.unreadable_tables == ["people", "embeddings"]
    assert report.unreadable_people >= 1 and report.lost_embeddings >= 1
    assert check(path) == []
