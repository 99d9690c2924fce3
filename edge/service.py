"""The daemon (``edge-face run``): everything assembled from the config, with systemd's
notify protocol and clean signal handling.

READY=1 once the model, the gallery and the camera source are up; frames are processed
from then on whether the broker is there or not (events wait in the outbox, the status
goes out when it connects). WATCHDOG=1 from the processing loop, so a hung pipeline gets
restarted. SIGTERM/SIGINT: finish the frame, flush the outbox, publish ``offline``, exit 0
(within 5 s). SIGHUP: re-read the gallery (it is also re-read whenever the enrollment CLI
changes it); one that comes while the daemon starts is applied once the gallery is loaded
(``edge.sighup``). A recording ends the run once its last event is delivered.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from edge import __version__
from edge.bundle import Bundle, load_bundle
from edge.config import Config
from edge.engine import load_engine
from edge.fleet_sync import FleetSync, fleet_for
from edge.gallery import Gallery
from edge.motion import MotionSettings
from edge.notify import Notifier
from edge.payloads import (
    Status,
    Topics,
    discovery_messages,
    event_payload,
    face_payload,
    status_payload,
    topics,
)
from edge.pipeline import Pipeline, detection_scale
from edge.ports import Engine, EventSink, GalleryReader
from edge.recognize import policy_for
from edge.runner import Runner
from edge.schedule import ScheduleSettings
from edge.sightings import Recorder, SightingStore
from edge.sighup import take as take_early_sighup
from edge.signals import SignalRelay
from edge.sinks.mqtt import MqttSink
from edge.sinks.outbox import Outbox
from edge.sources import is_live, open_source, redact
from edge.tracker import Tracker, TrackerSettings
from edge.types import RecognitionEvent

logger = logging.getLogger(__name__)
DRAIN_S = 30.0  # a recording's end: wait this long at most for the last events' PUBACKs


class LogSink:
    """Events to the log only (``--dry-run``)."""

    def publish(self, event: RecognitionEvent) -> None:
        logger.info("dry run: %s%s", event.type, f" {event.person}" if event.person else "")


class MqttEventSink:
    """Events through the outbox; with ``include_crop`` the face alone too, on the face
    topic (not kept: only while connected, never retained), for Home Assistant's image."""

    def __init__(self, mqtt: MqttSink, topics: Topics, include_crop: bool,
                 fleet: FleetSync | None = None) -> None:  # fmt: skip
        self.mqtt, self.topics, self.include_crop, self.fleet = mqtt, topics, include_crop, fleet

    def publish(self, event: RecognitionEvent) -> None:
        self.mqtt.publish_event(self.topics.events, event_payload(event, self.include_crop))
        if self.fleet is not None:  # the person's "last seen" across the fleet
            self.fleet.seen(event)
        face = face_payload(event) if self.include_crop else None
        if face is not None:
            self.mqtt.publish_state(self.topics.face, face, retain=False)


def tracker_settings(config: Config) -> TrackerSettings:
    t = config.tracking
    return TrackerSettings(iou=t.iou, k=t.k, n=t.n, unknown_after=t.unknown_after or None, cooldown_s=t.cooldown_s,
                           unknown_cooldown_s=t.unknown_cooldown_s, max_missed=t.max_missed)  # fmt: skip


def pipeline_options(config: Config) -> dict[str, Any]:
    """The pipeline's schedule, motion gate and zones from ``[pipeline]`` and ``[camera]``."""
    p = config.pipeline
    schedule = ScheduleSettings(enabled=p.schedule, max_embeds_per_s=p.max_embeds_per_s,
                                recheck_s=p.recheck_s, identity_check_s=p.identity_check_s,
                                unknown_check_s=p.unknown_check_s)  # fmt: skip
    motion = MotionSettings() if p.motion_gate else None
    return {"schedule": schedule, "motion": motion, "zones": config.camera.zones,
            "detect_scale": detection_scale(config.camera.min_face),
            "detect_fps": p.detect_fps}  # fmt: skip


def daemon_pipeline(config: Config, bundle: Bundle, engine: Engine, gallery: GalleryReader,
                    sink: EventSink, camera: str | None = None, **overrides: Any) -> Pipeline:  # fmt: skip
    """The daemon's pipeline as ``config`` makes it (rule, tracker, ``[pipeline]``); the
    benchmarks build theirs here too (``overrides``: Pipeline keywords)."""
    policy = policy_for(
        bundle.manifest, config.recognition, min_face=config.camera.min_face, cohort=bundle.cohort
    )
    tracker = Tracker(tracker_settings(config), camera=camera or config.camera.name)
    options = {"include_crop": config.mqtt.include_crop, **pipeline_options(config), **overrides}
    return Pipeline(engine, gallery, policy, bundle.manifest.encoder_id, tracker, sink, **options)


def open_sightings(config: Config, encoder_id: str) -> Recorder | None:
    """The sightings store when ``[sightings] enabled`` (its expired rows purged first)."""
    c = config.sightings
    if not c.enabled:
        return None
    store = SightingStore(c.file(config.gallery.path), c.retention_days, c.max_mb)
    store.expire()
    rows, size = store.size()
    logger.info("sightings: %d kept (%.1f MB) in %s", rows, size / 1e6, c.file(config.gallery.path))
    return Recorder(store, encoder_id)


def run_daemon(config: Config, env: Mapping[str, str] | None = None, dry_run: bool = False,
               stop: threading.Event | None = None) -> int:  # fmt: skip
    env = os.environ if env is None else env
    stop = stop or threading.Event()
    notifier = Notifier(env.get("NOTIFY_SOCKET"))
    pipelines: list[Pipeline] = []  # SIGHUP re-reads the gallery once the pipeline exists
    reload_asked = threading.Event()  # a SIGHUP before that: applied once it does
    starting = threading.Lock()  # the relay thread against the pipeline's arrival

    def on_sighup() -> None:
        with starting:
            if pipelines:
                pipelines[0].request_reload()
            else:
                reload_asked.set()

    relay = _install_signals(stop, on_sighup)
    if take_early_sighup():
        reload_asked.set()
    runners: list[Runner] = []
    bundle = load_bundle(config.model.bundle, public_key=config.model.public_key)
    engine = load_engine(bundle)
    gallery = Gallery(config.gallery.path)
    t = topics(config.mqtt.topic_prefix, config.mqtt.device_id)
    mqtt: MqttSink | None = None
    fleet: FleetSync | None = None
    if dry_run:
        sink: Any = LogSink()
        if config.fleet.enabled:
            logger.warning("[fleet] needs the broker: not synced in a dry run")
    else:
        outbox = Outbox(config.mqtt.outbox, max_items=config.mqtt.outbox_max)

        def announce() -> None:
            if config.mqtt.discovery and mqtt is not None:
                for topic, payload in discovery_messages(
                    t, config.mqtt.device_id, __version__, config.mqtt.include_crop
                ):
                    mqtt.publish_state(topic, payload, retain=True)

        def connected() -> None:
            announce()
            if fleet is not None:
                fleet.on_connected()
            if runners:
                runners[0].tick_soon()  # the status, now that it can go out

        mqtt = MqttSink.from_config(config.mqtt, availability_topic=t.availability, outbox=outbox,
                                    on_connected=connected, on_ha_birth=announce, env=env)  # fmt: skip
        fleet = fleet_for(config, mqtt.client, bundle.manifest.encoder_id, env)
        mqtt.start()
        sink = MqttEventSink(mqtt, t, config.mqtt.include_crop, fleet)
    sightings = open_sightings(config, bundle.manifest.encoder_id)
    pipeline = daemon_pipeline(config, bundle, engine, gallery, sink, sightings=sightings)
    with starting:
        pipelines.append(pipeline)
        if reload_asked.is_set():
            logger.info("SIGHUP while starting: the gallery is re-read before the first frame")
            pipeline.request_reload()
    source = open_source(config.camera.source, config.camera.name, retry_at_start=True)
    live = is_live(config.camera.source)

    def tick() -> None:
        st = pipeline.stats
        status = Status(fps=st.fps(), latency_ms=st.percentiles(), faces_seen=st.faces_seen,
                        gallery_size=len(pipeline.matrix.names), uptime_s=time.monotonic() - st.started,
                        version=__version__, outbox_pending=mqtt.pending() if mqtt else 0,
                        outbox_dropped=mqtt.outbox.dropped() if mqtt else 0, camera_ok=getattr(source, "ok", True),
                        outbox_ok=not (mqtt and mqtt.outbox_failing))  # fmt: skip
        if mqtt is not None:
            mqtt.publish_state(t.status, status_payload(status), retain=True)
        notifier.status(f"{status.fps:.1f} fps, {status.faces_seen} faces seen, {status.gallery_size} people, "
                        f"{status.outbox_pending} events pending")  # fmt: skip

    notifier.ready()
    logger.info(
        "running: camera %r, %d person(s) enrolled",
        redact(config.camera.source),
        len(pipeline.matrix.names),
    )
    runner = Runner(source, pipeline, live=live, stop=stop, max_fps=config.camera.max_fps, on_tick=tick,
                    tick_s=config.mqtt.status_interval_s, watchdog=notifier.watchdog)  # fmt: skip
    runners.append(runner)
    tick()
    runner.run()
    notifier.stopping()
    tick()
    if fleet is not None:
        fleet.close()
    if mqtt is not None:
        mqtt.close(timeout=DRAIN_S if not stop.is_set() else 3.0)
        mqtt.outbox.close()
    gallery.close()
    if sightings is not None:
        sightings.store.close()
    logger.info("stopped after %d frames", pipeline.stats.frames)
    if relay is not None:
        relay.close()
    return 0


def _install_signals(stop: threading.Event, reload: Callable[[], None]) -> SignalRelay | None:
    """First thing at start-up: a SIGTERM during loading must stop cleanly too. The
    actions run on edge.signals' relay thread, never inside the code a signal interrupts."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return SignalRelay({signal.SIGTERM: stop.set, signal.SIGINT: stop.set, signal.SIGHUP: reload})
