"""The persistent outbox on real SQLite: order, ack, the bound, reopening, atomic rows."""

from __future__ import annotations

import logging
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge.sinks.outbox import Outbox, OutboxError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def outbox() -> Outbox:
    return Outbox(sqlite3.connect(":memory:", isolation_level=None), max_items=100)


def test_pending_is_oldest_first_and_ack_deletes(outbox: Outbox) -> None:
    ids = [outbox.put(f"t/{i}", f"p{i}".encode()) for i in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    items = outbox.pending(10)
    assert [(i.id, i.topic, i.payload, i.qos) for i in items] == [
        (ids[n], f"t/{n}", f"p{n}".encode(), 1) for n in range(5)
    ]
    assert items[0].created <= items[-1].created <= time.time()
    assert [i.id for i in outbox.pending(2)] == ids[:2]
    assert [i.id for i in outbox.pending(10, after=ids[2])] == ids[3:]
    assert outbox.ack(ids[1]) is True
    assert outbox.ack(ids[1]) is False  # already gone
    assert [i.id for i in outbox.pending(10)] == [ids[0], *ids[2:]]
    assert outbox.count() == 4
    assert outbox.put("t/q0", b"", qos=0) > ids[-1]
    assert outbox.pending(10)[-1].qos == 0 and outbox.pending(10)[-1].payload == b""


def test_full_outbox_drops_the_oldest_and_warns_once_per_burst(
    caplog: pytest.LogCaptureFixture,
) -> None:
    box = Outbox(sqlite3.connect(":memory:", isolation_level=None), max_items=3)
    with caplog.at_level(logging.WARNING, logger="edge.sinks.outbox"):
        ids = [box.put("t", str(i).encode()) for i in range(8)]
    assert [i.payload for i in box.pending(10)] == [b"5", b"6", b"7"]
    assert box.count() == 3 and box.dropped() == 5
    assert [r.getMessage() for r in caplog.records if "is full" in r.getMessage()] != []
    assert len(caplog.records) == 1  # one warning for the burst, not one per row
    caplog.clear()
    box.ack(ids[-1])
    with caplog.at_level(logging.WARNING, logger="edge.sinks.outbox"):
        box.put("t", b"8")  # room again: the burst is over, and said so once
        box.put("t", b"9")  # full again: a new burst
        box.put("t", b"10")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0] == "the outbox has room again; 5 messages were dropped"
    assert "is full" in messages[1]
    assert box.dropped() == 7


def test_survives_reopening_with_counter_and_growing_ids(tmp_path: Path) -> None:
    path = tmp_path / "state" / "outbox.db"
    with Outbox(path, max_items=2) as box:
        a = box.put("t", b"a")
        box.put("t", b"b")
        c = box.put("t", b"c")  # drops a
        box.ack(c)  # the highest id is gone: AUTOINCREMENT still never reuses it
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with Outbox(path, max_items=2) as box:
        assert [i.payload for i in box.pending(10)] == [b"b"]
        assert box.dropped() == 1
        assert box.put("t", b"d") > c > a
        mode = box.conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
        assert box.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_a_failed_put_leaves_no_half_row() -> None:
    """Insert, trim and counter are one transaction: if the trim fails, no row is added."""
    box = Outbox(sqlite3.connect(":memory:", isolation_level=None), max_items=2)
    box.put("t", b"a")
    box.put("t", b"b")
    box.conn.execute(
        "CREATE TRIGGER no_trim BEFORE DELETE ON outbox BEGIN SELECT RAISE(ABORT, 'disk'); END"
    )
    with pytest.raises(OutboxError, match="disk"):
        box.put("t", b"c")
    assert [i.payload for i in box.pending(10)] == [b"a", b"b"]
    assert box.dropped() == 0
    assert not box.conn.in_transaction


WRITER = """
import sys
from pathlib import Path
from edge.sinks.outbox import Outbox
box = Outbox(Path(sys.argv[1]))
i = 0
while True:
    box.put(f"t/{i}", (f"{i}:" + "x" * 5000).encode())
    i += 1
    if i == 20:
        print("writing", flush=True)
"""


def test_kill_9_while_writing_leaves_only_whole_rows(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdout=subprocess.PIPE,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"writing\n"
    time.sleep(0.2)
    proc.kill()
    proc.wait()
    proc.stdout.close()
    with Outbox(path) as box:
        items = box.pending(100_000)
    assert len(items) >= 20
    for n, item in enumerate(items):
        assert item.topic == f"t/{n}"
        assert item.payload == (f"{n}:" + "x" * 5000).encode()


def test_threads_share_an_outbox(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:

        def put_many(t: int) -> None:
            for i in range(50):
                box.put(f"t/{t}", str(i).encode())

        threads = [threading.Thread(target=put_many, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        items = box.pending(1000)
        assert len(items) == box.count() == 200
        for t in range(4):  # each thread's own order holds
            mine = [int(i.payload) for i in items if i.topic == f"t/{t}"]
            assert mine == list(range(50))


def test_refuses_what_is_not_an_outbox(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(OutboxError) as info:
        Outbox(junk)
    assert str(info.value) == (
        f"cannot open the outbox {junk}: not an edge-face outbox (file is not a database)"
    )
    newer = tmp_path / "newer.db"
    Outbox(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(OutboxError, match=r"^the outbox's schema version 99 is newer"):
        Outbox(newer)
    with pytest.raises(ValueError, match="max_items"):
        Outbox(tmp_path / "x.db", max_items=0)


def test_the_default_page_is_100_messages() -> None:
    box = Outbox(sqlite3.connect(":memory:", isolation_level=None))
    ids = [box.put("t", b"") for _ in range(101)]
    assert [i.id for i in box.pending()] == ids[:100]


def test_an_outbox_of_one_keeps_the_newest() -> None:
    box = Outbox(sqlite3.connect(":memory:", isolation_level=None), max_items=1)
    box.put("t", b"a")
    box.put("t", b"b")
    assert [i.payload for i in box.pending()] == [b"b"] and box.dropped() == 1


def test_path_is_the_file_or_none(tmp_path: Path, outbox: Outbox) -> None:
    with Outbox(tmp_path / "o.db") as box:
        assert box.path == tmp_path / "o.db"
    assert outbox.path is None


def test_the_first_put_after_reopening_a_full_outbox_drops_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The daemon restarts while the broker is away: the outbox is full from the start."""
    path = tmp_path / "outbox.db"
    with Outbox(path, max_items=10) as box:
        for i in range(10):
            box.put("t", str(i).encode())
    with Outbox(path, max_items=10) as box, caplog.at_level(logging.WARNING):
        box.put("t", b"10")
        box.put("t", b"11")
        assert [i.payload for i in box.pending()][:2] == [b"2", b"3"]
        assert box.dropped() == 2
    assert [r.getMessage() for r in caplog.records] == [
        "the outbox is full (10 messages): dropping the oldest until the broker "
        "acknowledges some (1 dropped in all)"
    ]


def test_a_failed_ack_names_the_message(outbox: Outbox) -> None:
    item_id = outbox.put("t", b"a")
    outbox.conn.execute(
        "CREATE TRIGGER no_ack BEFORE DELETE ON outbox BEGIN SELECT RAISE(ABORT, 'disk'); END"
    )
    with pytest.raises(OutboxError) as info:
        outbox.ack(item_id)
    assert str(info.value) == f"cannot delete message {item_id} from the outbox: disk"
    assert outbox.count() == 1


def test_the_disk_reserve_refuses_below_it_and_says_both_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At exactly the reserve a message is still stored; one byte under it, it is refused
    with the free space and the reserve in whole MB."""
    reserve = 5 * 2**20 + 7
    with Outbox(tmp_path / "o.db", min_free_bytes=reserve) as box:
        monkeypatch.setattr(box, "free_bytes", lambda: reserve)
        box.put("t", b"a")
        monkeypatch.setattr(box, "free_bytes", lambda: 3 * 2**20 + 2**19)
        with pytest.raises(OutboxError) as info:
            box.put("t", b"b")
        assert str(info.value) == (
            "only 3 MB free on the outbox's disk (keeps 5 MB in reserve): free some space"
        )
        assert [i.payload for i in box.pending()] == [b"a"]
