"""The fleet's record in the gallery file (schema version 4, table ``fleet``, edge.fleet_schema): per person
key, the version of the state this device holds, that state's digest, whether it is a
tombstone, and whether it still has to be published.

- :func:`local_changes` finds what the enrollment CLI changed since the last look (a
  person whose digest differs, or a recorded person who is gone), gives each a new
  version (one more than the largest counter seen) and marks it to publish;
- :func:`apply` takes a change from another device when its version is newer than the
  one held (the same order on every device: they converge), in one transaction with its
  record, so a change applied is never mistaken for a local one; a removal deletes the
  rows for good (``secure_delete``, then the log is checkpointed);
- :func:`pending` gives what is still to publish (after a restart, or a broker that was
  down), :func:`confirm` what the broker has sent back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from dataclasses import dataclass

from edge.fleet_codec import Change, Embedding, Version, person_key
from edge.gallery import (
    ADD_EMBEDDING,
    ADD_PERSON,
    DELETE_PERSON,
    FIND_PERSON,
    RENAME_PERSON,
    Gallery,
    _now,
    person_name,
)

DELETE_EMBEDDINGS = "DELETE FROM embeddings WHERE person_id = ?"

logger = logging.getLogger(__name__)

PERSON_ROWS = (
    "SELECT e.encoder_id, e.vector, e.source, e.quality FROM embeddings e"
    " WHERE e.person_id = ? ORDER BY e.id"
)


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    name: str | None
    version: Version
    digest: str
    deleted: bool
    pending: bool
    encoder_id: str | None


def records(conn: sqlite3.Connection) -> dict[str, Record]:
    rows = conn.execute(
        "SELECT key, name, counter, device, digest, deleted, pending, encoder_id FROM fleet"
    )
    return {
        r[0]: Record(r[0], r[1], Version(r[2], r[3]), r[4], bool(r[5]), bool(r[6]), r[7])
        for r in rows
    }


def _state(conn: sqlite3.Connection, person_id: int) -> tuple[str | None, tuple[Embedding, ...]]:
    import numpy as np

    rows = conn.execute(PERSON_ROWS, (person_id,)).fetchall()
    encoder = rows[0][0] if rows else None
    return encoder, tuple(
        Embedding(np.frombuffer(v, "<f4").copy(), s, float(q)) for _, v, s, q in rows
    )


def digest(name: str, encoder_id: str | None, embeddings: tuple[Embedding, ...]) -> str:
    h = hashlib.sha256(json.dumps([name, encoder_id]).encode())
    for e in sorted(embeddings, key=lambda e: e.vector.tobytes()):
        h.update(e.vector.astype("<f4").tobytes())
    return h.hexdigest()


def local_changes(gallery: Gallery, secret: bytes, device: str, encoder_id: str) -> list[Change]:
    """What changed in this gallery since the fleet last looked, each with a new version
    and marked to publish. A person held for another encoder (kept out of this gallery)
    is no removal."""
    changes: list[Change] = []
    with gallery.db.write() as conn:
        held = records(conn)
        counter = max((r.version.counter for r in held.values()), default=0)
        seen: set[str] = set()
        for person_id, name in conn.execute("SELECT id, name FROM people").fetchall():
            key = person_key(secret, name)
            seen.add(key)
            encoder, embeddings = _state(conn, person_id)
            d = digest(name, encoder, embeddings)
            record = held.get(key)
            if record is not None and not record.deleted and record.digest == d:
                continue
            counter += 1
            change = Change(key, Version(counter, device), "put", name, encoder, embeddings)
            _record(conn, change, d, pending=True)
            changes.append(change)
        for key, record in held.items():
            if key not in seen and not record.deleted and record.encoder_id in (None, encoder_id):
                counter += 1
                change = Change(key, Version(counter, device), "delete")
                _record(conn, change, "", pending=True)
                changes.append(change)
    if any(c.op == "delete" for c in changes):
        gallery.db.purge()  # the record's old name leaves the write-ahead log too
    return changes


def _record(conn: sqlite3.Connection, change: Change, d: str, pending: bool) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO fleet (key, name, counter, device, digest, deleted, pending, encoder_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (change.key, change.name, change.version.counter, change.version.device, d,
         int(change.op == "delete"), int(pending), change.encoder_id),
    )  # fmt: skip


def apply(gallery: Gallery, change: Change, encoder_id: str, secret: bytes) -> str:
    """Take another device's change when it is newer than what this device holds: one of
    "applied", "removed", "older" (or the same), "other encoder" (recorded, kept out of
    this gallery and reported: the fleet must run one encoder)."""
    removed = False
    with gallery.db.write() as conn:
        record = records(conn).get(change.key)
        if record is not None and change.version <= record.version:
            return "older"
        old_name = record.name if record is not None else None
        if change.op == "put" and change.name is not None:
            name = person_name(change.name)
            if change.encoder_id != encoder_id:
                _record(
                    conn, change, digest(name, change.encoder_id, change.embeddings), pending=False
                )
                logger.warning("fleet: %s was enrolled with encoder %s, this device runs %s: kept out "
                               "of its gallery (the fleet must run one encoder)", name, change.encoder_id, encoder_id)  # fmt: skip
                return "other encoder"
            # the person's row is kept (with this device's `not` faces of them, which stay
            # local); only their embeddings and the spelling of their name are replaced
            row = next((r for n in (name, old_name) if n
                        for r in [conn.execute(FIND_PERSON, (n,)).fetchone()] if r), None)  # fmt: skip
            if row is None:
                meta = json.dumps({"fleet": change.version.device})
                person_id = conn.execute(ADD_PERSON, (name, _now(), meta)).lastrowid
            else:
                person_id = row[0]
                removed = conn.execute(DELETE_EMBEDDINGS, (person_id,)).rowcount > 0
                conn.execute(RENAME_PERSON, (name, person_id))
            conn.executemany(ADD_EMBEDDING, [
                (person_id, encoder_id, len(e.vector), e.vector.astype("<f4").tobytes(), e.source, e.quality, _now())
                for e in change.embeddings
            ])  # fmt: skip
            _record(conn, change, digest(name, encoder_id, change.embeddings), pending=False)
            outcome = "applied"
        else:
            if old_name is None:  # never recorded here: find the person by the key
                old_name = next((n for (n,) in conn.execute("SELECT name FROM people")
                                 if person_key(secret, n) == change.key), None)  # fmt: skip
            row = conn.execute(FIND_PERSON, (old_name,)).fetchone() if old_name else None
            if row is not None:
                conn.execute(DELETE_PERSON, (row[0],))
                removed = True
            _record(conn, change, "", pending=False)
            outcome = "removed"
    if removed or change.op == "delete":
        gallery.db.purge()  # no copy of the old rows left in the write-ahead log
    return outcome


def pending(gallery: Gallery) -> list[Change]:
    """The changes still to publish, as they stand now."""
    out: list[Change] = []
    conn = gallery.conn
    for r in records(conn).values():
        if not r.pending:
            continue
        if r.deleted:
            out.append(Change(r.key, r.version, "delete"))
            continue
        row = conn.execute(FIND_PERSON, (r.name,)).fetchone()
        if row is None:
            continue  # removed since: the next look at local changes makes its tombstone
        encoder, embeddings = _state(conn, row[0])
        out.append(Change(r.key, r.version, "put", row[1], encoder, embeddings))
    return out


def confirm(gallery: Gallery, key: str, version: Version) -> None:
    """The broker has this change (it came back): no need to publish it again."""
    with gallery.db.write() as conn:
        conn.execute("UPDATE fleet SET pending = 0 WHERE key = ? AND counter = ? AND device = ?",
                     (key, version.counter, version.device))  # fmt: skip


def summary(gallery: Gallery, encoder_id: str | None) -> dict[str, int]:
    """This device's side of the fleet: the largest version counter it holds (how far it
    has got), its people, the changes still to publish, the people held for another
    encoder (kept out of its matcher)."""
    held = records(gallery.conn).values()
    if encoder_id is None:  # the CLI, without the bundle: the gallery's own encoder
        row = gallery.conn.execute("SELECT encoder_id FROM embeddings LIMIT 1").fetchone()
        encoder_id = row[0] if row else None
    return {
        "counter": max((r.version.counter for r in held), default=0),
        "people": int(gallery.conn.execute("SELECT COUNT(*) FROM people").fetchone()[0]),
        "pending": sum(r.pending for r in held),
        "other_encoder": sum(
            not r.deleted and r.encoder_id not in (None, encoder_id) for r in held
        ),
    }
