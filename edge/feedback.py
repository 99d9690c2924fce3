"""Negative feedback: faces marked "not this person" (``edge-face not NAME``).

A stranger once taken for Alice is stored as an *impostor face* of Alice, in the gallery
file (table ``impostors``, schema version 2: removed with Alice, overwritten on delete as
every gallery row). The decision rule (``edge.decision.Rule``) then names Alice only for
a probe nearer to one of her own faces than to every one of her impostor faces: that
stranger, and faces like theirs, stay unnamed, while Alice's own photos, nearer to her
embeddings, are still named.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from dataclasses import replace

import numpy as np

from edge.types import GalleryMatrix

logger = logging.getLogger(__name__)

SCHEMA_V2 = (
    "CREATE TABLE impostors (id INTEGER PRIMARY KEY,"
    " person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,"
    " encoder_id TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,"
    " source TEXT NOT NULL, created TEXT NOT NULL)",
    "CREATE INDEX impostors_person ON impostors(person_id)",
)
ADD = (
    "INSERT INTO impostors (person_id, encoder_id, dim, vector, source, created)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
ALL = (
    "SELECT p.name, i.id, i.encoder_id, i.dim, i.vector FROM impostors i"
    " JOIN people p ON p.id = i.person_id ORDER BY i.id"
)
COUNTS = (
    "SELECT p.name, COUNT(i.id) FROM people p JOIN impostors i ON i.person_id = p.id GROUP BY p.id"
)


def create_table(conn: sqlite3.Connection) -> None:
    """Migration to gallery schema version 2."""
    for statement in SCHEMA_V2:
        conn.execute(statement)


def add(
    conn: sqlite3.Connection, person_id: int, vector: np.ndarray, encoder_id: str, source: str
) -> None:
    """Store one impostor face of a person (the caller holds the write transaction)."""
    blob = np.asarray(vector, "<f4").tobytes()
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    conn.execute(ADD, (person_id, encoder_id, int(np.size(vector)), blob, source, now))


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Impostor faces per person who has any."""
    return {name: int(n) for name, n in conn.execute(COUNTS)}


def attach(conn: sqlite3.Connection, matrix: GalleryMatrix) -> GalleryMatrix:
    """``matrix`` with its people's impostor faces of the same encoder and size (rows of
    another encoder or a damaged row are skipped and logged)."""
    if not matrix.names:
        return matrix
    index = {name: i for i, name in enumerate(matrix.names)}
    dim = matrix.vectors.shape[1] if matrix.vectors.size else None
    owner, vectors = [], []
    for name, row_id, enc, size, blob in conn.execute(ALL):
        if name not in index:
            continue
        if enc != matrix.encoder_id or size != dim or len(blob) != 4 * size:
            logger.warning(
                "impostor face %d of %s does not fit this encoder: skipped", row_id, name
            )
            continue
        owner.append(index[name])
        vectors.append(np.frombuffer(blob, "<f4"))
    if not vectors:
        return matrix
    return replace(
        matrix,
        impostors=np.stack(vectors).astype(np.float32),
        impostor_owner=np.asarray(owner, np.intp),
    )
