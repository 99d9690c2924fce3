"""The persistent outbox: events wait here, in order, until the broker acknowledges them.

One SQLite file of its own (``outbox.db``, next to the gallery), in WAL mode with
``synchronous=FULL``: a row that :meth:`Outbox.put` returned survives a power cut or a
``kill -9``, and every write is one transaction, so a row is either fully there or not at
all. Ids come from ``AUTOINCREMENT``: they only grow and are never reused, so id order is
the order of the events.

The outbox is bounded (``max_items``): when it is full the oldest rows are deleted, a
persisted counter of dropped events grows, and one warning is logged per burst.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgeError

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
DEFAULT_MAX_ITEMS = 10_000
SCHEMA_VERSION = 1

_SCHEMA = (
    "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
    " payload BLOB NOT NULL, qos INTEGER NOT NULL, created REAL NOT NULL)",
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT INTO counters (name, value) VALUES ('dropped', 0)",
)


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


def outbox_path(gallery_path: Path) -> Path:
    """Where the daemon keeps its outbox: ``outbox.db`` next to the gallery."""
    return gallery_path.with_name("outbox.db")


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # events name people
    return sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )


class Outbox:
    """A bounded FIFO of MQTT messages in SQLite; safe to share between threads.

    ``db`` is a file path, or an open connection (tests: ``sqlite3.connect(":memory:")``;
    give ``check_same_thread=False`` when several threads use it).
    """

    def __init__(
        self, db: Path | sqlite3.Connection, *, max_items: int = DEFAULT_MAX_ITEMS
    ) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        self.path = db if isinstance(db, Path) else None
        self.max_items = max_items
        self._lock = threading.RLock()
        self._burst = 0  # rows dropped since the outbox became full (0: not full)
        try:
            self.conn = _connect(db) if isinstance(db, Path) else db
        except (OSError, sqlite3.Error) as exc:
            raise OutboxError(f"cannot open the outbox {db}: {exc}") from exc
        try:
            for pragma in (
                "journal_mode=WAL",
                f"busy_timeout={BUSY_TIMEOUT_MS}",
                "synchronous=FULL",
            ):
                self.conn.execute(f"PRAGMA {pragma}")
            self._migrate()
        except (sqlite3.DatabaseError, OutboxError) as exc:
            if self.path is not None:
                self.conn.close()
            if isinstance(exc, OutboxError):
                raise
            raise OutboxError(
                f"cannot open the outbox {self.path or '(connection)'}: {exc}"
            ) from exc

    def _migrate(self) -> None:
        with self._write():
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise OutboxError(
                    f"the outbox's schema version {version} is newer than this edge-face"
                )
            if version == 0:
                for statement in _SCHEMA:
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One transaction, write lock taken up front; rolled back on any error."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def put(self, topic: str, payload: bytes, qos: int = 1) -> int:
        """Store a message and return its id; drops the oldest rows if the outbox is full."""
        try:
            with self._write():
                cur = self.conn.execute(
                    "INSERT INTO outbox (topic, payload, qos, created) VALUES (?, ?, ?, ?)",
                    (topic, sqlite3.Binary(payload), int(qos), time.time()),
                )
                item_id = int(cur.lastrowid or 0)
                excess = self._count() - self.max_items
                if excess > 0:
                    self.conn.execute(
                        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                        (excess,),
                    )
                    self.conn.execute(
                        "UPDATE counters SET value = value + ? WHERE name = 'dropped'", (excess,)
                    )
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
            rows = self.conn.execute(
                "SELECT id, topic, payload, qos, created FROM outbox WHERE id > ?"
                " ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
        return [OutboxItem(r[0], r[1], bytes(r[2]), r[3], r[4]) for r in rows]

    def ack(self, item_id: int) -> bool:
        """Delete a delivered message; False when it was not there (already dropped)."""
        try:
            with self._write():
                cur = self.conn.execute("DELETE FROM outbox WHERE id = ?", (item_id,))
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot delete message {item_id} from the outbox: {exc}") from exc
        return cur.rowcount > 0

    def _count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def count(self) -> int:
        """How many messages wait."""
        with self._lock:
            return self._count()

    def dropped(self) -> int:
        """How many messages were ever dropped because the outbox was full (persisted)."""
        with self._lock:
            row = self.conn.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
