"""A damaged gallery file (a bad page after a power cut or a failing SD card): check it,
and copy every row that can still be read into a new file.

``check`` runs SQLite's ``integrity_check`` on a read-only connection. ``repair`` reads the
damaged file read-only, row by row by id (a damaged page loses its own rows, not the
others), writes the rows it could read with their ids into a new gallery (mode 0600,
through :class:`edge.gallery.Gallery`), and says what was lost: unreadable people rows,
and embeddings whose row, or whose person, could not be read; where the gallery's own
row counts (:mod:`edge.gallery_tally`) say more rows were there than could be read, the
difference (a garbled page can lose rows without an error). The damaged file is kept
beside the new one (``.damaged-<time>``) until the user deletes it: it still holds the
old data, biometric data included.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge import gallery_tally
from edge.gallery import Gallery, GalleryError

#: ids probed one by one past the largest one found, when that one cannot be read
PROBE_PAST = 1000
#: the highest id probed one by one: MAX(id) read off a damaged page can be any number
MAX_PROBE = 1_000_000
IMPOSTORS = (
    "SELECT id, person_id, encoder_id, dim, vector, source, created FROM impostors WHERE id = ?"
)
PEOPLE = "SELECT id, name, created, metadata FROM people WHERE id = ?"
EMBEDDINGS = (
    "SELECT id, person_id, encoder_id, dim, vector, source, quality, created FROM embeddings"
    " WHERE id = ?"
)


@dataclass
class RepairReport:
    source: str
    out: str
    kept_people: list[str] = field(default_factory=list)
    unreadable_people: int = 0  # rows of people that could not be read
    kept_embeddings: int = 0
    lost_embeddings: int = 0  # unreadable rows, or rows of an unreadable person
    #: the rows the gallery counted itself (None: a gallery older than schema version 3,
    #: or a damaged count): losses are then only the reads that failed
    counted: dict[str, int] | None = None
    #: tables of which no row could be read (their losses are then the ids probed)
    unreadable_tables: list[str] = field(default_factory=list)
    #: ids missing below the largest one read, when nothing counted the rows: people
    #: removed earlier, or rows lost without an error
    missing_ids: dict[str, int] = field(default_factory=dict)
    damaged_copy: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _read_only(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise GalleryError(f"no gallery at {path}")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def check(path: Path) -> list[str]:
    """SQLite's list of problems in the file ([] when it is sound)."""
    try:
        with _read_only(path) as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    problems = [str(r[0]) for r in rows]
    return [] if problems == ["ok"] else problems


def _max_id(conn: sqlite3.Connection, table: str) -> int:
    try:
        return int(conn.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0] or 0)
    except sqlite3.DatabaseError:
        return 0


def _rows(conn: sqlite3.Connection, table: str, query: str) -> tuple[list[tuple[Any, ...]], int]:
    """Every row of ``table`` that can be read, by id, and how many ids failed to read."""
    try:  # the whole table at once when it reads: the usual case
        return conn.execute(query.replace(" WHERE id = ?", " ORDER BY id")).fetchall(), 0
    except sqlite3.DatabaseError:
        pass
    rows, failed, last_found = [], 0, 0
    ident, top = 1, min(_max_id(conn, table), MAX_PROBE)  # a damaged page may say 10**16
    while ident <= max(top, last_found + PROBE_PAST):
        try:
            row = conn.execute(query, (ident,)).fetchone()
        except sqlite3.DatabaseError:
            failed += 1
        else:
            if row is not None:
                rows.append(row)
                last_found = ident
        ident += 1
    return rows, failed


def _impostors(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """The impostor faces that can be read (none when the schema page is damaged)."""
    try:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'impostors'").fetchone()
    except sqlite3.DatabaseError:
        return []
    return _rows(conn, "impostors", IMPOSTORS)[0] if found else []


def _gaps(rows: list[tuple[Any, ...]]) -> int:
    ids = [int(row[0]) for row in rows]
    return max(ids, default=0) - len(set(ids))


def _account(
    report: RepairReport, people: list[tuple[Any, ...]], embeddings: list[tuple[Any, ...]]
) -> None:
    """Losses from the gallery's own counts, when it kept them; the gaps in the ids, when not."""
    counted = report.counted
    report.unreadable_tables = [
        name
        for name, rows, failed in (
            ("people", people, report.unreadable_people),
            ("embeddings", embeddings, report.lost_embeddings),
        )
        if not rows and failed
    ]
    if counted is None:
        report.missing_ids = {"people": _gaps(people), "embeddings": _gaps(embeddings)}
        return
    # the count is exact where failed reads are not (ids probed past the last row fail too)
    report.unreadable_people = max(0, counted["people"] - len(people))
    report.lost_embeddings = max(0, counted["embeddings"] - report.kept_embeddings)


def repair(path: Path) -> RepairReport:
    """Copy what can be read of ``path`` into a new gallery that takes its place; the
    damaged file is renamed ``<name>.damaged-<time>``. Stop the daemon first."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = path.with_name(f"{path.name}.repaired-{stamp}")
    report = RepairReport(str(path), str(path))
    with _read_only(path) as src:
        people, report.unreadable_people = _rows(src, "people", PEOPLE)
        embeddings, report.lost_embeddings = _rows(src, "embeddings", EMBEDDINGS)
        impostors = _impostors(src)
        report.counted = gallery_tally.read(src)
    known = {row[0] for row in people}
    with Gallery(out) as new, new.db.write() as conn:
        conn.executemany(
            "INSERT INTO people (id, name, created, metadata) VALUES (?, ?, ?, ?)", people
        )
        kept = [row for row in embeddings if row[1] in known]
        conn.executemany(
            "INSERT INTO embeddings (id, person_id, encoder_id, dim, vector, source, quality,"
            " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            kept,
        )
        conn.executemany(
            "INSERT INTO impostors (id, person_id, encoder_id, dim, vector, source, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [row for row in impostors if row[1] in known],
        )
    report.kept_people = sorted(row[1] for row in people)
    report.kept_embeddings = len(kept)
    report.lost_embeddings += len(embeddings) - len(kept)
    _account(report, people, embeddings)
    damaged = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("-wal", "-shm"):  # the damaged file's log goes with it
        log = path.with_name(path.name + suffix)
        if log.exists():
            log.replace(damaged.with_name(damaged.name + suffix))
    path.replace(damaged)
    out.replace(path)
    report.damaged_copy = str(damaged)
    return report
