"""What goes on the wire: MQTT topics, the versioned JSON payloads, Home Assistant discovery.

Pure functions from typed values to ``bytes``; the MQTT sink decides QoS and retain:
events QoS 1 and never retained (a replayed "recognized" can open a door), status and
discovery retained. Non-finite numbers (the distance when the gallery is empty) are
written as ``null``, so every payload is strict JSON.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge.types import RecognitionEvent

SCHEMA_VERSION = 1
DISCOVERY_PREFIX = "homeassistant"
MANUFACTURER = "edge-face"

#: Home Assistant event entity: the MQTT event platform wants a JSON object with an
#: ``event_type`` key; the other keys become the entity's attributes. The crop is left out
#: so that HA's recorder does not store JPEGs.
EVENT_VALUE_TEMPLATE = (
    "{{ {'event_type': value_json.type, 'person': value_json.person, "
    "'distance': value_json.distance, 'camera': value_json.camera, "
    "'track_id': value_json.track_id, 'event_id': value_json.event_id, "
    "'time': value_json.time, 'sighting_id': value_json.sighting_id} | to_json }}"
)
LAST_PERSON_TEMPLATE = "{{ value_json.person if value_json.type == 'recognized' else 'unknown' }}"


@dataclass(frozen=True, slots=True)
class Topics:
    base: str  # <prefix>/<device_id>
    availability: str  # retained "online"; Last Will "offline"
    events: str  # QoS 1, never retained
    status: str  # retained
    face: str  # the event's face crop alone, base64 JPEG ([mqtt] include_crop): HA's image
    ha_status: str  # Home Assistant's birth message: re-publish discovery on "online"


def topics(prefix: str, device_id: str) -> Topics:
    """The topics of one device, e.g. ``edge-face/frontdoor/events``."""
    base = f"{prefix}/{device_id}"
    return Topics(
        base=base,
        availability=f"{base}/availability",
        events=f"{base}/events",
        status=f"{base}/status",
        face=f"{base}/face",
        ha_status=f"{DISCOVERY_PREFIX}/status",
    )


@dataclass(frozen=True, slots=True)
class Status:
    fps: float
    latency_ms: dict[str, tuple[float, float]]  # stage -> (p50, p95)
    faces_seen: int
    gallery_size: int
    uptime_s: float
    version: str
    outbox_pending: int
    outbox_dropped: int
    camera_ok: bool
    outbox_ok: bool = True  # False once an event could not be stored (a full disk)


def _num(value: float, digits: int) -> float | None:
    return round(value, digits) if math.isfinite(value) else None


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def iso_utc(unix_time: float) -> str:
    """``2024-05-01T12:34:56.789Z``; a ValueError for a time that is no date (NaN, an
    infinity, outside the years 1-9999), as for any value strict JSON cannot hold."""
    try:
        stamp = datetime.fromtimestamp(unix_time, UTC).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"time {unix_time!r} is not a date: {exc}") from exc
    return stamp.replace("+00:00", "Z")


def event_payload(event: RecognitionEvent, include_crop: bool) -> bytes:
    """The event as UTF-8 JSON; ``crop`` (base64 JPEG) only when asked for and present."""
    obj: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "event_id": event.event_id,
        "type": event.type,
        "person": event.person,
        "distance": _num(event.distance, 4),
        "tau": _num(event.tau, 4),
        "camera": event.camera,
        "track_id": event.track_id,
        "box": event.box.as_list(),
        "frames": event.frames,
        "time": iso_utc(event.time),
        "sighting_id": event.sighting_id,  # null unless [sightings] keeps it: `edge-face sightings`
    }
    if include_crop and event.crop_jpeg:
        obj["crop"] = base64.b64encode(event.crop_jpeg).decode()
    return _json(obj)


def mark_stale(payload: bytes, age_s: float) -> bytes:
    """An event that waited in the outbox longer than ``[mqtt] event_max_age_s``, marked
    ``"stale": true`` with its ``age_s`` (an automation that opens a door ignores it); a
    payload that is not a JSON object (nor JSON nested too deeply to read or write back)
    is returned as it is; a ValueError when the marked object cannot be strict JSON (a
    NaN, a lone surrogate, a non-finite age): the outbox drops such a row."""
    try:
        obj = json.loads(payload)
    except (ValueError, RecursionError):
        return payload
    if not isinstance(obj, dict):
        return payload
    obj["stale"], obj["age_s"] = True, round(age_s, 1)
    try:
        return _json(obj)
    except RecursionError:  # read at the stack's limit, one frame too deep to write
        return payload


def status_payload(status: Status) -> bytes:
    """The retained status as UTF-8 JSON; latencies as ``{stage: {"p50": .., "p95": ..}}``."""
    return _json(
        {
            "v": SCHEMA_VERSION,
            "fps": _num(status.fps, 2),
            "latency_ms": {
                stage: {"p50": _num(p50, 1), "p95": _num(p95, 1)}
                for stage, (p50, p95) in status.latency_ms.items()
            },
            "faces_seen": status.faces_seen,
            "gallery_size": status.gallery_size,
            "uptime_s": _num(status.uptime_s, 1),
            "version": status.version,
            "outbox_pending": status.outbox_pending,
            "outbox_dropped": status.outbox_dropped,
            "camera_ok": status.camera_ok,
            "outbox_ok": status.outbox_ok,
        }
    )


def discovery_messages(topics: Topics, device_id: str, version: str,
                       crop: bool = False) -> list[tuple[str, bytes]]:  # fmt: skip
    """Home Assistant MQTT discovery: (config topic, payload) for each entity of the device,
    to publish retained, at start and again when HA sends ``online`` on ``ha_status``;
    ``crop`` ([mqtt] include_crop): an image entity too, the last event's face."""
    ident = f"edge-face-{device_id}"
    common: dict[str, Any] = {
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "state_topic": topics.events,
        "qos": 1,
        "device": {
            "identifiers": [ident],
            "name": f"edge-face {device_id}",
            "manufacturer": MANUFACTURER,
            "model": "edge-face",
            "sw_version": version,
        },
        "origin": {"name": "edge-face", "sw_version": version},
    }
    event = {
        **common,
        "name": "Recognition",
        "unique_id": f"{ident}-recognition",
        "event_types": ["recognized", "unknown"],
        "value_template": EVENT_VALUE_TEMPLATE,
        "icon": "mdi:face-recognition",
    }
    sensor = {
        **common,
        "name": "Last person",
        "unique_id": f"{ident}-last-person",
        "value_template": LAST_PERSON_TEMPLATE,
        "icon": "mdi:account-eye",
    }
    messages = [
        (f"{DISCOVERY_PREFIX}/event/{device_id}/recognition/config", _json(event)),
        (f"{DISCOVERY_PREFIX}/sensor/{device_id}/last_person/config", _json(sensor)),
    ]
    if crop:
        image = {k: v for k, v in common.items() if k not in ("state_topic", "qos")}
        image.update(name="Last face", unique_id=f"{ident}-last-face", image_topic=topics.face,
                     image_encoding="b64", content_type="image/jpeg", icon="mdi:face-man")  # fmt: skip
        messages.append((f"{DISCOVERY_PREFIX}/image/{device_id}/last_face/config", _json(image)))
    return messages


def face_payload(event: RecognitionEvent) -> bytes | None:
    """The event's face crop alone (base64 JPEG) for HA's image entity; None without one."""
    return base64.b64encode(event.crop_jpeg) if event.crop_jpeg else None
