"""The persistent outbox: events wait here, in order, until the broker acknowledges them.

One SQLite file of its own (``outbox.db``, next to the gallery), through ``edge.db`` (WAL,
``synchronous=FULL``, mode 0600): a row that :meth:`Outbox.put` returned survives a power
cut or a ``kill -9``, and every write is one transaction, so a row is either fully there
or not at all. Ids come from ``AUTOINCREMENT``: they only grow and are never reused, so id order is
the order of the events.

The outbox is bounded (``max_items``): when it is full the oldest rows are deleted, a
persisted counter of dropped events grows, and one warning is logged per burst. It keeps
a disk-space reserve (``min_free_bytes``): with less free space than that on its file
system, ``put`` refuses (the MQTT sink then sends the event directly when it can), so the
gallery and the system keep room to work.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from edge.db import Database, Migration
from edge.errors import EdgeError

logger = logging.getLogger(__name__)

DEFAULT_MAX_ITEMS = 10_000
DEFAULT_MIN_FREE_BYTES = 20 * 2**20  # the disk-space reserve


# The SQL, in one place (as in edge/gallery.py). (Kept out of the methods also because
# mutmut's upper/lower-case mutants of SQL text are equivalent: SQL keywords and these
# names ignore case.)
SCHEMA_V1 = (
    "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
    " payload BLOB NOT NULL, qos INTEGER NOT NULL, created REAL NOT NULL)",
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT INTO counters (name, value) VALUES ('dropped', 0)",
)
ADD_ITEM = "INSERT INTO outbox (topic, payload, qos, created) VALUES (?, ?, ?, ?)"
COUNT_ITEMS = "SELECT COUNT(*) FROM outbox"
DROP_OLDEST = "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)"
ADD_DROPPED = "UPDATE counters SET value = value + ? WHERE name = 'dropped'"
READ_DROPPED = "SELECT value FROM counters WHERE name = 'dropped'"
PENDING_ITEMS = (
    "SELECT id, topic, payload, qos, created FROM outbox WHERE id > ? ORDER BY id LIMIT ?"
)
DELETE_ITEM = "DELETE FROM outbox WHERE id = ?"


def _create_tables(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA_V1:
        conn.execute(statement)


#: schema version -> migration bringing the schema from version-1 to it
MIGRATIONS: dict[int, Migration] = {1: _create_tables}


class OutboxError(EdgeError):
    """The outbox file cannot be opened, read or written."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One waiting message."""

    id: int
    topic: str
    payload: bytes
    qos: int
    created: float  # unix time of put()


class Outbox:
    """A bounded FIFO of MQTT messages in SQLite; safe to share between threads.

    ``db`` is a file path, or an open connection (tests: ``sqlite3.connect(":memory:")``;
    give ``check_same_thread=False`` when several threads use it).
    """

    def __init__(
        self,
        db: Path | sqlite3.Connection,
        *,
        max_items: int = DEFAULT_MAX_ITEMS,
        min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
    ) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        self.max_items, self.min_free_bytes = max_items, min_free_bytes
        self._burst = 0  # rows dropped since the outbox became full (0: not full)
        self.db = Database(db, what="outbox", migrations=MIGRATIONS, error=OutboxError)
        self.path, self.conn, self._lock = self.db.path, self.db.conn, self.db.lock

    def free_bytes(self) -> int | None:
        """Free space on the outbox's file system (None: in memory, or not known)."""
        if self.path is None:
            return None
        try:
            return shutil.disk_usage(self.path.parent).free
        except OSError:
            return None

    def put(self, topic: str, payload: bytes, qos: int = 1) -> int:
        """Store a message and return its id; drops the oldest rows if the outbox is full.
        Raises :class:`OutboxError` when it cannot be stored (disk full, below the reserve)."""
        free = self.free_bytes()
        if free is not None and free < self.min_free_bytes:
            raise OutboxError(
                f"only {free // 2**20} MB free on the outbox's disk (keeps "
                f"{self.min_free_bytes // 2**20} MB in reserve): free some space"
            )
        try:
            with self.db.write():
                cur = self.conn.execute(
                    ADD_ITEM, (topic, sqlite3.Binary(payload), int(qos), time.time())
                )
                item_id = int(cur.lastrowid or 0)
                excess = self._count() - self.max_items
                if excess > 0:
                    self.conn.execute(DROP_OLDEST, (excess,))
                    self.conn.execute(ADD_DROPPED, (excess,))
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot store a message in the outbox: {exc}") from exc
        self._note_burst(max(excess, 0))
        return item_id

    def _note_burst(self, dropped: int) -> None:
        with self._lock:
            if dropped and not self._burst:
                logger.warning(
                    "the outbox is full (%d messages): dropping the oldest until the broker "
                    "acknowledges some (%d dropped in all)",
                    self.max_items,
                    self.dropped(),
                )
            elif not dropped and self._burst:
                logger.warning("the outbox has room again; %d messages were dropped", self._burst)
            self._burst = self._burst + dropped if dropped else 0

    def pending(self, limit: int = 100, *, after: int = 0) -> list[OutboxItem]:
        """Up to ``limit`` waiting messages with an id above ``after``, oldest first."""
        with self._lock:
            rows = self.conn.execute(PENDING_ITEMS, (after, limit)).fetchall()
        return [OutboxItem(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in rows]

    def ack(self, item_id: int) -> bool:
        """Delete a delivered message; False when it was not there (already dropped)."""
        try:
            with self.db.write():
                cur = self.conn.execute(DELETE_ITEM, (item_id,))
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot delete message {item_id} from the outbox: {exc}") from exc
        return cur.rowcount > 0

    def _count(self) -> int:
        return int(self.conn.execute(COUNT_ITEMS).fetchone()[0])

    def count(self) -> int:
        """How many messages wait."""
        with self._lock:
            return self._count()

    def dropped(self) -> int:
        """How many messages were ever dropped because the outbox was full (persisted)."""
        with self._lock:
            row = self.conn.execute(READ_DROPPED).fetchone()
        return int(row[0])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
