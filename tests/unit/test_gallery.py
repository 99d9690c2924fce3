from __future__ import annotations

import datetime as dt
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest

from edge.gallery import MIGRATIONS, EncoderMismatchError, Gallery, GalleryError, Sample


def sample(values: list[float], enc: str = "enc-1", source: str = "a.jpg") -> Sample:
    return Sample(np.array(values, np.float32), enc, source, 50.0)


@pytest.fixture
def gallery() -> Gallery:
    return Gallery(sqlite3.connect(":memory:", isolation_level=None))


def test_add_list_rename_remove(gallery: Gallery) -> None:
    assert gallery.add("Alice", [sample([0, 0]), sample([0, 1])]) == 2
    gallery.add("Alice", [sample([1, 1])])  # more faces of the same person
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


def test_a_name_differing_only_in_case_is_refused_not_merged(gallery: Gallery) -> None:
    gallery.add("Barack Obama", [sample([0, 0])])
    with pytest.raises(GalleryError, match="differs from the enrolled 'Barack Obama' only in case"):
        gallery.add("barack obama", [sample([1, 1])])
    assert [(p.name, p.embeddings) for p in gallery.people()] == [("Barack Obama", 1)]
    assert gallery.add("  Barack Obama ", [sample([1, 1])]) == 1  # trimmed: the same person


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Eve\nrecognized Alice", "U\\+000A"),
        ("Mallory\x1b[2J", "U\\+001B"),
        ("Bob\u202eecilA", "RIGHT-TO-LEFT OVERRIDE"),
        ("x" * 65, "at most 64 characters"),
        ("\t ", "empty"),
    ],
)
def test_names_that_could_forge_lines_are_refused(
    gallery: Gallery, name: str, problem: str
) -> None:
    with pytest.raises(GalleryError, match=problem):
        gallery.add(name, [sample([0, 0])])
    gallery.add("Zoë Ångström 张伟", [sample([0, 0])])  # any script's letters are fine
    with pytest.raises(GalleryError, match=problem):
        gallery.rename("Zoë Ångström 张伟", name)
    assert [p.name for p in gallery.people()] == ["Zoë Ångström 张伟"]


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


def test_file_gallery_is_private_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state" / "gallery.db"
    with Gallery(path) as g:
        g.add("Alice", [sample([1, 2])])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with Gallery(path) as g:
        assert g.matrix().names == ["Alice"]
        assert g.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert g.conn.execute("PRAGMA user_version").fetchone()[0] == max(MIGRATIONS)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "gallery.db"
    bad.write_text("this is not sqlite, " * 100)
    with pytest.raises(GalleryError, match="not an edge-face gallery"):
        Gallery(bad)


def test_adding_nothing_stores_nothing(gallery: Gallery) -> None:
    assert gallery.add("Alice", []) == 0
    assert gallery.people() == []
    with pytest.raises(GalleryError, match=r"^a person's name cannot be empty$"):
        gallery.add(" \t", [sample([0, 0])])


def test_people_are_listed_with_their_count_and_a_utc_date(gallery: Gallery) -> None:
    gallery.add("bob", [sample([1, 1])])
    gallery.add("Alice", [sample([0, 0]), sample([0, 1])])
    people = gallery.people()
    assert [(p.name, p.embeddings) for p in people] == [("Alice", 2), ("bob", 1)]
    created = dt.datetime.fromisoformat(people[0].created)
    assert created.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - created).total_seconds()) < 60


def test_a_float64_vector_is_stored_as_float32(gallery: Gallery) -> None:
    gallery.add("Alice", [Sample(np.array([0.25, 0.5]), "enc-1", "a.jpg", 50.0)])
    m = gallery.matrix("enc-1")
    assert m.skipped == 0 and m.vectors.tolist() == [[0.25, 0.5]]


def test_the_encoder_mismatch_says_which_encoders_and_what_to_do(gallery: Gallery) -> None:
    gallery.add("Alice", [sample([0, 0], enc="old")])
    expected = (
        "the gallery holds embeddings made by encoder old, but the model bundle's encoder "
        "is new: embeddings of different encoders cannot be compared. Re-enroll "
        "everyone with this bundle (edge-face remove NAME, then edge-face enroll NAME PHOTOS), "
        "or point [gallery] path at a new file, or use the bundle the gallery was made with"
    )
    for call in (lambda: gallery.add("Bob", [sample([0, 0], enc="new")]),
                 lambda: gallery.matrix("new")):  # fmt: skip
        with pytest.raises(EncoderMismatchError) as err:
            call()
        assert str(err.value) == expected


def test_rename_errors_and_a_change_of_case(gallery: Gallery) -> None:
    gallery.add("Bob", [sample([0, 0])])
    gallery.add("Carol", [sample([1, 0])])
    with pytest.raises(GalleryError, match=r"^a person's name cannot be empty$"):
        gallery.rename("Bob", "  ")
    with pytest.raises(GalleryError, match=r"^no person named 'Dan' in the gallery$"):
        gallery.rename("Dan", "Daniel")
    with pytest.raises(GalleryError, match=r"^'carol' is already enrolled: remove one"):
        gallery.rename("Bob", "carol")
    gallery.rename("bob", "BOB")  # the same person: only the case changes
    gallery.rename("BOB", " Robert ")
    assert [p.name for p in gallery.people()] == ["Carol", "Robert"]
    assert gallery.matrix().names == ["Carol", "Robert"]


def test_remove_counts_and_deletes_only_that_person(gallery: Gallery) -> None:
    gallery.add("Alice", [sample([0, 0]), sample([0, 1])])
    gallery.add("Bob", [sample([5, 5])])
    assert gallery.remove("alice") == 2
    with pytest.raises(GalleryError, match=r"^no person named 'Alice' in the gallery$"):
        gallery.remove("Alice")
    assert gallery.matrix().names == ["Bob"]


def test_the_matrix_of_an_empty_gallery(gallery: Gallery) -> None:
    m = gallery.matrix("enc-1")
    assert m.names == [] and m.encoder_id is None and m.skipped == 0
    assert m.vectors.shape == (0, 0) and m.vectors.dtype == np.float32
    assert m.owner.shape == (0,) and m.owner.dtype == np.intp


def test_the_matrix_rows_owners_and_encoder(gallery: Gallery) -> None:
    gallery.add("Bob", [sample([5, 5])])
    gallery.add("Alice", [sample([0, 0]), sample([0, 1])])
    m = gallery.matrix("enc-1")
    assert m.names == ["Alice", "Bob"] and m.owner.tolist() == [0, 0, 1]
    assert m.vectors.dtype == np.float32 and m.vectors.tolist() == [[0, 0], [0, 1], [5, 5]]
    assert m.encoder_id == "enc-1" and gallery.matrix().encoder_id == "enc-1"


def test_damaged_rows_are_counted_and_the_rest_still_load(gallery: Gallery) -> None:
    gallery.add("Alice", [sample([0, 0]), sample([1, 1])])
    gallery.add("Bob", [sample([3, 4]), sample([5, 5])])
    gallery.add("Carol", [sample([7, 7])])
    nan = np.array([np.nan, 0], "<f4").tobytes()
    gallery.conn.execute("UPDATE embeddings SET vector = ? WHERE id IN (1, 2)", (nan,))
    gallery.conn.execute("UPDATE embeddings SET vector = X'0000' WHERE id = 3")
    gallery.conn.execute("UPDATE embeddings SET dim = 3, vector = ? WHERE id = 5",
                         (np.zeros(3, "<f4").tobytes(),))  # fmt: skip
    m = gallery.matrix("enc-1")
    assert m.skipped == 4 and m.names == ["Bob"] and m.vectors.tolist() == [[5, 5]]


def test_rename_leaves_no_copy_of_the_old_name_in_the_files(tmp_path: Path) -> None:
    """`edge-face rename` while the daemon has the gallery open: the old name must be in
    neither the main file nor its write-ahead log afterwards (as after `remove`)."""
    path = tmp_path / "gallery.db"
    with Gallery(path) as g:  # `enroll`, then its process ends: the name is in the main file
        g.add("Alice Cooper", [sample([1, 2], source="photo-1.jpg")])
    daemon = Gallery(path)  # a reader in another connection: no checkpoint when `rename` exits
    assert daemon.matrix().names == ["Alice Cooper"]
    with Gallery(path) as g:
        g.rename("Alice Cooper", "Vincent Furnier")
    files = [p for p in (path, path.with_name("gallery.db-wal")) if p.exists()]
    data = b"".join(p.read_bytes() for p in files)
    assert b"Vincent Furnier" in data  # the new name is there: we read the right bytes
    assert b"Alice Cooper" not in data and b"Alice" not in data
    assert daemon.matrix().names == ["Vincent Furnier"]
    daemon.close()


def test_a_name_is_at_most_64_characters_and_printable_each_refusal_said_whole() -> None:
    from edge.gallery import MAX_NAME, person_name

    assert MAX_NAME == 64 and person_name(" " + "a" * 64 + " ") == "a" * 64
    with pytest.raises(GalleryError) as err:
        person_name("a" * 65)
    assert str(err.value) == "a person's name has at most 64 characters, got 65"
    with pytest.raises(GalleryError) as err:
        person_name("Al\x07ice")  # a control character has no Unicode name
    assert str(err.value) == (
        "a person's name cannot hold U+0007 (a control character): letters, digits, spaces "
        "and punctuation only"
    )
    with pytest.raises(GalleryError) as err:
        person_name("Al\u202eice")  # a bidi override has one
    assert "U+202E (RIGHT-TO-LEFT OVERRIDE)" in str(err.value)
