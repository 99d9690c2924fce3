"""What a gallery or outbox file that cannot be opened is said to be (edge.db): each
message whole, since a user acts on its words. Tests run as root, who may open any
file: a file this user may not read and write is made by telling ``os.access`` so."""

from __future__ import annotations

import os
import pwd
import sqlite3
from pathlib import Path

import pytest

from edge import db
from edge.errors import EdgeError
from edge.gallery import Gallery, GalleryError

READ_ONLY = (
    "it is read-only for this user (check its permissions and owner, and those of its "
    "folder: the service user must be able to write both)"
)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("attempt to write a readonly database", READ_ONLY),
        ("the file is read-only", READ_ONLY),
        ("unable to open database file", "this user may not open it (check its permissions and owner)"),
        ("not authorized", "this user may not open it (check its permissions and owner)"),
        ("file is not a database", "not an edge-face outbox (file is not a database)"),
    ],
)  # fmt: skip
def test_each_opening_error_is_said_whole(text: str, said: str) -> None:
    assert db.opening_problem(sqlite3.DatabaseError(text), "outbox") == said


def test_a_file_this_user_may_not_write_names_its_owner_mode_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gallery.db"
    path.write_bytes(b"")
    path.chmod(0o640)
    me = pwd.getpwuid(os.geteuid()).pw_name
    owner = pwd.getpwuid(path.stat().st_uid).pw_name
    assert db.access_problem(path) is None  # this user may
    assert db.access_problem(tmp_path / "missing.db") is None  # nothing to check
    asked: list[int] = []

    def refuse(p: object, mode: int) -> bool:
        asked.append(mode)
        return False

    monkeypatch.setattr(db.os, "access", refuse)
    assert db.access_problem(path) == (
        f"it belongs to user {owner} with mode 0640, and this user ({me}) may not read and "
        f"write it: run as {owner} (the service user: `sudo -u {owner} edge-face ...`) or "
        "give the file to this user"
    )
    assert asked == [os.R_OK | os.W_OK]

    def nobody(uid: int) -> object:
        raise KeyError(uid)

    monkeypatch.setattr(db.pwd, "getpwuid", nobody)  # users without a name: their ids
    uid = path.stat().st_uid
    assert db.access_problem(path) == (
        f"it belongs to user {uid} with mode 0640, and this user ({os.geteuid()}) may not "
        f"read and write it: run as {uid} (the service user: `sudo -u {uid} edge-face ...`) "
        "or give the file to this user"
    )


def test_a_file_that_is_not_a_gallery_says_so_or_why_this_user_may_not_open_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "gallery.db"
    path.write_bytes(b"this is not an SQLite file, it is long enough to be read as one" * 4)
    with pytest.raises(GalleryError) as err:
        Gallery(path)
    assert str(err.value) == (
        f"cannot open the gallery {path}: not an edge-face gallery (file is not a database)"
    )
    monkeypatch.setattr(db.os, "access", lambda p, mode: False)
    with pytest.raises(GalleryError) as err:
        Gallery(path)
    assert str(err.value).startswith(f"cannot open the gallery {path}: it belongs to user ")


def test_a_connection_that_fails_names_no_file(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)

    def broken(migrations: object) -> None:
        raise sqlite3.DatabaseError("file is not a database")

    monkeypatch.setattr(db.Database, "_migrate", lambda self, m: broken(m))
    with pytest.raises(EdgeError) as err:
        db.Database(conn, what="outbox", migrations={}, error=EdgeError)
    assert str(err.value) == (
        "cannot open the outbox (connection): not an edge-face outbox (file is not a database)"
    )


def test_a_file_sqlite_cannot_open_at_all_says_so_or_whose_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "gallery.db"
    folder.mkdir()  # SQLite cannot open a folder: its connect fails, before any query
    with pytest.raises(GalleryError) as err:
        Gallery(folder)
    assert str(err.value) == (
        f"cannot open the gallery {folder}: this user may not open it (check its "
        "permissions and owner)"
    )
    monkeypatch.setattr(db.os, "access", lambda p, mode: False)
    with pytest.raises(GalleryError) as err:
        Gallery(folder)
    assert str(err.value).startswith(f"cannot open the gallery {folder}: it belongs to user ")


def test_an_unknown_error_while_connecting_says_what_the_file_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> sqlite3.Connection:
        raise sqlite3.DatabaseError("file is encrypted")

    monkeypatch.setattr(db.sqlite3, "connect", refuse)
    path = tmp_path / "gallery.db"
    with pytest.raises(GalleryError) as err:
        Gallery(path)
    assert str(err.value) == (
        f"cannot open the gallery {path}: not an edge-face gallery (file is encrypted)"
    )
