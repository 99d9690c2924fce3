"""The outbox pump at its own seam: a fake ``publish`` hands out message ids, the test
decides when PUBACKs come and when the connection drops (no broker, no paho)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from edge.sinks.outbox import Outbox, OutboxItem
from edge.sinks.sender import OutboxSender


def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class FakeClient:
    """Hands out message ids like an MQTT client and records (mid, outbox id)."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, int]] = []
        self.refuse = False
        self._next = 1
        self._lock = threading.Lock()

    def publish(self, item: OutboxItem) -> int | None:
        if item.topic == "bad/+":
            raise ValueError("wildcards in a topic to publish to")
        if self.refuse:
            return None
        with self._lock:
            mid, self._next = self._next, self._next + 1
            self.sent.append((mid, item.id))
        return mid

    def ids(self) -> list[int]:
        with self._lock:
            return [item_id for _, item_id in self.sent]

    def mids(self) -> list[int]:
        with self._lock:
            return [mid for mid, _ in self.sent]


@pytest.fixture
def outbox() -> Outbox:
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    return Outbox(conn)


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def sender(outbox: Outbox, client: FakeClient) -> Iterator[OutboxSender]:
    s = OutboxSender(outbox, client.publish, window=3, resend_after=60)
    s.start()
    yield s
    s.stop()


def put(outbox: Outbox, n: int, topic: str = "t") -> list[int]:
    return [outbox.put(topic, str(i).encode()) for i in range(n)]


def test_in_order_within_the_window_deleted_on_ack(
    outbox: Outbox, client: FakeClient, sender: OutboxSender
) -> None:
    ids = put(outbox, 7)
    sender.wake()
    time.sleep(0.1)
    assert client.sent == []  # not connected: nothing handed over
    sender.connected()
    assert wait_until(lambda: client.ids() == ids[:3])
    time.sleep(0.1)
    assert client.ids() == ids[:3]  # the window is full
    for mid in client.mids()[:2]:
        sender.acked(mid)
    assert wait_until(lambda: client.ids() == ids[:5])
    assert [i.id for i in outbox.pending(10)] == ids[2:]
    sender.acked(9999)  # an ack for something else (availability, state): ignored
    while outbox.count():
        for mid in client.mids():
            sender.acked(mid)
        time.sleep(0.02)
    assert client.ids() == ids


def test_after_a_reconnect_newer_rows_wait_for_the_resent_ones(
    outbox: Outbox, client: FakeClient, sender: OutboxSender
) -> None:
    ids = put(outbox, 2)
    sender.connected()
    assert wait_until(lambda: client.ids() == ids)
    sender.disconnected()
    newer = put(outbox, 3)
    sender.connected()  # the client sends the two it holds again by itself
    time.sleep(0.2)
    assert client.ids() == ids  # nothing newer overtakes them
    sender.acked(client.mids()[0])
    time.sleep(0.2)
    assert client.ids() == ids
    sender.acked(client.mids()[1])
    assert wait_until(lambda: client.ids() == ids + newer)


def test_resent_rows_without_puback_are_sent_again(outbox: Outbox, client: FakeClient) -> None:
    sender = OutboxSender(outbox, client.publish, window=3, resend_after=0.3)
    sender.start()
    try:
        ids = put(outbox, 4)
        sender.connected()
        assert wait_until(lambda: client.ids() == ids[:3])
        sender.disconnected()
        sender.connected()
        time.sleep(0.1)
        assert client.ids() == ids[:3]
        assert wait_until(lambda: client.ids() == ids[:3] + ids[:3], 3)  # once, in order
        old, new = client.mids()[:3], client.mids()[3:]
        for mid in old:  # late acks of the forgotten copies change nothing
            sender.acked(mid)
        time.sleep(0.1)
        assert outbox.count() == 4
        for mid in new:
            sender.acked(mid)
        assert wait_until(lambda: client.ids() == ids[:3] + ids[:3] + ids[3:])
    finally:
        sender.stop()


def test_unsendable_rows_are_dropped_and_refusals_retried(
    outbox: Outbox, client: FakeClient, sender: OutboxSender
) -> None:
    first = outbox.put("t", b"0")
    outbox.put("bad/+", b"never")
    last = outbox.put("t", b"2")
    client.refuse = True
    sender.connected()
    time.sleep(0.2)
    assert client.sent == [] and outbox.count() == 3
    client.refuse = False
    sender.wake()
    assert wait_until(lambda: client.ids() == [first, last])
    assert [i.id for i in outbox.pending(10)] == [first, last]  # the bad one is gone
