from __future__ import annotations

import base64
import json
import math
import re
from datetime import datetime

import pytest

from edge.payloads import (
    EVENT_VALUE_TEMPLATE,
    LAST_PERSON_TEMPLATE,
    SCHEMA_VERSION,
    Status,
    Topics,
    discovery_messages,
    event_payload,
    face_payload,
    status_payload,
    topics,
)
from edge.types import BBox, RecognitionEvent

T = 1714566896.789  # 2024-05-01T12:34:56.789Z


def event(**changes: object) -> RecognitionEvent:
    fields: dict[str, object] = {
        "event_id": "0123456789abcdef0123456789abcdef",
        "type": "recognized",
        "person": "Zoë",
        "distance": 0.312345678,
        "tau": 0.456789,
        "camera": "frontdoor",
        "track_id": 7,
        "box": BBox(10.04, 20.06, 110.15, 130.0),
        "frames": 5,
        "time": T,
        "crop_jpeg": b"\xff\xd8jpeg\xff\xd9",
    }
    fields.update(changes)
    return RecognitionEvent(**fields)  # type: ignore[arg-type]


def test_event_payload_fields_and_types() -> None:
    raw = event_payload(event(), include_crop=False)
    assert "Zoë".encode() in raw  # UTF-8, not \u escapes
    obj = json.loads(raw.decode("utf-8"))
    assert obj == {
        "v": SCHEMA_VERSION,
        "event_id": "0123456789abcdef0123456789abcdef",
        "type": "recognized",
        "person": "Zoë",
        "distance": 0.3123,
        "tau": 0.4568,
        "camera": "frontdoor",
        "track_id": 7,
        "box": [10.0, 20.1, 110.2, 130.0],
        "frames": 5,
        "time": "2024-05-01T12:34:56.789Z",
        "sighting_id": None,  # [sightings] off
    }
    assert isinstance(obj["track_id"], int) and isinstance(obj["frames"], int)


def test_time_is_iso_utc_with_milliseconds() -> None:
    stamp = json.loads(event_payload(event(time=0.5), include_crop=False))["time"]
    assert stamp == "1970-01-01T00:00:00.500Z"
    assert datetime.fromisoformat(stamp).timestamp() == 0.5


def test_unknown_has_a_null_person_and_strict_json() -> None:
    raw = event_payload(event(type="unknown", person=None, distance=math.inf), False)
    assert b"Infinity" not in raw and b"NaN" not in raw
    obj = json.loads(raw)
    assert obj["type"] == "unknown" and obj["person"] is None and obj["distance"] is None


def test_crop_only_when_asked_and_present() -> None:
    assert "crop" not in json.loads(event_payload(event(), include_crop=False))
    assert "crop" not in json.loads(event_payload(event(crop_jpeg=None), include_crop=True))
    crop = json.loads(event_payload(event(), include_crop=True))["crop"]
    assert base64.b64decode(crop) == b"\xff\xd8jpeg\xff\xd9"


def test_topics() -> None:
    t = topics("edge-face", "frontdoor")
    assert t == Topics(
        base="edge-face/frontdoor",
        availability="edge-face/frontdoor/availability",
        events="edge-face/frontdoor/events",
        status="edge-face/frontdoor/status",
        face="edge-face/frontdoor/face",
        ha_status="homeassistant/status",
    )
    assert topics("home/cams", "x").events == "home/cams/x/events"


def test_status_payload() -> None:
    status = Status(
        fps=9.87654,
        latency_ms={"detect": (12.34, 20.56), "embed": (30.0, 41.25)},
        faces_seen=42,
        gallery_size=3,
        uptime_s=3600.04,
        version="0.1.0",
        outbox_pending=1,
        outbox_dropped=0,
        camera_ok=True,
    )
    assert json.loads(status_payload(status)) == {
        "v": SCHEMA_VERSION,
        "fps": 9.88,
        "latency_ms": {"detect": {"p50": 12.3, "p95": 20.6}, "embed": {"p50": 30.0, "p95": 41.2}},
        "faces_seen": 42,
        "gallery_size": 3,
        "uptime_s": 3600.0,
        "version": "0.1.0",
        "outbox_pending": 1,
        "outbox_dropped": 0,
        "camera_ok": True,
        "outbox_ok": True,
    }


def test_discovery_messages() -> None:
    t = topics("edge-face", "frontdoor")
    messages = dict(discovery_messages(t, "frontdoor", "0.1.0"))
    assert set(messages) == {
        "homeassistant/event/frontdoor/recognition/config",
        "homeassistant/sensor/frontdoor/last_person/config",
    }
    configs = {topic: json.loads(raw) for topic, raw in messages.items()}
    for config in configs.values():
        assert config["availability_topic"] == t.availability
        assert (config["payload_available"], config["payload_not_available"]) == (
            "online",
            "offline",
        )
        assert config["state_topic"] == t.events
        assert config["device"]["identifiers"] == ["edge-face-frontdoor"]
        assert config["device"]["manufacturer"] == "edge-face"
        assert config["device"]["sw_version"] == "0.1.0"
        assert config["name"] and config["value_template"]
    assert len({c["unique_id"] for c in configs.values()}) == 2
    ev = configs["homeassistant/event/frontdoor/recognition/config"]
    assert ev["event_types"] == ["recognized", "unknown"]


def test_event_template_maps_type_to_event_type_and_reads_real_keys() -> None:
    # HA's MQTT event entity wants a JSON object with `event_type`; the template must build
    # it from keys the event payload really has (no Jinja here: check the references).
    pairs = dict(re.findall(r"'(\w+)': value_json\.(\w+)", EVENT_VALUE_TEMPLATE))
    assert pairs["event_type"] == "type"
    payload = json.loads(event_payload(event(), include_crop=True))
    assert set(pairs.values()) <= set(payload) - {"crop"}
    assert EVENT_VALUE_TEMPLATE.rstrip().endswith("| to_json }}")


def test_payloads_are_compact_utf8_json_in_a_fixed_key_order() -> None:
    assert (
        event_payload(event(crop_jpeg=b"\xff"), include_crop=True)
        == (
            '{"v":1,"event_id":"0123456789abcdef0123456789abcdef","type":"recognized",'
            '"person":"Zoë","distance":0.3123,"tau":0.4568,"camera":"frontdoor","track_id":7,'
            '"box":[10.0,20.1,110.2,130.0],"frames":5,"time":"2024-05-01T12:34:56.789Z",'
            '"sighting_id":null,"crop":"/w=="}'
        ).encode()
    )


def test_a_non_finite_number_outside_distance_and_tau_is_refused_not_sent() -> None:
    # Strict JSON or nothing: a NaN box would otherwise go out as the non-JSON `NaN`.
    with pytest.raises(ValueError, match="not JSON compliant"):
        event_payload(event(box=BBox(math.nan, 0.0, 1.0, 1.0)), include_crop=False)


def test_status_numbers_keep_their_decimals() -> None:
    status = Status(
        fps=math.nan,
        latency_ms={},
        faces_seen=0,
        gallery_size=0,
        uptime_s=12.34,
        version="0.1.0",
        outbox_pending=0,
        outbox_dropped=0,
        camera_ok=False,
    )
    assert status_payload(status) == (
        b'{"v":1,"fps":null,"latency_ms":{},"faces_seen":0,"gallery_size":0,"uptime_s":12.3,'
        b'"version":"0.1.0","outbox_pending":0,"outbox_dropped":0,"camera_ok":false,"outbox_ok":true}'
    )


def test_discovery_payloads_home_assistant_reads() -> None:
    t = topics("home/cams", "porch")
    [(event_topic, event_raw), (sensor_topic, sensor_raw)] = discovery_messages(t, "porch", "1.2.3")
    common = {
        "availability_topic": "home/cams/porch/availability",
        "payload_available": "online",
        "payload_not_available": "offline",
        "state_topic": "home/cams/porch/events",
        "qos": 1,
        "device": {
            "identifiers": ["edge-face-porch"],
            "name": "edge-face porch",
            "manufacturer": "edge-face",
            "model": "edge-face",
            "sw_version": "1.2.3",
        },
        "origin": {"name": "edge-face", "sw_version": "1.2.3"},
    }
    assert event_topic == "homeassistant/event/porch/recognition/config"
    assert json.loads(event_raw) == {
        **common,
        "name": "Recognition",
        "unique_id": "edge-face-porch-recognition",
        "event_types": ["recognized", "unknown"],
        "value_template": EVENT_VALUE_TEMPLATE,
        "icon": "mdi:face-recognition",
    }
    assert sensor_topic == "homeassistant/sensor/porch/last_person/config"
    assert json.loads(sensor_raw) == {
        **common,
        "name": "Last person",
        "unique_id": "edge-face-porch-last-person",
        "value_template": LAST_PERSON_TEMPLATE,
        "icon": "mdi:account-eye",
    }


def test_the_sighting_id_links_the_event_to_the_kept_face() -> None:
    obj = json.loads(event_payload(event(sighting_id=42), include_crop=False))
    assert (
        obj["sighting_id"] == 42
    )  # `edge-face enroll NAME --sighting 42`, `not NAME --sighting 42`


def test_with_crops_home_assistant_gets_an_image_entity_of_the_last_face() -> None:
    t = topics("edge-face", "porch")
    assert [m for m, _ in discovery_messages(t, "porch", "1.2.3")] == [
        "homeassistant/event/porch/recognition/config",
        "homeassistant/sensor/porch/last_person/config",
    ]  # without include_crop: no image
    topic, raw = discovery_messages(t, "porch", "1.2.3", crop=True)[-1]
    assert topic == "homeassistant/image/porch/last_face/config"
    image = json.loads(raw)
    assert image["image_topic"] == "edge-face/porch/face" and image["image_encoding"] == "b64"
    assert (
        image["content_type"] == "image/jpeg" and image["unique_id"] == "edge-face-porch-last-face"
    )
    assert "state_topic" not in image and image["availability_topic"] == t.availability
    assert "qos" not in image  # an image entity takes no qos (HA refuses unknown keys)
    assert image["name"] == "Last face" and image["icon"] == "mdi:face-man"
    assert base64.b64decode(face_payload(event()) or b"") == b"\xff\xd8jpeg\xff\xd9"
    assert face_payload(event(crop_jpeg=None)) is None
