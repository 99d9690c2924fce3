"""The daemon's side of the fleet (``[fleet] enabled``): publishes this device's gallery
changes and applies every other device's, through the daemon's own MQTT connection.

One thread owns a connection of its own to the gallery file: it applies the messages the
broker delivers (queued by paho's thread), and once a second, when the file changed (the
enrollment CLI: ``enroll``, ``rename``, ``remove``), turns what changed into versioned
changes (``edge.fleet_store``) and publishes each, retained, on
``<topic_prefix>/fleet/<id>/gallery/<person key>``: the broker keeps every person's
latest state, a snapshot or a tombstone, so a device that was off, or a new one, catches
up when it subscribes. A change stays pending until the broker sends it back; every
connect publishes what is pending (a broker that was down loses nothing). A message that
fails authentication is refused and logged, never applied.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

from edge import __version__
from edge.fleet_codec import (
    Change,
    FleetMessageError,
    decode,
    devices_root,
    encode,
    person_key,
    sign,
    topics_root,
)
from edge.fleet_seen import discovery, seen_payload, seen_root
from edge.fleet_store import apply, confirm, local_changes, pending, summary
from edge.gallery import Gallery
from edge.types import RecognitionEvent

logger = logging.getLogger(__name__)

CHECK_S = 1.0  # how often the gallery file is asked whether the CLI changed it
REFUSED_LOG_S = 60.0  # refused messages: one log line a minute at most


class FleetSync:
    def __init__(self, client: Any, prefix: str, fleet_id: str, device: str, gallery: Path,
                 encoder_id: str, secret: bytes, check_s: float = CHECK_S,
                 discovery: bool = True) -> None:  # fmt: skip
        self.client, self.device, self.encoder_id = client, device, encoder_id
        self.root = topics_root(prefix, fleet_id)
        self.prefix, self.fleet_id, self.discovery = prefix, fleet_id, discovery
        self._announced: dict[str, str] = {}  # person key -> name: their "last seen" sensor
        self.gallery_path, self.secret, self.check_s = gallery, secret, check_s
        self.refused = 0
        self._dirty = True  # the device's status is to be published again
        self.status_topic = f"{devices_root(prefix, fleet_id)}/{device}"
        self._refused_logged = -REFUSED_LOG_S
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet", daemon=True)
        client.message_callback_add(f"{self.root}/+", self._on_message)

    def start(self) -> None:
        self._thread.start()

    def on_connected(self) -> None:
        """Called on every (re)connect: subscribe (the retained states come first) and
        publish what is pending."""
        self.client.subscribe(f"{self.root}/+", qos=1)
        self._connected.set()

    def close(self, timeout: float = 3.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        self._inbox.put((message.topic, bytes(message.payload)))

    def _run(self) -> None:
        gallery = Gallery(self.gallery_path)
        version = None
        try:
            while not self._stop.is_set():
                try:
                    topic, payload = self._inbox.get(timeout=self.check_s)
                    self._handle(gallery, topic, payload)
                    continue  # drain the inbox first: the states others hold come first
                except queue.Empty:
                    pass
                except Exception:
                    logger.exception("fleet: a message could not be applied")
                try:
                    now = gallery.data_version()
                    if now != version:
                        version = now
                        for change in local_changes(
                            gallery, self.secret, self.device, self.encoder_id
                        ):
                            self._publish(change)
                            self._dirty = True
                    if self._connected.is_set():
                        self._connected.clear()
                        self._announced = {}  # announce everyone again (a broker restarted)
                        for change in pending(gallery):
                            self._publish(change)
                        self._dirty = True
                    if self._dirty:
                        self._dirty = False
                        self._publish_status(gallery)
                        if self.discovery:
                            self._announce(gallery)
                except Exception:
                    logger.exception("fleet: this device's changes could not be published")
        finally:
            gallery.close()

    def _handle(self, gallery: Gallery, topic: str, payload: bytes) -> None:
        if not payload:
            return  # a retained state cleared by hand
        try:
            change = decode(payload, self.secret, topic)
        except FleetMessageError as exc:
            self.refused += 1
            if time.monotonic() - self._refused_logged >= REFUSED_LOG_S:
                self._refused_logged = time.monotonic()
                logger.warning("fleet: refused a message (%d so far): %s", self.refused, exc)
            return
        outcome = apply(gallery, change, self.encoder_id, self.secret)
        self._dirty = True
        if outcome == "older":
            if change.version.device == self.device:
                confirm(gallery, change.key, change.version)  # ours, back from the broker
            return
        what = change.name if change.op == "put" else f"person {change.key[:8]}"
        logger.info("fleet: %s %s (from %s, version %d)", what,
                    "removed" if outcome == "removed" else outcome, change.version.device,
                    change.version.counter)  # fmt: skip

    def _publish_status(self, gallery: Gallery) -> None:
        status = summary(gallery, self.encoder_id) | {
            "device": self.device, "encoder_id": self.encoder_id, "refused": self.refused,
            "time": round(time.time(), 1)}  # fmt: skip
        payload = sign(status, self.secret, self.status_topic)
        self.client.publish(self.status_topic, payload, qos=1, retain=True)

    def seen(self, event: RecognitionEvent) -> None:
        """A recognition on this device: the person's "last seen", retained (any thread)."""
        if event.type != "recognized" or event.person is None:
            return
        key = person_key(self.secret, event.person)
        payload = seen_payload(event.person, self.device, event.camera, event.time)
        self.client.publish(
            f"{seen_root(self.prefix, self.fleet_id)}/{key}", payload, qos=1, retain=True
        )

    def _announce(self, gallery: Gallery) -> None:
        """Home Assistant's "last seen" sensor for everyone in the gallery; a person gone
        takes their sensor and their last sighting off the broker."""
        names = [n for (n,) in gallery.conn.execute("SELECT name FROM people")]
        now = {person_key(self.secret, n): n for n in names}
        for key, name in now.items():
            if self._announced.get(key) != name:
                topic, config = discovery(self.prefix, self.fleet_id, key, name, __version__)
                self.client.publish(topic, config, qos=1, retain=True)
        for key in set(self._announced) - set(now):
            topic, _ = discovery(self.prefix, self.fleet_id, key, "", __version__)
            self.client.publish(topic, b"", qos=1, retain=True)
            self.client.publish(
                f"{seen_root(self.prefix, self.fleet_id)}/{key}", b"", qos=1, retain=True
            )
        self._announced = now

    def _publish(self, change: Change) -> None:
        topic = f"{self.root}/{change.key}"
        self.client.publish(topic, encode(change, self.secret, topic), qos=1, retain=True)
        what = change.name if change.op == "put" else f"removal of {change.key[:8]}"
        logger.info("fleet: published %s (version %d)", what, change.version.counter)


def fleet_for(config: Any, client: Any, encoder_id: str, env: Any = None) -> FleetSync | None:
    """The daemon's fleet sync when ``[fleet] enabled`` (started), else None; a
    ConfigError when the fleet key cannot be read."""
    from edge.secrets import fleet_key

    if not config.fleet.enabled:
        return None
    sync = FleetSync(client, config.mqtt.topic_prefix, config.fleet.id, config.mqtt.device_id,
                     config.gallery.path, encoder_id, fleet_key(config.fleet, env),
                     discovery=config.mqtt.discovery)  # fmt: skip
    sync.start()
    logger.info("fleet %s: this device is %s; gallery changes go through %s/+",
                config.fleet.id, config.mqtt.device_id, sync.root)  # fmt: skip
    return sync
