"""The MQTT sink against a real mosquitto: order, availability, Last Will, a broker outage,
Home Assistant's birth message. No mock of paho: a real subscriber watches the broker.

Events carry a counter as payload (``b"7"``), standing in for the event id consumers use
to drop duplicates.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from broker import Broker, Listener, Proxy, free_port, publish_once, wait_until

from edge.config import MqttConfig
from edge.sinks.mqtt import MqttSink
from edge.sinks.outbox import Outbox
from edge.sinks.sender import WINDOW

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

EVENTS = "test/cam/events"
AVAILABILITY = "test/cam/availability"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_sink(tmp_path: Path) -> Iterator[Callable[..., MqttSink]]:
    made: list[tuple[MqttSink, Outbox]] = []

    def make(
        port: int,
        *,
        on_connected: Callable[[], None] | None = None,
        on_ha_birth: Callable[[], None] | None = None,
        event_max_age_s: float = 60.0,
    ) -> MqttSink:
        outbox = Outbox(tmp_path / f"outbox{len(made)}.db")
        config = MqttConfig(host="127.0.0.1", port=port, device_id="test", keepalive=5,
                            event_max_age_s=event_max_age_s)  # fmt: skip
        sink = MqttSink(
            config,
            availability_topic=AVAILABILITY,
            outbox=outbox,
            on_connected=on_connected,
            on_ha_birth=on_ha_birth,
            reconnect_max_delay=1,
        )
        made.append((sink, outbox))
        sink.start()
        return sink

    yield make
    for sink, outbox in made:
        sink.close(timeout=1.0)
        outbox.close()


def ids(listener: Listener) -> list[int]:
    return [int(p) for p in listener.payloads(EVENTS)]


def test_events_arrive_in_order_qos1_not_retained(
    broker: Broker, make_sink: Callable[..., MqttSink]
) -> None:
    listener = Listener(broker, [EVENTS])
    sink = make_sink(broker.port)
    for i in range(50):
        assert sink.publish_event(EVENTS, str(i).encode())
    assert wait_until(lambda: len(ids(listener)) >= 50, 10)
    assert wait_until(lambda: sink.pending() == 0, 5)
    time.sleep(0.3)  # nothing more (no duplicate) comes
    assert ids(listener) == list(range(50))
    assert {(m.qos, m.retain) for m in listener.on(EVENTS)} == {(1, False)}
    late = Listener(broker, [EVENTS])  # a retained event would reach a new subscriber
    time.sleep(0.5)
    assert late.on(EVENTS) == []
    listener.close()
    late.close()


def test_availability_online_then_offline_on_close(
    broker: Broker, make_sink: Callable[..., MqttSink]
) -> None:
    sink = make_sink(broker.port)
    assert wait_until(lambda: sink.connected, 5)
    first = Listener(broker, [AVAILABILITY])
    assert wait_until(lambda: first.on(AVAILABILITY) != [], 5)
    assert first.on(AVAILABILITY)[0].payload == b"online"
    assert first.on(AVAILABILITY)[0].retain
    sink.close()
    assert not sink.connected
    clean = "Client edge-face-test disconnected."  # a DISCONNECT packet: no Last Will
    assert wait_until(lambda: clean in broker.log.read_text(errors="replace"), 5)
    assert wait_until(lambda: first.payloads(AVAILABILITY)[-1:] == [b"offline"], 5)
    second = Listener(broker, [AVAILABILITY])
    assert wait_until(lambda: second.on(AVAILABILITY) != [], 5)
    assert [(m.payload, m.retain) for m in second.on(AVAILABILITY)] == [(b"offline", True)]
    first.close()
    second.close()


KILLED = """
import sys, time
from pathlib import Path
from edge.config import MqttConfig
from edge.sinks.mqtt import MqttSink
from edge.sinks.outbox import Outbox
config = MqttConfig(host="127.0.0.1", port=int(sys.argv[1]), device_id="killed", keepalive=5)
sink = MqttSink(config, availability_topic=sys.argv[2], outbox=Outbox(Path(sys.argv[3])))
sink.start()
while not sink.connected:
    time.sleep(0.02)
print("connected", flush=True)
time.sleep(120)
"""


def test_kill_9_makes_the_broker_publish_the_last_will(broker: Broker, tmp_path: Path) -> None:
    listener = Listener(broker, [AVAILABILITY])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-c", KILLED, str(broker.port), AVAILABILITY, str(tmp_path / "o.db")]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, env=env, cwd=REPO)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"connected"
        assert wait_until(lambda: listener.payloads(AVAILABILITY) == [b"online"], 5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        assert wait_until(lambda: listener.payloads(AVAILABILITY) == [b"online", b"offline"], 15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    late = Listener(broker, [AVAILABILITY])  # the Will is retained
    assert wait_until(lambda: late.payloads(AVAILABILITY) == [b"offline"], 5)
    listener.close()
    late.close()


@pytest.mark.slow
def test_broker_outage_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, make_sink: Callable[..., MqttSink]
) -> None:
    """The broker goes away while no event is in flight: after it is back every event
    arrives once, in order. (Broker persistence keeps the subscriber's session, so
    events that reach the broker before the subscriber reconnects are kept for it.)"""
    broker = Broker(tmp_path / "broker", persistence=True)
    broker.start()
    connects: list[float] = []
    listener = Listener(broker, [EVENTS], client_id="watcher", clean_session=False)
    sink = make_sink(broker.port, on_connected=lambda: connects.append(time.time()))
    try:
        for i in range(10):
            sink.publish_event(EVENTS, str(i).encode())
        assert wait_until(lambda: len(ids(listener)) == 10 and sink.pending() == 0, 10)
        time.sleep(0.5)  # the subscriber's PUBACKs reach the broker too: nothing in flight
        broker.stop()
        assert wait_until(lambda: not sink.connected, 5)
        for i in range(10, 30):  # about 5 s of events while the broker is down
            assert sink.publish_event(EVENTS, str(i).encode())
            time.sleep(0.25)
        assert sink.pending() == 20
        broker.start()
        for i in range(30, 40):
            assert sink.publish_event(EVENTS, str(i).encode())
        assert wait_until(lambda: len(ids(listener)) >= 40 and sink.pending() == 0, 20)
        time.sleep(0.5)
        assert ids(listener) == list(range(40))
        assert len(connects) == 2  # on_connected after the connect and the reconnect
    finally:
        listener.close()
        sink.close(timeout=1.0)
        broker.stop()


def test_events_that_waited_for_the_broker_arrive_marked_stale(
    tmp_path: Path, make_sink: Callable[..., MqttSink]
) -> None:
    """The replayed-recognition incident: events that waited longer than event_max_age_s
    for the broker are still delivered, each marked stale with its age; fresh ones not."""
    import json

    broker = Broker(tmp_path / "broker", persistence=True)
    broker.start()
    listener = Listener(broker, [EVENTS], client_id="ha", clean_session=False)
    sink = make_sink(broker.port, event_max_age_s=1.0)
    try:
        sink.publish_event(EVENTS, b'{"event_id":"a","type":"recognized"}')
        assert wait_until(lambda: len(listener.payloads(EVENTS)) == 1, 10)
        time.sleep(0.5)
        broker.stop()
        assert wait_until(lambda: not sink.connected, 5)
        for name in ("b", "c"):
            assert sink.publish_event(
                EVENTS, f'{{"event_id":"{name}","type":"recognized"}}'.encode()
            )
        time.sleep(2.0)  # longer than event_max_age_s
        broker.start()
        assert wait_until(lambda: sink.connected, 15)
        sink.publish_event(EVENTS, b'{"event_id":"d","type":"unknown"}')
        assert wait_until(lambda: len(listener.payloads(EVENTS)) == 4, 15)
        got = {e["event_id"]: e for e in map(json.loads, listener.payloads(EVENTS))}
        assert "stale" not in got["a"] and "stale" not in got["d"]
        assert got["b"]["stale"] is True and got["c"]["stale"] is True
        assert got["b"]["age_s"] >= 2.0 and got["b"]["type"] == "recognized"
    finally:
        listener.close()
        sink.close(timeout=1.0)
        broker.stop()


@pytest.mark.slow
def test_broker_stopped_mid_stream_loses_nothing(
    tmp_path: Path, make_sink: Callable[..., MqttSink]
) -> None:
    """Events keep coming while the broker stops and starts: every one arrives, in order
    of first arrival. QoS 1 may repeat a message whose PUBACK the stop cut off (on either
    hop), never more than the in-flight window of each; consumers drop them by id."""
    broker = Broker(tmp_path / "broker", persistence=True)
    broker.start()
    listener = Listener(broker, [EVENTS], client_id="watcher", clean_session=False)
    sink = make_sink(broker.port)
    stop = threading.Event()
    sent: list[int] = []
    refused: list[int] = []

    def produce() -> None:
        while not stop.is_set():
            if not sink.publish_event(EVENTS, str(len(sent)).encode()):
                refused.append(len(sent))
            sent.append(len(sent))
            time.sleep(0.02)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        time.sleep(1.0)
        broker.stop()
        time.sleep(5.0)
        broker.start()
        time.sleep(1.0)
    finally:
        stop.set()
        producer.join()
    assert refused == []
    try:
        assert wait_until(lambda: set(ids(listener)) >= set(sent), 20)
        time.sleep(0.5)
        got = ids(listener)
        first_seen = list(dict.fromkeys(got))
        assert first_seen == sent
        # repeats by the sink reach the subscriber as new messages (dup flag unset)
        fresh = [int(m.payload) for m in listener.on(EVENTS) if not m.dup]
        assert len(fresh) - len(set(fresh)) <= WINDOW
        assert len(got) - len(first_seen) <= 2 * WINDOW
        print(
            f"{len(sent)} events, {len(got) - len(first_seen)} repeats ({len(fresh) - len(set(fresh))} by the sink)"
        )
        assert wait_until(lambda: sink.pending() == 0, 5)
    finally:
        listener.close()
        sink.close(timeout=1.0)
        broker.stop()


def test_cut_connection_resends_the_unacknowledged_once_in_order(
    broker: Broker, make_sink: Callable[..., MqttSink]
) -> None:
    """The network swallows some events, the connection breaks, more events come while it
    is down: after the reconnect paho sends the swallowed ones again first (the sink waits
    for their PUBACKs before it sends newer rows); the broker never saw the lost copies, so
    the subscriber gets every event exactly once, in order."""
    proxy = Proxy(broker)
    listener = Listener(broker, [EVENTS])
    sink = make_sink(proxy.port)
    lost, later = WINDOW // 2, 5
    try:
        for i in range(5):
            sink.publish_event(EVENTS, str(i).encode())
        assert wait_until(lambda: len(ids(listener)) == 5 and sink.pending() == 0, 5)
        proxy.blackhole()
        for i in range(5, 5 + lost):  # handed to paho, never reach the broker
            sink.publish_event(EVENTS, str(i).encode())
        time.sleep(0.5)
        assert ids(listener) == list(range(5)) and sink.pending() == lost
        proxy.cut()
        assert wait_until(lambda: not sink.connected, 5)
        for i in range(5 + lost, 5 + lost + later):  # wait in the outbox only
            sink.publish_event(EVENTS, str(i).encode())
        proxy.resume()
        total = 5 + lost + later
        assert wait_until(lambda: len(ids(listener)) >= total and sink.pending() == 0, 10)
        time.sleep(0.3)
        assert ids(listener) == list(range(total))
    finally:
        proxy.cut()


def test_publishing_while_the_broker_is_down_never_raises(
    tmp_path: Path, make_sink: Callable[..., MqttSink]
) -> None:
    port = free_port()  # nothing listens there yet
    sink = make_sink(port)
    for i in range(5):
        assert sink.publish_event(EVENTS, str(i).encode())
    assert not sink.publish_state("test/cam/status", b"{}")
    assert not sink.publish_event("test/+/bad", b"x")  # not a topic: refused, logged
    time.sleep(1.5)  # a few reconnect attempts fail meanwhile
    assert not sink.connected
    assert sink.pending() == 5
    broker = Broker(tmp_path / "late", port=port)
    broker.start()
    try:
        assert wait_until(lambda: sink.connected and sink.pending() == 0, 10)
    finally:
        sink.close(timeout=1.0)
        broker.stop()


def test_home_assistant_birth_triggers_the_callback(
    broker: Broker, make_sink: Callable[..., MqttSink]
) -> None:
    births = threading.Event()
    sinks: list[MqttSink] = []
    made = threading.Event()

    def on_connected() -> None:  # the daemon publishes its discovery here
        made.wait(5)
        sinks[0].publish_state("test/discovery/config", b"config")

    sinks.append(make_sink(broker.port, on_connected=on_connected, on_ha_birth=births.set))
    made.set()
    sink = sinks[0]
    assert wait_until(lambda: sink.connected, 5)
    publish_once(broker, "homeassistant/status", b"offline")
    time.sleep(0.2)
    assert not births.is_set()
    deadline = time.monotonic() + 10
    while not births.is_set() and time.monotonic() < deadline:  # until its SUBACK is in
        publish_once(broker, "homeassistant/status", b"online")
        births.wait(0.3)
    assert births.is_set()
    listener = Listener(broker, ["test/discovery/config"])
    assert wait_until(lambda: listener.payloads("test/discovery/config") == [b"config"], 5)
    listener.close()
