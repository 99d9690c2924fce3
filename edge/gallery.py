"""The gallery: enrolled people and their face embeddings, in one SQLite file.

Through sqlite-utils, in WAL mode with a busy timeout (the enrollment CLI writes while the
daemon reads), ``secure_delete`` on (a removed person's vectors are overwritten, not left
in free pages), foreign keys with cascading deletes, a versioned schema with migrations.
The file is created with mode 0600: face embeddings are biometric data.

A person's distance to a face is the smallest distance over that person's embeddings
(nearest neighbour): a new photo needs to resemble one enrolled photo, not their average.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_utils
from numpy.typing import NDArray

from edge.errors import EdgeError

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000


class GalleryError(EdgeError):
    """The gallery cannot be used as asked (busy, unknown person, other encoder...)."""


class EncoderMismatchError(GalleryError):
    """The gallery holds embeddings made by another encoder than the bundle's."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One embedding to store, with where it came from."""

    vector: NDArray[np.float32]
    encoder_id: str
    source: str
    quality: float


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    created: str
    embeddings: int
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class GalleryMatrix:
    """Every embedding as one matrix, for matching: row i belongs to names[owner[i]]."""

    names: list[str]
    owner: NDArray[np.intp]
    vectors: NDArray[np.float32]
    encoder_id: str | None
    skipped: int  # rows that could not be read (logged)


def _create_tables(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
        " created TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}')"
    )
    db.execute(
        "CREATE TABLE embeddings (id INTEGER PRIMARY KEY,"
        " person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,"
        " encoder_id TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,"
        " source TEXT NOT NULL, quality REAL NOT NULL, created TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX embeddings_person ON embeddings(person_id)")


#: schema version -> migration bringing the schema from version-1 to it
MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {1: _create_tables}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # never world-readable
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise GalleryError(
            f"{path} is not an edge-face gallery (not an SQLite file): {exc}"
        ) from exc
    return conn


class Gallery:
    """The gallery in a file (or an open connection: tests use ``:memory:``)."""

    def __init__(self, db: Path | sqlite3.Connection) -> None:
        self.path = db if isinstance(db, Path) else None
        conn = _connect(db) if isinstance(db, Path) else db
        for pragma in (
            f"busy_timeout={BUSY_TIMEOUT_MS}",
            "foreign_keys=ON",
            "secure_delete=ON",
            "synchronous=FULL",
        ):
            conn.execute(f"PRAGMA {pragma}")
        self.db = sqlite_utils.Database(conn)
        self.conn = conn
        self._migrate()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        with self._write():
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version > max(MIGRATIONS):
                raise GalleryError(
                    f"the gallery's schema version {version} is newer than this edge-face"
                )
            for target in range(version + 1, max(MIGRATIONS) + 1):
                MIGRATIONS[target](self.db)
                self.conn.execute(f"PRAGMA user_version={target}")
                logger.info("gallery schema migrated to version %d", target)

    def _write(self) -> _Transaction:
        return _Transaction(self.conn)

    def data_version(self) -> int:
        """Changes whenever another connection commits (used to reload without restart)."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def add(
        self, name: str, samples: Sequence[Sample], metadata: dict[str, Any] | None = None
    ) -> int:
        """Add embeddings to a person (created if new), all or nothing; returns how many."""
        name = name.strip()
        if not name:
            raise GalleryError("a person's name cannot be empty")
        if not samples:
            return 0
        with self._write():
            self._check_encoder(samples[0].encoder_id)
            row = self.conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            if row is None:
                cur = self.conn.execute(
                    "INSERT INTO people (name, created, metadata) VALUES (?, ?, ?)",
                    (name, _now(), json.dumps(metadata or {})),
                )
                person_id = cur.lastrowid
            else:
                person_id = row[0]
            self.conn.executemany(
                "INSERT INTO embeddings (person_id, encoder_id, dim, vector, source, quality, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        person_id,
                        s.encoder_id,
                        len(s.vector),
                        np.asarray(s.vector, "<f4").tobytes(),
                        s.source,
                        float(s.quality),
                        _now(),
                    )
                    for s in samples
                ],
            )
        return len(samples)

    def _check_encoder(self, encoder_id: str) -> None:
        others = [
            r[0]
            for r in self.conn.execute(
                "SELECT DISTINCT encoder_id FROM embeddings WHERE encoder_id != ?", (encoder_id,)
            )
        ]
        if others:
            raise EncoderMismatchError(mismatch_message(others[0], encoder_id))

    def people(self) -> list[Person]:
        rows = self.conn.execute(
            "SELECT p.name, p.created, p.metadata, COUNT(e.id) FROM people p"
            " LEFT JOIN embeddings e ON e.person_id = p.id GROUP BY p.id ORDER BY p.name COLLATE NOCASE"
        )
        return [Person(name, created, n, json.loads(meta)) for name, created, meta, n in rows]

    def remove(self, name: str) -> int:
        """Forget a person and every embedding of theirs; returns how many embeddings."""
        with self._write():
            row = self.conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise GalleryError(f"no person named {name!r} in the gallery")
            n = self.conn.execute(
                "SELECT COUNT(*) FROM embeddings WHERE person_id = ?", (row[0],)
            ).fetchone()[0]
            self.conn.execute("DELETE FROM people WHERE id = ?", (row[0],))
        self._purge()
        return int(n)

    def _purge(self) -> None:
        """Push the overwritten pages into the main file and empty the WAL, so no copy of
        deleted rows stays in the write-ahead log either."""
        if self.path is not None:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def rename(self, old: str, new: str) -> None:
        new = new.strip()
        if not new:
            raise GalleryError("the new name cannot be empty")
        with self._write():
            if self.conn.execute("SELECT 1 FROM people WHERE name = ?", (old,)).fetchone() is None:
                raise GalleryError(f"no person named {old!r} in the gallery")
            clash = self.conn.execute("SELECT name FROM people WHERE name = ?", (new,)).fetchone()
            if clash is not None and clash[0].lower() != old.lower():
                raise GalleryError(f"{new!r} is already enrolled: remove one of them first")
            self.conn.execute("UPDATE people SET name = ? WHERE name = ?", (new, old))

    def matrix(self, encoder_id: str | None = None) -> GalleryMatrix:
        """Every embedding, for matching. Refuses embeddings of another encoder; skips
        (and logs) rows that cannot be read, so one bad row does not stop recognition."""
        rows = self.conn.execute(
            "SELECT p.name, e.id, e.encoder_id, e.dim, e.vector FROM embeddings e"
            " JOIN people p ON p.id = e.person_id ORDER BY p.name, e.id"
        ).fetchall()
        names: list[str] = []
        owner, vectors = [], []
        skipped = 0
        for name, row_id, enc, dim, blob in rows:
            if encoder_id is not None and enc != encoder_id:
                raise EncoderMismatchError(mismatch_message(enc, encoder_id))
            if (
                not isinstance(blob, bytes)
                or len(blob) != 4 * dim
                or (vectors and dim != len(vectors[0]))
            ):
                logger.error(
                    "gallery row %d (%s) is damaged and was skipped: re-enroll %s",
                    row_id,
                    name,
                    name,
                )
                skipped += 1
                continue
            vector = np.frombuffer(blob, "<f4")
            if not np.all(np.isfinite(vector)):
                logger.error("gallery row %d (%s) holds non-numbers and was skipped", row_id, name)
                skipped += 1
                continue
            if not names or names[-1] != name:
                names.append(name)
            owner.append(len(names) - 1)
            vectors.append(vector)
        dim = len(vectors[0]) if vectors else 0
        matrix = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32)
        enc_id = rows[0][2] if rows else None
        return GalleryMatrix(names, np.asarray(owner, np.intp), matrix, enc_id, skipped)


def mismatch_message(found: str, expected: str) -> str:
    return (
        f"the gallery holds embeddings made by encoder {found}, but the model bundle's encoder "
        f"is {expected}: embeddings of different encoders cannot be compared. Re-enroll "
        "everyone with this bundle (edge-face remove NAME, then edge-face enroll NAME PHOTOS), "
        "or point [gallery] path at a new file, or use the bundle the gallery was made with"
    )


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK): takes the write lock up front, so a
    concurrent writer waits for the busy timeout instead of failing half-way."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise GalleryError(
                    f"the gallery is busy (another process held its write lock for {BUSY_TIMEOUT_MS // 1000} s); try again"
                ) from exc
            raise

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
