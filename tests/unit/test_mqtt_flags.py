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
