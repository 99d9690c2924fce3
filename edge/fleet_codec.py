"""Fleet gallery changes as MQTT messages: what a device publishes when a person is
enrolled, renamed or removed, and how every other device checks and reads it.

A message is one person's whole state (a *snapshot*: name, encoder, embeddings) or a
*tombstone* (the person is gone), with a version ``(counter, device)``: a Lamport counter
(one more than the largest the device has seen) and the device's id as the tie-break, so
that every device orders two changes of one person the same way. It is authenticated
with HMAC-SHA256 under the fleet key over the topic and the body: a message without the
key, or moved to another person's topic, is refused. (HMAC rather than signatures: every
device both reads and writes the gallery, so every device holds the secret either way;
HMAC needs no key pairs and verifies in microseconds on a Pi.)

The topic names the person by a keyed hash of the name (``person_key``), not the name: the
broker's retained tombstones, and anyone who lists topics without the key, learn no name.

Wire form: the JSON body, a newline, the hex MAC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from edge.errors import EdgeError

FORMAT = 1
MAX_EMBEDDINGS = 1000  # per person: a message claiming more is refused


class FleetMessageError(EdgeError):
    """A fleet message that fails authentication or cannot be read: never applied."""


@dataclass(frozen=True, slots=True, order=True)
class Version:
    counter: int
    device: str


@dataclass(frozen=True, slots=True)
class Embedding:
    vector: NDArray[np.float32]
    source: str
    quality: float


@dataclass(frozen=True, slots=True)
class Change:
    key: str  # person_key of the name
    version: Version
    op: Literal["put", "delete"]
    name: str | None = None  # put only
    encoder_id: str | None = None  # put only
    embeddings: tuple[Embedding, ...] = field(default=())


def topics_root(prefix: str, fleet_id: str) -> str:
    return f"{prefix}/fleet/{fleet_id}/gallery"


def devices_root(prefix: str, fleet_id: str) -> str:
    """Where each device keeps its retained fleet status (``edge-face fleet status``)."""
    return f"{prefix}/fleet/{fleet_id}/devices"


def sign(obj: dict[str, Any], key: bytes, topic: str) -> bytes:
    """``obj`` as compact JSON, a newline, the HMAC of topic and body."""
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return body + b"\n" + _mac(key, topic, body).encode()


def verified(payload: bytes, key: bytes, topic: str) -> dict[str, Any]:
    """The JSON object of a signed message; FleetMessageError when the MAC is wrong
    (another key, another topic, a changed byte) or the body is no JSON object."""
    body, sep, mac = payload.rpartition(b"\n")
    if not sep or not hmac.compare_digest(mac.decode("ascii", "replace"), _mac(key, topic, body)):
        raise FleetMessageError(
            f"{topic}: authentication failed (not signed with this fleet's key)"
        )
    try:
        obj = json.loads(body)
    except ValueError as exc:
        raise FleetMessageError(f"{topic}: a signed message that is no JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise FleetMessageError(f"{topic}: a signed message that is no JSON object")
    return obj


def person_key(key: bytes, name: str) -> str:
    """The topic's name for a person: HMAC of the case-folded name (names ignore case)."""
    return hmac.new(key, name.casefold().encode(), hashlib.sha256).hexdigest()[:32]


def _mac(key: bytes, topic: str, body: bytes) -> str:
    return hmac.new(key, topic.encode() + b"\n" + body, hashlib.sha256).hexdigest()


def encode(change: Change, key: bytes, topic: str) -> bytes:
    obj: dict[str, Any] = {"v": FORMAT, "key": change.key, "op": change.op,
                           "version": [change.version.counter, change.version.device]}  # fmt: skip
    if change.op == "put":
        obj["name"], obj["encoder_id"] = change.name, change.encoder_id
        obj["embeddings"] = [
            {
                "vector": base64.b64encode(np.asarray(e.vector, "<f4").tobytes()).decode(),
                "source": e.source,
                "quality": e.quality,
            }
            for e in change.embeddings
        ]
    return sign(obj, key, topic)


def decode(payload: bytes, key: bytes, topic: str) -> Change:
    """The change a message carries; FleetMessageError when its MAC is wrong (another key,
    another topic, a changed byte) or it cannot be read."""
    obj = verified(payload, key, topic)
    try:
        counter, device = obj["version"]
        version = Version(int(counter), str(device))
        if obj["v"] != FORMAT or obj["op"] not in ("put", "delete") or version.counter < 0:
            raise ValueError("unknown format, operation or version")
        if not topic.endswith("/" + obj["key"]):
            raise ValueError("the key is not the topic's")
        if obj["op"] == "delete":
            return Change(obj["key"], version, "delete")
        embeddings = tuple(
            Embedding(
                np.frombuffer(base64.b64decode(e["vector"]), "<f4").copy(),
                str(e["source"]),
                float(e["quality"]),
            )
            for e in obj["embeddings"][: MAX_EMBEDDINGS + 1]
        )
        if not embeddings or len(embeddings) > MAX_EMBEDDINGS:
            raise ValueError(f"{len(embeddings)} embeddings")
        if len({len(e.vector) for e in embeddings}) != 1 or not all(
            np.all(np.isfinite(e.vector)) for e in embeddings
        ):
            raise ValueError("embeddings of different lengths or holding non-numbers")
        return Change(
            obj["key"], version, "put", str(obj["name"]), str(obj["encoder_id"]), embeddings
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FleetMessageError(f"{topic}: a signed message that cannot be read: {exc}") from exc
