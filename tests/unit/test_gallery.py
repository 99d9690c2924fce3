from __future__ import annotations

import math
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest

from edge.gallery import EncoderMismatchError, Gallery, GalleryError, Sample
from edge.matcher import Candidate, Rule, identify_rule, open_set_tau, rank


def sample(values: list[float], enc: str = "enc-1", source: str = "a.jpg") -> Sample:
    return Sample(np.array(values, np.float32), enc, source, 50.0)


@pytest.fixture
def gallery() -> Gallery:
    return Gallery(sqlite3.connect(":memory:", isolation_level=None))


def test_add_list_rename_remove(gallery: Gallery) -> None:
    assert gallery.add("Alice", [sample([0, 0]), sample([0, 1])]) == 2
    gallery.add("alice", [sample([1, 1])])  # same person, names are case-insensitive
    gallery.add("Bob", [sample([5, 5])], metadata={"role": "staff"})
    people = {p.name: p for p in gallery.people()}
    assert people["Alice"].embeddings == 3 and people["Bob"].metadata == {"role": "staff"}
    gallery.rename("Bob", "Robert")
    assert [p.name for p in gallery.people()] == ["Alice", "Robert"]
    assert gallery.remove("Alice") == 3
    assert [p.name for p in gallery.people()] == ["Robert"]
    assert gallery.conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 1


def test_errors_name_the_problem(gallery: Gallery) -> None:
    gallery.add("Alice", [sample([0, 0])])
    gallery.add("Bob", [sample([1, 0])])
    with pytest.raises(GalleryError, match="no person named 'Carol'"):
        gallery.remove("Carol")
    with pytest.raises(GalleryError, match="already enrolled"):
        gallery.rename("Alice", "bob")
    with pytest.raises(GalleryError, match="empty"):
        gallery.add("  ", [sample([0, 0])])


def test_another_encoders_embeddings_are_refused(gallery: Gallery) -> None:
    gallery.add("Alice", [sample([0, 0], enc="old")])
    with pytest.raises(EncoderMismatchError, match="Re-enroll"):
        gallery.add("Bob", [sample([0, 0], enc="new")])
    with pytest.raises(EncoderMismatchError, match="encoder old"):
        gallery.matrix("new")


def test_matrix_skips_a_damaged_row(gallery: Gallery, caplog: pytest.LogCaptureFixture) -> None:
    gallery.add("Alice", [sample([0, 0])])
    gallery.add("Bob", [sample([3, 4])])
    gallery.conn.execute("UPDATE embeddings SET vector = X'00' WHERE id = 1")
    m = gallery.matrix("enc-1")
    assert m.names == ["Bob"] and m.skipped == 1 and m.vectors.shape == (1, 2)
    assert "damaged" in caplog.text


def test_rank_takes_each_persons_nearest_embedding(gallery: Gallery) -> None:
    gallery.add("Alice", [sample([0, 0]), sample([10, 0])])
    gallery.add("Bob", [sample([3, 0])])
    ranked = rank(gallery.matrix(), np.array([9, 0], np.float32), "euclidean")
    assert ranked == [Candidate("Alice", 1.0), Candidate("Bob", 6.0)]


def test_rule_tau_and_margin() -> None:
    ranked = [Candidate("A", 0.30), Candidate("B", 0.35)]
    assert Rule(0.4).decide(ranked).person == "A"
    assert Rule(0.25).decide(ranked).known is False
    unsure = Rule(0.4, margin=0.1).decide(ranked)
    assert unsure.known is False and unsure.person is None and unsure.distance == 0.30
    assert Rule(0.4).decide([]).distance == math.inf


def test_identify_tau_tightens_as_the_gallery_grows() -> None:
    table = {"margin": 0.05, "sizes": [1, 10, 100], "rates": [0.001, 0.01, 0.1],
             "tau": [[0.5, 0.6, 0.7], [0.45, 0.55, 0.65], [0.4, 0.5, 0.6]]}  # fmt: skip
    assert open_set_tau(table, 10, 0.01) == pytest.approx(0.55)
    assert open_set_tau(table, 31, 0.01) == pytest.approx(0.525, abs=1e-3)  # log-interpolated
    assert open_set_tau(table, 10**4, 10**-4) == pytest.approx(0.4)  # clamped to the table
    small, large = identify_rule(table, 1, 0.01, 0.9), identify_rule(table, 100, 0.01, 0.9)
    assert small == Rule(pytest.approx(0.6), 0.05) and large.tau < small.tau
    assert identify_rule(table, 100, 0.01, 0.9, margin=0.0, fixed_tau=0.33) == Rule(0.33, 0.0)
    assert identify_rule(None, 100, 0.01, 0.9) == Rule(0.9, 0.0)


def test_file_gallery_is_private_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state" / "gallery.db"
    with Gallery(path) as g:
        g.add("Alice", [sample([1, 2])])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with Gallery(path) as g:
        assert g.matrix().names == ["Alice"]
        assert g.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert g.conn.execute("PRAGMA user_version").fetchone()[0] == 1


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "gallery.db"
    bad.write_text("this is not sqlite, " * 100)
    with pytest.raises(GalleryError, match="not an edge-face gallery"):
        Gallery(bad)
