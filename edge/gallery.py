"""The gallery: enrolled people and their face embeddings, in one SQLite file.

Through ``edge.db`` (the project's one SQLite layer): WAL with a busy timeout (the
enrollment CLI writes while the daemon reads), ``secure_delete`` (a removed person's
vectors are overwritten, not left in free pages), foreign keys with cascading deletes, a
versioned schema with migrations, mode 0600 (face embeddings are biometric data).

A person's distance to a face is the smallest distance over that person's embeddings
(nearest neighbour): a new photo needs to resemble one enrolled photo, not their average.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import numpy as np
from numpy.typing import NDArray

from edge import feedback
from edge.db import DAMAGED_HINT, Database, Migration
from edge.errors import EdgeError
from edge.fleet_schema import create_table as fleet_table
from edge.gallery_tally import create as tally
from edge.types import GalleryMatrix

logger = logging.getLogger(__name__)


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


# The SQL, in one place. (Kept out of the methods also because mutmut's upper/lower-case
# mutants of SQL text are equivalent: SQL keywords and these names ignore case.)
SCHEMA_V1 = (
    "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    " created TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}')",
    "CREATE TABLE embeddings (id INTEGER PRIMARY KEY,"
    " person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,"
    " encoder_id TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,"
    " source TEXT NOT NULL, quality REAL NOT NULL, created TEXT NOT NULL)",
    "CREATE INDEX embeddings_person ON embeddings(person_id)",
)
FIND_PERSON = "SELECT id, name FROM people WHERE name = ?"  # names ignore case
ADD_PERSON = "INSERT INTO people (name, created, metadata) VALUES (?, ?, ?)"
ADD_EMBEDDING = (
    "INSERT INTO embeddings (person_id, encoder_id, dim, vector, source, quality, created)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
OTHER_ENCODERS = "SELECT DISTINCT encoder_id FROM embeddings WHERE encoder_id != ?"
LIST_PEOPLE = (
    "SELECT p.name, p.created, p.metadata, COUNT(e.id) FROM people p LEFT JOIN embeddings e"
    " ON e.person_id = p.id GROUP BY p.id ORDER BY p.name COLLATE NOCASE"
)
COUNT_EMBEDDINGS = "SELECT COUNT(*) FROM embeddings WHERE person_id = ?"
DELETE_PERSON = "DELETE FROM people WHERE id = ?"  # embeddings cascade
RENAME_PERSON = "UPDATE people SET name = ? WHERE id = ?"
ALL_EMBEDDINGS = (
    "SELECT p.name, e.id, e.encoder_id, e.dim, e.vector FROM embeddings e"
    " JOIN people p ON p.id = e.person_id ORDER BY p.name, e.id"
)


def _create_tables(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA_V1:
        conn.execute(statement)


#: schema version -> migration bringing the schema from version-1 to it
MIGRATIONS: dict[int, Migration] = {1: _create_tables, 2: feedback.create_table,
                                    3: tally, 4: fleet_table}  # fmt: skip


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


#: the longest name a person may have (characters)
MAX_NAME = 64


def person_name(name: str) -> str:
    """``name`` trimmed and in Unicode NFC, or a GalleryError: empty, longer than
    ``MAX_NAME``, or holding a character that is not printable (a newline, an escape, a
    bidi control: they would forge lines in ``people`` and in the logs)."""
    clean = unicodedata.normalize("NFC", name.strip())
    if not clean:
        raise GalleryError("a person's name cannot be empty")
    if len(clean) > MAX_NAME:
        raise GalleryError(f"a person's name has at most {MAX_NAME} characters, got {len(clean)}")
    bad = next((c for c in clean if not c.isprintable()), None)
    if bad is not None:
        what = unicodedata.name(bad, "a control character")
        raise GalleryError(
            f"a person's name cannot hold U+{ord(bad):04X} ({what}): letters, digits, "
            "spaces and punctuation only"
        )
    return clean


P = ParamSpec("P")
R = TypeVar("R")


def _damage_said(
    method: Callable[Concatenate[Gallery, P], R],
) -> Callable[Concatenate[Gallery, P], R]:
    """SQLite's "malformed" (a damaged page) as a GalleryError that says what to do."""

    def guarded(self: Gallery, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc):
                raise
            where = self.path or "(connection)"
            raise GalleryError(f"the gallery {where} is damaged ({exc}): {DAMAGED_HINT}") from exc

    guarded.__name__, guarded.__doc__ = method.__name__, method.__doc__
    return guarded


class Gallery:
    """The gallery in a file (or an open connection: tests use ``:memory:``)."""

    def __init__(self, db: Path | sqlite3.Connection) -> None:
        self.db = Database(db, what="gallery", migrations=MIGRATIONS, error=GalleryError)
        self.path, self.conn = self.db.path, self.db.conn

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def data_version(self) -> int:
        """Changes whenever another connection commits (used to reload without restart)."""
        return self.db.data_version()

    @_damage_said
    def add(
        self, name: str, samples: Sequence[Sample], metadata: dict[str, Any] | None = None
    ) -> int:
        """Add embeddings to a person (created if new), all or nothing; returns how many.
        A name that differs from an enrolled one only in case is refused, not merged."""
        name = person_name(name)
        if not samples:
            return 0
        with self.db.write():
            self._check_encoder(samples[0].encoder_id)
            row = self.conn.execute(FIND_PERSON, (name,)).fetchone()
            if row is not None and row[1] != name:
                raise GalleryError(
                    f"{name!r} differs from the enrolled {row[1]!r} only in case: give "
                    f"{row[1]!r} to add faces to them, or another name for someone else"
                )
            if row is None:
                cur = self.conn.execute(ADD_PERSON, (name, _now(), json.dumps(metadata or {})))
                person_id = cur.lastrowid
            else:
                person_id = row[0]
            self.conn.executemany(
                ADD_EMBEDDING,
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
        other = self.conn.execute(OTHER_ENCODERS, (encoder_id,)).fetchone()
        if other is not None:
            raise EncoderMismatchError(mismatch_message(other[0], encoder_id))

    @_damage_said
    def people(self) -> list[Person]:
        rows = self.conn.execute(LIST_PEOPLE)
        return [Person(name, created, n, json.loads(meta)) for name, created, meta, n in rows]

    @_damage_said
    def remove(self, name: str) -> int:
        """Forget a person and every embedding of theirs; returns how many embeddings."""
        with self.db.write():
            person_id = self._find(name)
            n = self.conn.execute(COUNT_EMBEDDINGS, (person_id,)).fetchone()[0]
            self.conn.execute(DELETE_PERSON, (person_id,))
        self.db.purge()
        return int(n)

    def _find(self, name: str) -> int:
        row = self.conn.execute(FIND_PERSON, (name,)).fetchone()
        if row is None:
            raise GalleryError(f"no person named {name!r} in the gallery")
        return int(row[0])

    @_damage_said
    def rename(self, old: str, new: str) -> None:
        """Give a person another name. As ``remove`` does, the old name is overwritten
        (``secure_delete``) and the change checkpointed at once (``Database.purge``): no
        copy of it stays in the file nor in its write-ahead log."""
        new = person_name(new)
        with self.db.write():
            person_id = self._find(old)
            clash = self.conn.execute(FIND_PERSON, (new,)).fetchone()
            if clash is not None and clash[0] != person_id:  # a change of case is no clash
                raise GalleryError(f"{new!r} is already enrolled: remove one of them first")
            self.conn.execute(RENAME_PERSON, (new, person_id))
        self.db.purge()

    @_damage_said
    def matrix(self, encoder_id: str | None = None) -> GalleryMatrix:
        """Every embedding, for matching. Refuses embeddings of another encoder; skips
        (and logs) rows that cannot be read, so one bad row does not stop recognition."""
        rows = self.conn.execute(ALL_EMBEDDINGS).fetchall()
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
                logger.error("gallery row %d (%s) is damaged and was skipped: re-enroll %s",
                             row_id, name, name)  # fmt: skip
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
        matrix = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, 0), np.float32)
        enc_id = rows[0][2] if rows else None
        found = GalleryMatrix(names, np.asarray(owner, np.intp), matrix, enc_id, skipped)
        return feedback.attach(self.conn, found)

    @_damage_said
    def add_impostor(self, name: str, vector: np.ndarray, encoder_id: str, source: str) -> None:
        """Mark a face as not ``name`` (negative feedback, edge.feedback)."""
        with self.db.write():
            self._check_encoder(encoder_id)
            feedback.add(self.conn, self._find(name), vector, encoder_id, source)


def mismatch_message(found: str, expected: str) -> str:
    return (
        f"the gallery holds embeddings made by encoder {found}, but the model bundle's encoder "
        f"is {expected}: embeddings of different encoders cannot be compared. Re-enroll "
        "everyone with this bundle (edge-face remove NAME, then edge-face enroll NAME PHOTOS), "
        "or point [gallery] path at a new file, or use the bundle the gallery was made with"
    )
