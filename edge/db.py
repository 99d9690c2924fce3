"""One SQLite file the edge-face way, for the gallery and the event outbox alike.

- The file is created with mode 0600 (it holds biometric data, or events naming people).
- WAL, ``busy_timeout``, ``synchronous=FULL`` (a committed row survives a power cut or a
  ``kill -9``), ``foreign_keys``, ``secure_delete`` (deleted rows are overwritten).
- Every write is one ``BEGIN IMMEDIATE`` transaction (:meth:`Database.write`): the write
  lock is taken up front, so a concurrent writer waits for the busy timeout instead of
  failing half-way, and any error rolls the whole transaction back.
- The schema version lives in ``PRAGMA user_version``, with a registry of migrations
  (version -> function bringing the schema from the version before to it).

Errors come out as the owner's :class:`~edge.errors.EdgeError` subclass, naming the file.
"""

from __future__ import annotations

import logging
import os
import pwd
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from edge.errors import EdgeError

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
#: busy_timeout first: every later statement, setting the journal mode too, waits for a lock
PRAGMAS = (
    f"busy_timeout={BUSY_TIMEOUT_MS}",
    "journal_mode=WAL",
    "synchronous=FULL",
    "foreign_keys=ON",
    "secure_delete=ON",
)

Migration = Callable[[sqlite3.Connection], None]


def create_private(path: Path) -> None:
    """Create ``path`` (and its folders) readable by its owner only, if it is missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def opening_problem(exc: sqlite3.DatabaseError, what: str) -> str:
    """What an error met while opening a file means, and what to do about it."""
    text = str(exc)
    if "readonly" in text or "read-only" in text:
        return (
            "it is read-only for this user (check its permissions and owner, and those of "
            "its folder: the service user must be able to write both)"
        )
    if "unable to open" in text or "authoriz" in text:
        return "this user may not open it (check its permissions and owner)"
    if "malformed" in text:
        return f"the file is damaged ({text}): {DAMAGED_HINT}"
    return f"not an edge-face {what} ({text})"


def access_problem(path: Path) -> str | None:
    """Why this process may not read and write an existing file (None: it may)."""
    try:
        if not path.exists() or os.access(path, os.R_OK | os.W_OK):
            return None
        st = path.stat()
    except OSError:
        return None
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        me = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        me = str(os.geteuid())
    return (
        f"it belongs to user {owner} with mode {stat.S_IMODE(st.st_mode):04o}, and this "
        f"user ({me}) may not read and write it: run as {owner} (the service user: "
        f"`sudo -u {owner} edge-face ...`) or give the file to this user"
    )


#: what to do about a damaged gallery
DAMAGED_HINT = (
    "`edge-face gallery check` says what is damaged, `edge-face gallery repair` copies what "
    "can be read into a new file"
)


class Database:
    """An SQLite file (or an open connection: tests use ``:memory:``), checked and
    migrated on opening; safe to share between threads."""

    def __init__(
        self,
        db: Path | sqlite3.Connection,
        *,
        what: str,
        migrations: Mapping[int, Migration],
        error: type[EdgeError],
    ) -> None:
        self.path = db if isinstance(db, Path) else None
        self.what, self.error = what, error
        self.lock = threading.RLock()
        where = db if self.path is not None else "(connection)"
        try:
            if isinstance(db, Path):
                create_private(db)
                db = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            problem = access_problem(db) if isinstance(db, Path) else None
            raise error(
                f"cannot open the {what} {where}: {problem or opening_problem(exc, what)}"
            ) from exc
        except (OSError, sqlite3.Error) as exc:
            raise error(f"cannot open the {what} {where}: {exc}") from exc
        self.conn = db
        try:
            for pragma in PRAGMAS:
                self.conn.execute(f"PRAGMA {pragma}")
            self._migrate(migrations)
        except sqlite3.DatabaseError as exc:
            self._close_own()
            problem = access_problem(self.path) if self.path is not None else None
            raise error(
                f"cannot open the {what} {where}: {problem or opening_problem(exc, what)}"
            ) from exc
        except EdgeError:
            self._close_own()
            raise

    def _close_own(self) -> None:
        if self.path is not None:
            self.conn.close()

    def _migrate(self, migrations: Mapping[int, Migration]) -> None:
        latest = max(migrations)
        with self.write():
            version = self._pragma("user_version")
            if version > latest:
                raise self.error(
                    f"the {self.what}'s schema version {version} is newer than this edge-face"
                )
            for target in range(version + 1, latest + 1):
                migrations[target](self.conn)
                self.conn.execute(f"PRAGMA user_version={target}")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction, write lock taken up front; rolled back on any error."""
        with self.lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise self.error(
                        f"the {self.what} is busy (another process held its write lock for "
                        f"{BUSY_TIMEOUT_MS // 1000} s); try again"
                    ) from exc
                raise
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def _pragma(self, name: str) -> int:
        return int(self.conn.execute(f"PRAGMA {name}").fetchone()[0])

    def data_version(self) -> int:
        """Changes whenever another connection commits."""
        with self.lock:
            return self._pragma("data_version")

    def purge(self) -> bool:
        """Push overwritten pages into the main file and empty the WAL, so no copy of
        deleted rows stays in the write-ahead log either. False (and a warning) when a
        reader in another process kept the log busy past the timeout: the copies then
        leave it at the next checkpoint."""
        if self.path is None:
            return True
        with self.lock:
            busy = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            logger.warning(
                "%s: another process kept the write-ahead log busy: deleted rows may stay in "
                "%s-wal until the next checkpoint (stop the daemon and run the command again "
                "to be sure)", self.path, self.path.name,
            )  # fmt: skip
        return not busy

    def close(self) -> None:
        with self.lock:
            self.conn.close()
