"""edge.db on real SQLite: the private file, the pragmas, migrations, one transaction per
write, the busy error, purge, data_version, and errors that name the file."""

from __future__ import annotations

import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest

from edge.db import Database, Migration
from edge.errors import EdgeError


class StoreError(EdgeError):
    """The owner's error class: Database raises it, naming what it opens."""


def create_items(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE items (name TEXT NOT NULL)")


def add_colour(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE items ADD COLUMN colour TEXT")


V1: dict[int, Migration] = {1: create_items}


def open_store(db: Path | sqlite3.Connection, migrations: dict[int, Migration] = V1) -> Database:
    return Database(db, what="store", migrations=migrations, error=StoreError)


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    """What another connection sees (or does: it commits at once)."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        return conn.execute(sql).fetchall()


def test_the_file_is_private_and_its_folders_are_made(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "store.db"  # two folders missing
    db = open_store(path)
    assert db.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    db.close()


def test_a_connection_has_no_path_and_stays_the_callers() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    db = open_store(conn)
    assert db.path is None and db.conn is conn
    assert db.purge() is True  # nothing to purge in memory: no error, nothing left
    conn.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="newer"):
        open_store(conn)
    assert conn.execute("SELECT 1").fetchone() == (1,)  # refused, but not closed


def test_pragmas(tmp_path: Path) -> None:
    db = open_store(tmp_path / "store.db")
    names = ("journal_mode", "busy_timeout", "synchronous", "foreign_keys", "secure_delete")
    values = [db.conn.execute(f"PRAGMA {name}").fetchone()[0] for name in names]
    assert values == ["wal", 10_000, 2, 1, 1]  # synchronous 2: FULL
    db.close()


def test_statements_outside_write_commit_at_once(tmp_path: Path) -> None:
    """Autocommit: a statement run outside write() never leaves a transaction open (and
    with it a lock that would keep other processes waiting)."""
    path = tmp_path / "store.db"
    db = open_store(path)
    db.conn.execute("INSERT INTO items (name) VALUES ('a')")
    assert not db.conn.in_transaction
    assert query(path, "SELECT name FROM items") == [("a",)]
    db.close()


def test_migrations_run_in_order_once_and_set_the_version(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    ran: list[int] = []

    def step(n: int, migrate: Migration) -> Migration:
        def run(conn: sqlite3.Connection) -> None:
            ran.append(n)
            migrate(conn)

        return run

    open_store(path, {1: step(1, create_items)}).close()
    db = open_store(path, {1: step(1, create_items), 2: step(2, add_colour)})
    assert ran == [1, 2]  # version 1 was there: only 2 ran
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == 2
    db.conn.execute("INSERT INTO items (name, colour) VALUES ('a', 'red')")
    db.close()
    open_store(path, {1: create_items, 2: add_colour}).close()  # up to date: nothing runs
    assert ran == [1, 2]
    with pytest.raises(StoreError) as info:
        open_store(path, V1)
    assert str(info.value) == "the store's schema version 2 is newer than this edge-face"


def test_a_failed_migration_leaves_the_schema_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    open_store(path).close()

    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE extra (x INTEGER)")
        conn.execute("INSERT INTO no_such_table VALUES (1)")

    with pytest.raises(StoreError) as info:
        open_store(path, {1: create_items, 2: half_done})
    assert str(info.value) == (
        f"cannot open the store {path}: not an edge-face store (no such table: no_such_table)"
    )
    assert query(path, "PRAGMA user_version") == [(1,)]
    assert query(path, "SELECT name FROM sqlite_master WHERE type = 'table'") == [("items",)]


def test_write_is_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    db = open_store(path)
    with db.write() as conn:
        conn.execute("INSERT INTO items (name) VALUES ('kept')")
    with pytest.raises(RuntimeError), db.write() as conn:
        conn.execute("INSERT INTO items (name) VALUES ('rolled back')")
        raise RuntimeError("half-way")
    assert not db.conn.in_transaction
    assert query(path, "SELECT name FROM items") == [("kept",)]
    nested = pytest.raises(sqlite3.OperationalError, match="within a transaction")
    with nested, db.write(), db.write():  # not a busy error: passed on as it is
        pass
    db.close()


def test_a_write_lock_held_elsewhere_is_a_busy_error(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    db = open_store(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    db.conn.execute("PRAGMA busy_timeout=50")  # wait 50 ms here, not the 10 s of the pragma
    with pytest.raises(StoreError) as info, db.write():
        pass
    assert str(info.value) == (
        "the store is busy (another process held its write lock for 10 s); try again"
    )
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    holder.execute("COMMIT")
    holder.close()
    with db.write() as conn:  # the lock is free again
        conn.execute("INSERT INTO items (name) VALUES ('a')")
    db.close()


def test_purge_empties_the_write_ahead_log(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    wal = path.with_name("store.db-wal")
    db = open_store(path)
    with db.write() as conn:
        conn.executemany("INSERT INTO items (name) VALUES (?)", [("x" * 1000,)] * 20)
    with db.write() as conn:
        conn.execute("DELETE FROM items")
    assert wal.stat().st_size > 0
    assert db.purge() is True
    assert wal.stat().st_size == 0
    assert query(path, "SELECT COUNT(*) FROM items") == [(0,)]
    db.close()


def test_a_purge_blocked_by_a_reader_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "store.db"
    db = open_store(path)
    with db.write() as conn:
        conn.execute("INSERT INTO items (name) VALUES ('x')")
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM items").fetchall()  # a read transaction pins the log
    with db.write() as conn:
        conn.execute("DELETE FROM items")
    db.conn.execute("PRAGMA busy_timeout=50")  # not the 10 s a real purge waits
    assert db.purge() is False
    assert "kept the write-ahead log busy" in caplog.text
    reader.execute("COMMIT")
    reader.close()
    caplog.clear()
    assert db.purge() is True and caplog.text == ""
    db.close()


def test_data_version_moves_when_another_connection_commits(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    db = open_store(path)
    first = db.data_version()
    with db.write() as conn:
        conn.execute("INSERT INTO items (name) VALUES ('mine')")
    assert db.data_version() == first  # its own commits do not count
    query(path, "INSERT INTO items (name) VALUES ('theirs')")
    assert db.data_version() != first
    db.close()


def test_what_is_not_a_database_is_refused_naming_the_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError) as info:
        open_store(junk)
    assert str(info.value) == (
        f"cannot open the store {junk}: not an edge-face store (file is not a database)"
    )
    conn = sqlite3.connect(junk)
    with pytest.raises(StoreError) as info:
        open_store(conn)
    assert str(info.value) == (
        "cannot open the store (connection): not an edge-face store (file is not a database)"
    )
    assert conn.execute("SELECT 1").fetchone() == (1,)  # the caller's: left open
    conn.close()


def test_a_path_that_cannot_be_created_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "store.db"  # its folder is a file
    with pytest.raises(StoreError) as info:
        open_store(path)
    assert str(info.value).startswith(f"cannot open the store {path}: [Errno ")
