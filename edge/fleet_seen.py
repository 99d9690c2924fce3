"""Home Assistant's "last seen" across the fleet: one sensor per enrolled person (where:
the device and camera; when: its ``time`` attribute), whichever device saw them last.

- Each device announces, through MQTT discovery (retained), a sensor for every person in
  its gallery, on one Home Assistant device for the whole fleet; every device announces
  the same payload, so which one does it last does not matter.
- A ``recognized`` event also goes, retained, to ``<prefix>/fleet/<id>/seen/<person
  key>``: the sensor's state topic. The last device to see the person wins.
- A removal (local or from another device) clears both: the person's sensor leaves Home
  Assistant and their last sighting leaves the broker.

These messages hold names (Home Assistant shows them): the broker's ACL gives Home
Assistant read access to ``.../seen/#`` and ``homeassistant/#`` only (docs/FLEET.md).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from edge.payloads import DISCOVERY_PREFIX, MANUFACTURER


def seen_root(prefix: str, fleet_id: str) -> str:
    return f"{prefix}/fleet/{fleet_id}/seen"


def seen_payload(person: str, device: str, camera: str, unix_time: float) -> bytes:
    when = dt.datetime.fromtimestamp(unix_time, dt.UTC).isoformat(timespec="seconds")
    obj = {"person": person, "where": f"{device} {camera}", "device": device, "camera": camera,
           "time": when}  # fmt: skip
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def discovery(prefix: str, fleet_id: str, key: str, person: str, version: str) -> tuple[str, bytes]:
    """The retained discovery message of one person's "last seen" sensor."""
    ident = f"edge-face-fleet-{fleet_id}"
    state = f"{seen_root(prefix, fleet_id)}/{key}"
    config: dict[str, Any] = {
        "name": f"{person} last seen",
        "unique_id": f"{ident}-{key}-last-seen",
        "state_topic": state,
        "value_template": "{{ value_json.where }}",
        "json_attributes_topic": state,
        "icon": "mdi:map-marker-account",
        "device": {
            "identifiers": [ident],
            "name": f"edge-face fleet {fleet_id}",
            "manufacturer": MANUFACTURER,
            "model": "edge-face fleet",
            "sw_version": version,
        },
        "origin": {"name": "edge-face", "sw_version": version},
    }
    topic = f"{DISCOVERY_PREFIX}/sensor/edge_face_{fleet_id}_{key}/last_seen/config"
    return topic, json.dumps(config, ensure_ascii=False, separators=(",", ":")).encode()
