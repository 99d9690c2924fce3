"""MQTT delivery that loses nothing: events go through the persistent outbox.

``publish_event`` only writes the event to the :class:`~edge.sinks.outbox.Outbox`; an
:class:`~edge.sinks.sender.OutboxSender` thread sends the waiting rows in id order (QoS 1,
never retained) while the broker is connected and deletes each row on its PUBACK.
Retained state and discovery go directly (``publish_state``), latest wins.

QoS 1 is "at least once": a message whose PUBACK was lost (connection cut, process
killed) is sent again, so consumers drop duplicates by the payload's event id. Events
older than ``event_max_age_s`` go out marked ``"stale": true`` (``payloads.mark_stale``);
with the outbox unwritable (a full disk) and the broker up, events go to paho directly.

Availability: Last Will ``offline`` (retained, QoS 1) on ``availability_topic``;
``online`` (retained) after every connect, ``offline`` on :meth:`MqttSink.close`.
Every public method logs and swallows errors: a sink never raises into the pipeline.
A connection that fails is logged once per kind of failure (``mqtt_problems``: not
reachable, credentials refused, a TLS certificate problem), not on every retry.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from edge.config import MqttConfig
from edge.payloads import mark_stale
from edge.secrets import mqtt_password
from edge.sinks.mqtt_client import configured_client
from edge.sinks.mqtt_problems import Problem, connect_failed, refused
from edge.sinks.outbox import Outbox, OutboxItem
from edge.sinks.sender import WINDOW, OutboxSender

logger = logging.getLogger(__name__)

HA_STATUS_TOPIC = "homeassistant/status"
ONLINE, OFFLINE = b"online", b"offline"

Callback = Callable[[], None]


class MqttSink:
    """Events through the outbox, retained state directly; see the module docstring.

    Construction may raise :class:`ConfigError` (unreadable TLS files); nothing else does.
    Call :meth:`start` (or use ``with``) to connect; the outbox is the caller's to close.
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        availability_topic: str,
        outbox: Outbox,
        password: str | None = None,
        on_connected: Callback | None = None,
        on_ha_birth: Callback | None = None,
        client_id: str | None = None,
        window: int = WINDOW,
        reconnect_max_delay: int = 30,
    ) -> None:
        self.config = config
        self.availability_topic = availability_topic
        self.outbox = outbox
        self.on_connected = on_connected
        self.on_ha_birth = on_ha_birth
        self._where = f"{config.host}:{config.port}"
        self._connected = False
        self._ever_connected = False
        self._problem: str | None = None  # the kind of failure logged last: not again
        self._started = self._closing = False
        self._stale_logged = False  # once per connection
        self.outbox_failing = False  # the outbox could not take an event (status flag)
        self._disconnected = threading.Event()
        self._sender = OutboxSender(outbox, self._publish_item, window=window)
        self.client = self._make_client(client_id or f"edge-face-{config.device_id}", password)
        self.client.max_inflight_messages_set(max(20, 2 * window))
        self.client.reconnect_delay_set(min_delay=1, max_delay=max(1, reconnect_max_delay))

    @classmethod
    def from_config(
        cls,
        config: MqttConfig,
        *,
        availability_topic: str,
        outbox: Outbox,
        on_connected: Callback | None = None,
        on_ha_birth: Callback | None = None,
        env: Mapping[str, str] | None = None,
    ) -> MqttSink:
        """The sink with the password from ``password_file`` or the systemd credential."""
        return cls(
            config,
            availability_topic=availability_topic,
            outbox=outbox,
            password=mqtt_password(config, env),
            on_connected=on_connected,
            on_ha_birth=on_ha_birth,
        )

    def _make_client(self, client_id: str, password: str | None) -> mqtt.Client:
        client = configured_client(self.config, client_id, password)
        client.will_set(self.availability_topic, OFFLINE, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.message_callback_add(HA_STATUS_TOPIC, self._on_ha_status)
        return client

    @property
    def connected(self) -> bool:
        return self._connected

    def pending(self) -> int:
        """Events not yet acknowledged by the broker (-1 when the outbox cannot be read)."""
        try:
            return self.outbox.count()
        except Exception:
            logger.exception("cannot read the outbox")
            return -1

    def start(self) -> None:
        """Connect in the background (retrying for ever) and start sending the outbox."""
        if self._started:
            return
        self._started = True
        try:
            self.client.connect_async(self.config.host, self.config.port, self.config.keepalive)
            self.client.loop_start()
            self._sender.start()
        except Exception:
            logger.exception("cannot start the MQTT client for %s", self._where)

    def publish_event(self, topic: str, payload: bytes) -> bool:
        """Store an event in the outbox; it is sent in order when the broker is there.
        False (logged) only when it could not even be stored."""
        if not topic or "+" in topic or "#" in topic:
            logger.error("cannot publish to %r (not a topic name): event dropped", topic)
            return False
        try:
            self.outbox.put(topic, bytes(payload), qos=1)
        except Exception as exc:
            return self._publish_unstored(topic, bytes(payload), exc)
        self._sender.wake()
        return True

    def _publish_unstored(self, topic: str, payload: bytes, exc: Exception) -> bool:
        """The outbox could not take the event (a full disk): straight to paho when
        connected (QoS 1: kept until acknowledged, in memory only), else lost."""
        self.outbox_failing = True
        with contextlib.suppress(Exception):
            if self._connected and not self.client.publish(topic, payload, qos=1).rc:
                logger.error("cannot store an event in the outbox (%s): sent directly", exc)
                return True
        logger.error("cannot store an event (%s) and the broker is not there: lost", exc)
        return False

    def publish_state(self, topic: str, payload: bytes | str, retain: bool = True) -> bool:
        """Publish retained state or discovery now (QoS 1); skipped while disconnected,
        as the next connect publishes the latest state again."""
        if not self._connected:
            logger.debug("not connected: %s not published", topic)
            return False
        try:
            info = self.client.publish(topic, payload, qos=1, retain=retain)
        except Exception:
            logger.exception("cannot publish to %s", topic)
            return False
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS

    def close(self, timeout: float = 3.0) -> None:
        """Flush the outbox (up to ``timeout``), publish ``offline``, disconnect cleanly."""
        if self._closing:
            return
        deadline = time.monotonic() + timeout
        try:
            while self._started and self._connected and time.monotonic() < deadline:
                if self.pending() <= 0:
                    break
                time.sleep(0.05)
            if (left := self.pending()) > 0:
                logger.warning("%d events wait in the outbox for the next start", left)
            self._sender.stop(max(0.1, deadline - time.monotonic()))
            self._closing = True
            was_connected = self._connected
            if was_connected:
                info = self.client.publish(self.availability_topic, OFFLINE, qos=1, retain=True)
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            self.client.disconnect()
            if was_connected:
                self._disconnected.wait(max(0.1, deadline - time.monotonic()))
            self.client.loop_stop()
        except Exception:
            logger.exception("error while closing the MQTT connection to %s", self._where)
        self._closing = True

    def __enter__(self) -> MqttSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # paho's network thread
    def _report(self, problem: Problem) -> None:
        """Log a failed connection once per kind (a retry that fails alike says nothing)."""
        if problem.kind != self._problem and not self._closing:
            logger.log(
                logging.ERROR if problem.is_config else logging.WARNING, "%s", problem.message
            )
        self._problem = problem.kind

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self._report(refused(self._where, rc, self.config))
            return
        again = "re" if self._ever_connected else ""
        logger.info("%sconnected to the MQTT broker %s", again, self._where)
        self._ever_connected, self._problem = True, None
        self._connected = True
        self._stale_logged = False
        self._disconnected.clear()
        try:
            client.publish(self.availability_topic, ONLINE, qos=1, retain=True)
            self._call(self.on_connected, "on_connected")
            client.subscribe(HA_STATUS_TOPIC, qos=1)
        except Exception:
            logger.exception("error after connecting to %s", self._where)
        self._sender.connected()

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        # paho calls this while it handles the connection's OSError (an ssl.SSLError for
        # TLS): the error is the one being handled
        self._report(connect_failed(self._where, sys.exc_info()[1], self.config))

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        was, self._connected = self._connected, False
        self._disconnected.set()
        if was and not self._closing:
            logger.warning("lost the MQTT broker %s (%s); events wait", self._where, rc)
            self._problem = "unreachable"  # said: retries that cannot reach it say no more
        self._sender.disconnected()

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _rc: Any, _p: Any) -> None:
        self._sender.acked(mid)

    def _on_ha_status(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if message.payload.strip().lower() == ONLINE:
            logger.info("Home Assistant is online")
            self._call(self.on_ha_birth, "on_ha_birth")

    @staticmethod
    def _call(callback: Callback | None, name: str) -> None:
        try:
            if callback is not None:
                callback()
        except Exception:
            logger.exception("the %s callback failed", name)

    # the sender's thread
    def _publish_item(self, item: OutboxItem) -> int | None:
        """Hand one event to paho (marked stale past ``event_max_age_s``): its mid once
        paho holds it (paho sends it again after a reconnect), else None."""
        payload = item.payload
        age = time.time() - item.created
        limit = self.config.event_max_age_s
        if limit > 0 and age > limit:
            payload = mark_stale(payload, age)
            if not self._stale_logged:
                logger.warning("events waited longer than %.0f s for the broker: sent marked "
                               '"stale": true', limit)  # fmt: skip
                self._stale_logged = True
        info = self.client.publish(item.topic, payload, qos=item.qos, retain=False)
        taken = info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
            item.qos > 0 and info.rc != MQTTErrorCode.MQTT_ERR_QUEUE_SIZE
        )  # QoS 0 is kept by paho only when sent; QoS 1 also when not connected
        return info.mid if taken else None
