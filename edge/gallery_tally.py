"""How many rows each gallery table holds, kept by the file itself (schema version 3).

A damaged page can lose rows without any error: a garbled leaf that still parses reads as
fewer rows, and ids under it read as absent, the same as ids of people removed long ago.
So the gallery counts its own rows: table ``tally`` (one row per table, on a page of its
own) is kept by triggers on every insert and delete, cascades included, in the same
transaction as the change. ``gallery repair`` compares what it could read with it and
reports the difference as lost.
"""

from __future__ import annotations

import sqlite3

#: the tables whose rows are counted
TABLES = ("people", "embeddings", "impostors")

CREATE = "CREATE TABLE tally (name TEXT PRIMARY KEY, count INTEGER NOT NULL)"
FILL = "INSERT INTO tally (name, count) SELECT '{table}', COUNT(*) FROM {table}"
TRIGGERS = (
    "CREATE TRIGGER tally_{table}_insert AFTER INSERT ON {table} BEGIN"
    " UPDATE tally SET count = count + 1 WHERE name = '{table}'; END",
    "CREATE TRIGGER tally_{table}_delete AFTER DELETE ON {table} BEGIN"
    " UPDATE tally SET count = count - 1 WHERE name = '{table}'; END",
)
READ = "SELECT name, count FROM tally"


def create(conn: sqlite3.Connection) -> None:
    """Migration to gallery schema version 3: the tally, filled from the tables as they are."""
    conn.execute(CREATE)
    for table in TABLES:
        conn.execute(FILL.format(table=table))
        for trigger in TRIGGERS:
            conn.execute(trigger.format(table=table))


def read(conn: sqlite3.Connection) -> dict[str, int] | None:
    """Rows per table as the gallery counted them, or None when the tally cannot be read
    (a gallery older than version 3, or a damaged tally page)."""
    try:
        rows = conn.execute(READ).fetchall()
    except sqlite3.DatabaseError:
        return None
    counts = {str(name): int(count) for name, count in rows if isinstance(count, int)}
    return counts if set(counts) == set(TABLES) else None
