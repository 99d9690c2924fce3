"""The gallery file's ``fleet`` table (schema version 4; edge.fleet_store keeps it)."""

from __future__ import annotations

import sqlite3

SCHEMA = (
    "CREATE TABLE fleet (key TEXT PRIMARY KEY, name TEXT, counter INTEGER NOT NULL,"
    " device TEXT NOT NULL, digest TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,"
    " pending INTEGER NOT NULL DEFAULT 0, encoder_id TEXT)"
)


def create_table(conn: sqlite3.Connection) -> None:
    conn.execute(SCHEMA)
