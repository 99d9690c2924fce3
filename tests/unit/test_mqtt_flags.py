"""What the MQTT sink asks of the client, without a broker: events QoS 1 and never
retained (a replayed "recognized" can open a door), state retained. A recording stands
in for paho's client object; tests/integration/test_mqtt_sink.py checks the same on a
real mosquitto."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from paho.mqtt.enums import MQTTErrorCode

from edge.config import MqttConfig
from edge.sinks.mqtt import MqttSink
from edge.sinks.outbox import Outbox, OutboxItem


@dataclass
class Info:
    rc: MQTTErrorCode = MQTTErrorCode.MQTT_ERR_SUCCESS
    mid: int = 7


class RecordingClient:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> Info:
        self.published.append({"topic": topic, "payload": payload, "qos": qos, "retain": retain})
        return Info()


def sink() -> tuple[MqttSink, RecordingClient]:
    outbox = Outbox(sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False))
    s = MqttSink(MqttConfig(device_id="door"), availability_topic="ef/door/availability",
                 outbox=outbox)  # fmt: skip
    client = RecordingClient()
    s.client = client  # type: ignore[assignment]
    return s, client


def test_events_go_out_qos1_and_never_retained() -> None:
    s, client = sink()
    assert s.publish_event("ef/door/events", b'{"type":"recognized"}')
    [item] = s.outbox.pending()
    assert item.qos == 1
    assert s._publish_item(item) == 7  # the sender thread's hand-over to paho
    assert client.published == [
        {"topic": "ef/door/events", "payload": b'{"type":"recognized"}', "qos": 1, "retain": False}
    ]
    assert client.published[0]["retain"] is False


def test_state_is_retained_unless_asked_otherwise() -> None:
    s, client = sink()
    s._connected = True  # as after paho's on_connect
    assert s.publish_state("ef/door/status", b"{}")
    assert s.publish_state("ef/door/once", b"x", retain=False)
    assert [(p["topic"], p["qos"], p["retain"]) for p in client.published] == [
        ("ef/door/status", 1, True),
        ("ef/door/once", 1, False),
    ]


def test_an_event_to_a_wildcard_topic_is_refused_and_not_stored() -> None:
    s, _ = sink()
    assert not s.publish_event("ef/+/events", b"{}")
    assert not s.publish_event("", b"{}")
    assert s.outbox.count() == 0
    assert s._publish_item(OutboxItem(1, "t", b"{}", 1, 0.0)) == 7


def test_an_event_that_waited_too_long_goes_out_marked_stale() -> None:
    import json
    import time

    s, client = sink()  # event_max_age_s 60 by default
    now = time.time()
    fresh = OutboxItem(1, "ef/door/events", b'{"type":"recognized"}', 1, now - 5)
    old = OutboxItem(2, "ef/door/events", b'{"type":"recognized"}', 1, now - 1200)
    s._publish_item(fresh)
    s._publish_item(old)
    first, second = (json.loads(p["payload"]) for p in client.published)
    assert "stale" not in first
    assert second["stale"] is True and 1199 < second["age_s"] < 1260
    never = MqttSink(MqttConfig(device_id="door", event_max_age_s=0), availability_topic="a",
                     outbox=s.outbox)  # fmt: skip
    never.client = client  # type: ignore[assignment]
    never._publish_item(old)
    assert "stale" not in json.loads(client.published[-1]["payload"])


class FullOutbox(Outbox):
    def put(self, topic: str, payload: bytes, qos: int = 1) -> int:
        from edge.sinks.outbox import OutboxError

        raise OutboxError("disk full")


def test_an_event_the_outbox_cannot_take_is_sent_directly_when_connected() -> None:
    outbox = FullOutbox(sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False))
    s = MqttSink(MqttConfig(device_id="door"), availability_topic="a", outbox=outbox)
    client = RecordingClient()
    s.client = client  # type: ignore[assignment]
    assert not s.publish_event("ef/door/events", b"{}")  # not connected: lost, and said so
    assert client.published == [] and s.outbox_failing
    s._connected = True
    assert s.publish_event("ef/door/events", b"{}")
    assert client.published == [
        {"topic": "ef/door/events", "payload": b"{}", "qos": 1, "retain": False}
    ]


def test_the_outbox_keeps_a_disk_space_reserve(tmp_path: Any) -> None:
    import pytest

    from edge.sinks.outbox import OutboxError

    with Outbox(tmp_path / "outbox.db", min_free_bytes=2**62) as outbox:
        with pytest.raises(OutboxError, match="in reserve"):
            outbox.put("t", b"x")
        assert outbox.count() == 0
    with Outbox(tmp_path / "outbox.db") as outbox:
        assert outbox.put("t", b"x") and outbox.count() == 1
