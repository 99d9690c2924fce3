"""Sightings: the faces the camera decided on, kept for review (``[sightings] enabled``).

One row per decided track: its best face crop (JPEG), its embedding, the decision (a
person's name, or unknown), the distance and tau, the camera, the time and the track id.
In one SQLite file beside the gallery, through ``edge.db`` (mode 0600, ``secure_delete``,
WAL), bounded by age (``retention_days``) and size (``max_mb``): the oldest go first, and
a purge checkpoints the write-ahead log so that no copy of a deleted crop or embedding
stays in either file. Crops are biometric data: the store is opt-in.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from edge.db import Database, Migration
from edge.decision import FaceQuality
from edge.errors import EdgeError
from edge.types import RecognitionEvent

logger = logging.getLogger(__name__)

Decision = Literal["recognized", "unknown"]


class SightingsError(EdgeError):
    """The sightings store cannot be used as asked."""


@dataclass(frozen=True, slots=True)
class Sighting:
    """What the daemon stores for a decided track."""

    time: float  # seconds since the epoch
    camera: str
    track_id: int
    decision: Decision
    person: str | None
    distance: float
    tau: float
    encoder_id: str
    vector: NDArray[np.float32]
    crop: bytes  # JPEG
    quality: FaceQuality  # the deciding face's size, sharpness and yaw


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored sighting as listed (``vector`` and ``crop`` only when asked for)."""

    id: int
    time: float
    camera: str
    track_id: int
    decision: Decision
    person: str | None
    distance: float
    tau: float
    encoder_id: str
    quality: FaceQuality
    vector: NDArray[np.float32] | None = None
    crop: bytes | None = None


SCHEMA_V1 = (
    "CREATE TABLE sightings (id INTEGER PRIMARY KEY, time REAL NOT NULL,"
    " camera TEXT NOT NULL, track_id INTEGER NOT NULL,"
    " decision TEXT NOT NULL CHECK (decision IN ('recognized', 'unknown')),"
    " person TEXT, distance REAL NOT NULL, tau REAL NOT NULL, encoder_id TEXT NOT NULL,"
    " size_px REAL NOT NULL, sharpness REAL NOT NULL, yaw REAL NOT NULL,"
    " dim INTEGER NOT NULL, vector BLOB NOT NULL, crop BLOB NOT NULL, bytes INTEGER NOT NULL)",
    "CREATE INDEX sightings_time ON sightings(time)",
)


def _v1(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA_V1:
        conn.execute(statement)


MIGRATIONS: dict[int, Migration] = {1: _v1}
COLUMNS = (
    "id, time, camera, track_id, decision, person, distance, tau, encoder_id, size_px,"
    " sharpness, yaw"
)
NAMES = ("id", "time", "camera", "track_id", "decision", "person", "distance", "tau", "encoder_id")
DAY_S = 86400.0


def _row(row: Sequence[object], full: bool) -> Stored:
    base: dict[str, object] = dict(zip(NAMES, row[:9], strict=True))
    base["quality"] = FaceQuality(*(float(v) for v in row[9:12]))  # type: ignore[arg-type]
    if not full:
        return Stored(**base)  # type: ignore[arg-type]
    dim, vector, crop = row[12:15]
    v = np.frombuffer(vector, "<f4", count=int(dim)).astype(np.float32)  # type: ignore[call-overload]
    return Stored(**base, vector=v, crop=bytes(crop))  # type: ignore[arg-type]


class SightingStore:
    """The sightings file (or an open connection: tests use ``:memory:``)."""

    def __init__(
        self,
        db: Path | sqlite3.Connection,
        retention_days: float = 30.0,
        max_mb: float = 200.0,
    ) -> None:
        self.db = Database(db, what="sightings store", migrations=MIGRATIONS, error=SightingsError)
        self.conn = self.db.conn
        self.retention_s = retention_days * DAY_S
        self.max_bytes = int(max_mb * 1e6)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> SightingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, s: Sighting) -> int:
        """Store one sighting; returns its id. Old and surplus rows go first (``bound``)."""
        vector = np.asarray(s.vector, "<f4").tobytes()
        size = len(vector) + len(s.crop)
        with self.db.write() as conn:
            cur = conn.execute(
                "INSERT INTO sightings (time, camera, track_id, decision, person, distance, tau,"
                " encoder_id, size_px, sharpness, yaw, dim, vector, crop, bytes)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (s.time, s.camera, s.track_id, s.decision, s.person, float(s.distance),
                 float(s.tau), s.encoder_id, float(s.quality.size_px), float(s.quality.sharpness),
                 float(s.quality.yaw), int(np.size(s.vector)), vector, s.crop, size),
            )  # fmt: skip
            new = int(cur.lastrowid or 0)
            dropped = self._bound(conn, now=s.time, keep=new)
        if dropped:
            self.db.purge()
        return new

    def _bound(self, conn: sqlite3.Connection, now: float, keep: int) -> int:
        """Delete rows older than the retention, then the oldest until the store fits in
        ``max_mb`` (never ``keep``, the row just added). Returns how many went."""
        n = conn.execute(
            "DELETE FROM sightings WHERE time < ? AND id != ?", (now - self.retention_s, keep)
        ).rowcount
        total = int(conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM sightings").fetchone()[0])
        if total <= self.max_bytes:
            return n
        over, doomed = total - self.max_bytes, []
        for row_id, size in conn.execute(
            "SELECT id, bytes FROM sightings WHERE id != ? ORDER BY time, id", (keep,)
        ):
            if over <= 0:
                break
            doomed.append((row_id,))
            over -= size
        conn.executemany("DELETE FROM sightings WHERE id = ?", doomed)
        return n + len(doomed)

    def expire(self, now: float | None = None) -> int:
        """Apply the retention and size bounds now (the daemon calls it hourly)."""
        with self.db.write() as conn:
            n = self._bound(conn, now=time.time() if now is None else now, keep=-1)
        if n:
            self.db.purge()
        return n

    def list(
        self, *, unknown: bool = False, since: float | None = None, full: bool = False
    ) -> list[Stored]:
        """Sightings, oldest first; ``unknown``: only the unnamed; ``since``: epoch seconds."""
        sql = f"SELECT {COLUMNS}{', dim, vector, crop' if full else ''} FROM sightings WHERE 1"
        args: list[object] = []
        if unknown:
            sql += " AND decision = 'unknown'"
        if since is not None:
            sql += " AND time >= ?"
            args.append(since)
        with self.db.lock:
            rows = self.conn.execute(sql + " ORDER BY time, id", args).fetchall()
        return [_row(r, full) for r in rows]

    def get(self, ids: Sequence[int]) -> list[Stored]:
        """These sightings with their embeddings and crops, in the order given; a
        SightingsError names any id that is not there."""
        with self.db.lock:
            found = {
                r[0]: _row(r, True)
                for r in self.conn.execute(
                    f"SELECT {COLUMNS}, dim, vector, crop FROM sightings WHERE id IN "
                    f"({', '.join('?' * len(ids))})",
                    list(ids),
                )
            }
        missing = [i for i in ids if i not in found]
        if missing:
            raise SightingsError(
                f"no sighting {', '.join(map(str, missing))} (purged, or expired after the "
                "retention): `edge-face sightings` lists the ones kept"
            )
        return [found[i] for i in ids]

    def purge(self, person: str | None = None) -> int:
        """Delete every sighting (``person`` None) or those named ``person``; the bytes
        leave the file and its write-ahead log. Returns how many went."""
        with self.db.write() as conn:
            if person is None:
                n = conn.execute("DELETE FROM sightings").rowcount
            else:
                n = conn.execute(
                    "DELETE FROM sightings WHERE person = ? COLLATE NOCASE", (person,)
                ).rowcount
        self.db.purge()
        return n

    def size(self) -> tuple[int, int]:
        """(rows, bytes of crops and embeddings) in the store."""
        with self.db.lock:
            rows, total = self.conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM sightings"
            ).fetchone()
        return int(rows), int(total)


class Recorder:
    """The daemon's port to the store (``edge.ports.SightingRecorder``): one row per
    decided track; a store that cannot be written is logged once, never raised."""

    def __init__(self, store: SightingStore, encoder_id: str) -> None:
        self.store, self.encoder_id = store, encoder_id
        self._failing = False

    def record(
        self,
        event: RecognitionEvent,
        vector: NDArray[np.float32],
        crop: bytes,
        quality: FaceQuality,
    ) -> int | None:
        sighting = Sighting(
            time=event.time, camera=event.camera, track_id=event.track_id,
            decision=event.type, person=event.person, distance=event.distance,
            tau=event.tau, encoder_id=self.encoder_id, vector=vector, crop=crop,
            quality=quality,
        )  # fmt: skip
        try:
            row = self.store.add(sighting)
        except (EdgeError, sqlite3.Error, OSError) as exc:
            if not self._failing:
                logger.error("sightings: could not store a sighting (%s); events still go out", exc)
            self._failing = True
            return None
        self._failing = False
        return row
