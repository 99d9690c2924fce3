"""The soak (issue 29): the real daemon for an hour on the looped Hamilton clip while the
MQTT broker is stopped and started again every few minutes; the daemon's memory, threads,
file handles and outbox sampled, and every event followed from the daemon to a subscriber.

    .venv/bin/python bench/soak.py [--minutes 60] [--restart-every 180] [--down-s 10]
        [--broker-signal term|kill] [--sample-s 10] [--bundle build/bundle-sface]
        [--default-cooldowns] [--out bench/results/soak.json] [--keep DIR]

Everything is real and on 127.0.0.1: a private mosquitto with persistence on a free port;
a gallery with the clip's three people enrolled by ``edge-face enroll`` (as scripts/demo.py
does); the clip served for ever as an MJPEG IP camera at its own frame rate
(bench/soak_camera.py: a live source, so the daemon keeps only the newest frame, as on a
Pi); ``edge-face run`` with a config file pointing at that camera (cooldowns 0, so every
pass of the clip raises its events); a QoS 1 paho subscriber with its own persistent
session. Every ``--restart-every`` seconds the broker is stopped (SIGTERM, or SIGKILL with
``--broker-signal kill``) and started again ``--down-s`` later on the same port. Every
``--sample-s`` seconds: the daemon's RSS, threads (``/proc/PID/status``), open file
descriptors (``/proc/PID/fd``), CPU time, and the outbox's rows (its SQLite file opened
read-only; also polled every second for the maximum). At the end the restarts stop, the
outbox drains, the daemon gets SIGTERM, and events logged by the daemon are matched with
events received (``method`` in the JSON says how). Writes ``--out`` and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import report
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from soak_camera import LoopingMjpegCamera, encode_clip

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from broker import free_port, mosquitto_binary, wait_until  # noqa: E402

logger = logging.getLogger("soak")

RESULT = REPO / "bench" / "results" / "soak.json"
CLIP = Path("videos") / "hamilton" / "short_hamilton_clip.mp4"
REFERENCES = {
    "Lin-Manuel Miranda": "lin-manuel-miranda.png",
    "Alex Lacamoire": "alex-lacamoire.png",
    "Barack Obama": "obama.jpg",
}
DEVICE_ID = "soak"
CAMERA = "soak"
TOPICS = [f"edge-face/{DEVICE_ID}/{t}" for t in ("events", "status", "availability")]
EVENTS_TOPIC = TOPICS[0]
SUBSCRIBER_ID = "edge-face-soak-subscriber"
READY_S = 180.0  # the daemon's start: bundle, gallery, camera, broker
DRAIN_S = 120.0  # the end: the outbox must be empty within this
DELIVER_S = 30.0  # the end: the subscriber must have everything within this
RSS_FLAT_MB_PER_H = 1.0  # the criterion (see flatness())
EVENT_LINE = re.compile(
    rf"edge\.tracker: (recognized|unknown) (.+) on {CAMERA} \(track (\d+), \d+ frames, distance"
)
LEVEL = re.compile(r" (WARNING|ERROR|CRITICAL) ([\w.]+): (.*)$")

Key = tuple[str, str, int]  # (type, person or "-", track id): unique within one daemon process


# --- the broker -------------------------------------------------------------------------


class SoakBroker:
    """mosquitto with persistence in ``workdir`` on a fixed port, stopped by ``sig``."""

    def __init__(self, workdir: Path, port: int, sig: signal.Signals) -> None:
        self.workdir, self.port, self.sig = workdir, port, sig
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf, self.log = workdir / "mosquitto.conf", workdir / "mosquitto.log"
        lines = [
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {workdir}/",
            "persistence_file mosquitto.db",
            "max_queued_messages 100000",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if sig == signal.SIGKILL:  # no save at exit: save after every change instead
            lines += ["autosave_on_changes true", "autosave_interval 1"]
        if os.geteuid() == 0:
            lines.append(f"user {getpass.getuser()}")  # else it becomes 'mosquitto'
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [mosquitto_binary(), "-c", str(self.conf)], stdout=log, stderr=log
            )

        def accepts() -> bool:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        proc = self.proc
        if not wait_until(lambda: accepts() or proc.poll() is not None, timeout, 0.05):
            raise RuntimeError(f"mosquitto did not start on port {self.port}")
        if proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"mosquitto exited at start: {tail}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(self.sig)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def mosquitto_version() -> str:
    out = subprocess.run([mosquitto_binary(), "-h"], capture_output=True, text=True, check=False)
    first = (out.stdout or out.stderr).splitlines()[:1]
    return first[0].removeprefix("mosquitto version ").strip() if first else "unknown"


# --- the subscriber ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    event_id: str
    key: Key
    received: float  # unix time
    latency_s: float | None  # received - the event's "time"
    dup: bool  # the broker flagged it as sent again
    stale: bool


class Subscriber:
    """A QoS 1 subscriber with a persistent session (fixed id, clean_session false): the
    broker keeps its subscription and queues what it misses while it reconnects."""

    def __init__(self, port: int) -> None:
        self.deliveries: list[Delivery] = []
        self.connects = 0
        self.sessions_resumed = 0  # reconnects that found the broker still holding the session
        self.disconnects = 0
        self.bad_payloads = 0
        self.last_status: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=SUBSCRIBER_ID,
            clean_session=False,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.port = port

    def start(self) -> None:
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(15):
            raise RuntimeError("the soak's subscriber could not subscribe")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            logger.warning("subscriber: connection refused: %s", rc)
            return
        with self._lock:
            self.connects += 1
            if self.connects > 1 and flags.session_present:
                self.sessions_resumed += 1
        client.subscribe([(topic, 1) for topic in TOPICS])

    def _on_disconnect(self, *_: Any) -> None:
        with self._lock:
            self.disconnects += 1

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.time()
        if msg.topic == TOPICS[1]:
            with contextlib.suppress(ValueError):
                self.last_status = json.loads(msg.payload)
            return
        if msg.topic != EVENTS_TOPIC:
            return
        try:
            event = json.loads(msg.payload)
            key: Key = (str(event["type"]), str(event["person"] or "-"), int(event["track_id"]))
            sent = datetime.fromisoformat(str(event["time"])).timestamp()
            delivery = Delivery(
                str(event["event_id"]),
                key,
                now,
                now - sent,
                bool(msg.dup),
                bool(event.get("stale", False)),
            )
        except (ValueError, KeyError, TypeError):
            with self._lock:
                self.bad_payloads += 1
            return
        with self._lock:
            self.deliveries.append(delivery)

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)


# --- the daemon and what it leaves on disk ----------------------------------------------


@dataclass
class DaemonLog:
    """The daemon's log, read as it grows: the events it raised, and its warnings."""

    path: Path
    events: list[Key] = field(default_factory=list)
    levels: Counter[str] = field(default_factory=Counter)
    messages: Counter[str] = field(default_factory=Counter)  # digits as N
    tracebacks: int = 0
    _offset: int = 0
    _partial: str = ""

    def read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        lines = (self._partial + chunk.decode(errors="replace")).split("\n")
        self._partial = lines.pop()
        for line in lines:
            if m := EVENT_LINE.search(line):
                self.events.append((m.group(1), m.group(2), int(m.group(3))))
            if line.startswith("Traceback"):
                self.tracebacks += 1
            if m := LEVEL.search(line):
                self.levels[m.group(1)] += 1
                self.messages[
                    f"{m.group(1)} {m.group(2)}: {re.sub(r'[0-9]+', 'N', m.group(3))}"
                ] += 1

    def text(self) -> str:
        return self.path.read_text(errors="replace")


@dataclass(frozen=True, slots=True)
class OutboxState:
    rows: int
    written: int  # rows ever written (the AUTOINCREMENT counter)
    dropped: int  # rows dropped because the outbox was full
    waiting: list[Key]


def read_outbox(path: Path, *, closed: bool = False, keys: bool = False) -> OutboxState | None:
    """The outbox, read-only (``closed``: the daemon has exited, read it as immutable)."""
    if not path.exists():
        return None
    uri = f"{path.as_uri()}?{'immutable=1' if closed else 'mode=ro'}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5)
    except sqlite3.Error as exc:
        logger.warning("cannot open the outbox read-only: %s", exc)
        return None
    try:
        rows = int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        dropped = conn.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        waiting: list[Key] = []
        if keys:
            for (payload,) in conn.execute("SELECT payload FROM outbox ORDER BY id"):
                e = json.loads(bytes(payload))
                waiting.append((str(e["type"]), str(e["person"] or "-"), int(e["track_id"])))
        return OutboxState(
            rows, int(seq[0]) if seq else 0, int(dropped[0]) if dropped else 0, waiting
        )
    except sqlite3.Error as exc:
        logger.warning("cannot read the outbox: %s", exc)
        return None
    finally:
        conn.close()


@dataclass(frozen=True, slots=True)
class ProcStats:
    rss_mb: float  # the floor: the lowest of RSS_READS reads
    rss_peak_mb: float  # the highest of them
    threads: int
    fds: int
    cpu_s: float


#: A single VmRSS read flips between two levels about 4 MB apart, about ten times a second
#: (as often as the detector runs: detect_fps 10; measured). RSS is read this
#: many times, RSS_GAP_S apart (spanning more than one such cycle); the floor is what a
#: leak raises, the peak what the Pi must have.
RSS_READS, RSS_GAP_S = 12, 0.025


def _status(pid: int) -> dict[str, str]:
    text = Path(f"/proc/{pid}/status").read_text()
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def proc_stats(pid: int) -> ProcStats:
    rss: list[float] = []
    for i in range(RSS_READS):
        if i:
            time.sleep(RSS_GAP_S)
        fields = _status(pid)
        rss.append(int(fields["VmRSS"].split()[0]) / 1024)
    threads = int(fields["Threads"])
    fds = sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return ProcStats(min(rss), max(rss), threads, fds, cpu)


def daemon_config(
    work: Path, bundle: Path, camera_url: str, broker_port: int, default_cooldowns: bool
) -> str:
    tracking = "" if default_cooldowns else "[tracking]\ncooldown_s = 0\nunknown_cooldown_s = 0\n\n"
    return (
        f'[camera]\nsource = "{camera_url}"\nname = "{CAMERA}"\n\n'
        f'[model]\nbundle = "{bundle}"\n\n'
        f'[gallery]\npath = "{work / "gallery.db"}"\n\n'
        f"{tracking}"
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker_port}\ndevice_id = "{DEVICE_ID}"\n'
        f'outbox = "{work / "outbox.db"}"\n\n'
        '[logging]\nlevel = "INFO"\n'
    )


# --- the figures ------------------------------------------------------------------------


def slope_per_h(samples: list[dict[str, Any]], key: str) -> tuple[float, float]:
    """Least-squares slope of ``key`` per hour over ``samples``, and its 95% half-width
    (1.96 standard errors; the samples are autocorrelated, so read it as a lower bound)."""
    if len(samples) < 3:
        return float("nan"), float("nan")
    t = np.array([s["t"] for s in samples], dtype=float) / 3600.0
    y = np.array([s[key] for s in samples], dtype=float)
    slope, intercept = np.polyfit(t, y, 1)
    resid = y - (slope * t + intercept)
    se = float(np.sqrt(np.sum(resid**2) / (len(t) - 2) / np.sum((t - t.mean()) ** 2)))
    return float(slope), 1.96 * se


def flatness(samples: list[dict[str, Any]], duration: float) -> dict[str, Any]:
    """Flat or not, by stated criteria, over the second half of the run (the first half is
    the warm-up: allocator arenas, caches and the tracker's state fill)."""
    half = [s for s in samples if s["t"] >= duration / 2]
    first = [s for s in samples if s["t"] < duration / 2]
    slope, ci = slope_per_h(half, "rss_mb")
    out: dict[str, Any] = {
        "criterion": (
            f"RSS flat iff the least-squares slope of RSS over the second half of the run "
            f"is within ±{RSS_FLAT_MB_PER_H:g} MB/h (24 MB a day); threads and file "
            "descriptors flat iff their maximum over the second half is no higher than "
            "over the first half (a handle or thread leaked per broker restart or per "
            "event would set a new maximum); outbox flat iff it is empty at the end and "
            "never reached outbox_max"
        ),
        "rss_slope_second_half_mb_per_h": slope,
        "rss_slope_second_half_ci95": ci,
        "samples_second_half": len(half),
    }
    out["rss"] = bool(half) and abs(slope) <= RSS_FLAT_MB_PER_H
    for key in ("threads", "fds"):
        out[key] = bool(half and first) and max(s[key] for s in half) <= max(s[key] for s in first)
    return out


def latency_summary(deliveries: list[Delivery]) -> dict[str, float | None]:
    lat = [d.latency_s for d in deliveries if d.latency_s is not None]
    if not lat:
        return {"p50": None, "p95": None, "max": None}
    p50, p95 = np.percentile(lat, [50, 95])
    return {"p50": float(p50), "p95": float(p95), "max": float(max(lat))}


METHOD = (
    "Produced: the daemon logs every event its tracker raises ('edge.tracker: recognized|"
    "unknown PERSON on soak (track N, ...)') just before the sink writes it to the outbox; "
    "(type, person, track id) is unique within one daemon process (track ids only grow; a "
    "track raises at most one recognized per person and one unknown), so each logged event "
    "is matched to the received payload with the same key. Cross-check: the outbox's "
    "AUTOINCREMENT counter (sqlite_sequence, read-only) counts every row ever written and "
    "must equal the events logged. Delivery: the daemon deletes an outbox row only on the "
    "broker's PUBACK, so until then an event is on the daemon's disk and is resent after "
    "any restart; after the PUBACK it is the broker's. mosquitto therefore runs with "
    "persistence (persistence_file in the run's folder), and the subscriber is QoS 1 with "
    "its own persistent session (fixed client id, clean_session false, MQTT 3.1.1): the "
    "broker keeps its subscription and the messages queued or in flight to it across the "
    "restart, and sessions_resumed counts the reconnects that found the session kept. "
    "Restarts: mosquitto stopped with {signal} ({signal_note}), down {down_s:g} s, started "
    "again on the same port, every {every:g} s. Received: distinct event_id on the events "
    "topic; duplicated = messages received minus distinct event_ids (QoS 1 is at least "
    "once; consumers drop duplicates by event_id). Lost = logged events that neither "
    "arrived nor still wait in the outbox at the end. At the end the restarts stop, the "
    "broker stays up, the soak waits for an empty outbox, sends the daemon SIGTERM (it "
    "flushes for up to 3 s), reads the outbox as immutable, and waits up to "
    f"{DELIVER_S:g} s for the subscriber. Samples: every {{sample_s:g}} s, the daemon "
    "process's VmRSS (rss_mb: the lowest of {reads} reads {gap_ms:g} ms apart, rss_peak_mb the "
    "highest: a single read flips between two levels about 4 MB apart about ten times a "
    "second, as often as the detector runs (detect_fps 10); the floor is what a leak raises), Threads "
    "(/proc/PID/status), entries of /proc/PID/fd, utime+stime, "
    "and the outbox's rows; max_outbox_rows is the maximum of a 1 s poll of the outbox. "
    "The camera: the clip looped as an MJPEG HTTP camera at the clip's frame rate (a live "
    "source: the daemon takes the newest frame), every pass a scene cut; tracking cooldowns "
    "{cooldowns} so that {cooldown_note}."
)
SIGNAL_NOTES = {
    "SIGTERM": "a clean stop, as systemctl restart does; mosquitto writes its database at exit",
    "SIGKILL": "as a crash or power cut of the broker; mosquitto autosaves after every change, "
    "and a message acknowledged to the daemon in the instant before the kill can still be "
    "lost by the broker (not by the daemon)",
}


# --- the run ----------------------------------------------------------------------------


def clean_env(config: Path) -> dict[str, str]:
    """This environment without any EDGE_FACE_* override but the data and cache folders."""
    keep = {"EDGE_FACE_DATA", "EDGE_FACE_CACHE"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_FACE_") or k in keep}
    return {**env, "EDGE_FACE_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}


def enroll(edge_face: str, env: dict[str, str], refs: Path) -> None:
    for name, photo in REFERENCES.items():
        done = subprocess.run(
            [edge_face, "enroll", name, str(refs / photo)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"enroll {name} failed: {done.stderr[-2000:]}")
        logger.info("enrolled %s (%s)", name, photo)


def progress(s: dict[str, Any], logged: int, received: int, restarts: int, up: bool) -> None:
    print(
        f"[{s['t']:6.0f} s] rss {s['rss_mb']:6.1f}-{s['rss_peak_mb']:.1f} MB  threads {s['threads']:3d}  "
        f"fds {s['fds']:3d}  outbox {s['outbox_rows']:3d}  cpu {s['cpu_s']:7.1f} s  "
        f"events logged {logged:5d} received {received:5d}  broker restarts {restarts:3d}"
        f"{'' if up else '  (broker down)'}",
        flush=True,
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = Path(os.environ.get("EDGE_FACE_DATA", REPO.parent / "shared" / "faces"))
    clip = data / CLIP
    if not clip.is_file():
        raise SystemExit(f"the clip is not at {clip}: set EDGE_FACE_DATA")
    bundle = args.bundle.resolve()
    if not (bundle / "manifest.json").is_file():
        raise SystemExit(f"no model bundle at {bundle}: run `make bundle` first")
    edge_face = str(Path(sys.executable).with_name("edge-face"))
    duration = args.minutes * 60.0
    sig = signal.SIGKILL if args.broker_signal == "kill" else signal.SIGTERM
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="edge-face-soak-"))
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"--keep {work}: the folder must be new or empty")
    work.mkdir(parents=True, exist_ok=True)
    logger.info("working folder %s", work)

    frames, fps = encode_clip(clip)
    camera = LoopingMjpegCamera(frames, fps, free_port())
    broker = SoakBroker(work / "broker", free_port(), sig)
    config = work / "config.toml"
    config.write_text(daemon_config(work, bundle, camera.url, broker.port, args.default_cooldowns))
    env = clean_env(config)
    outbox_path = work / "outbox.db"
    log = DaemonLog(work / "daemon.log")
    subscriber = Subscriber(broker.port)
    daemon: subprocess.Popen[bytes] | None = None
    samples: list[dict[str, Any]] = []
    restarts, max_rows, run_s = 0, 0, 0.0
    daemon_rc: int | None = None
    failure: str | None = None
    produced: list[Key] = []
    final: OutboxState | None = None
    waiting: set[Key] = set()
    started = time.time()
    try:
        enroll(edge_face, env, clip.parent / "reference")
        camera.start()
        logger.info(
            "camera %s: %d frames at %.2f fps, looped (%.1f s a pass)",
            camera.url,
            len(frames),
            fps,
            camera.loop_s,
        )
        broker.start()
        subscriber.start()
        logger.info(
            "mosquitto on 127.0.0.1:%d (persistence), subscriber %s", broker.port, SUBSCRIBER_ID
        )
        with log.path.open("wb") as err:
            proc = subprocess.Popen(
                [edge_face, "run"], env=env, stdout=subprocess.DEVNULL, stderr=err
            )
        daemon = proc
        if not wait_until(
            lambda: "running: camera" in log.text() or proc.poll() is not None, READY_S, 0.5
        ):
            raise RuntimeError(f"the daemon did not start within {READY_S:.0f} s")
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited at start: {log.text()[-3000:]}")
        logger.info(
            "daemon pid %d running; soak of %.0f min, broker %s every %.0f s, down %.0f s",
            daemon.pid,
            args.minutes,
            sig.name,
            args.restart_every,
            args.down_s,
        )
        t0 = time.monotonic()
        next_sample, next_poll, next_restart = 0.0, 0.0, args.restart_every
        up_at: float | None = None
        while (now := time.monotonic() - t0) < duration:
            if daemon.poll() is not None:
                failure = f"the daemon exited with {daemon.returncode} at t={now:.0f} s"
                logger.error("%s", failure)
                break
            if up_at is None and now >= next_restart:
                broker.stop()
                restarts += 1
                up_at = now + args.down_s
                next_restart += args.restart_every
            if up_at is not None and now >= up_at:
                broker.start()
                up_at = None
            if now >= next_poll:
                state = read_outbox(outbox_path)
                max_rows = max(max_rows, state.rows if state else 0)
                next_poll += 1.0
            if now >= next_sample:
                st = proc_stats(daemon.pid)
                state = read_outbox(outbox_path)
                rows = state.rows if state else 0
                sample = {
                    "t": round(now, 1),
                    "rss_mb": round(st.rss_mb, 2),
                    "rss_peak_mb": round(st.rss_peak_mb, 2),
                    "threads": st.threads,
                    "fds": st.fds,
                    "outbox_rows": rows,
                    "cpu_s": round(st.cpu_s, 2),
                    "broker_up": broker.up,
                }
                samples.append(sample)
                log.read()
                received = len({d.event_id for d in subscriber.snapshot()})
                progress(sample, len(log.events), received, restarts, broker.up)
                next_sample += args.sample_s
            time.sleep(0.1)
        if not broker.up:
            broker.start()
        run_s = time.monotonic() - t0

        logger.info("restarts stopped; waiting for the outbox to drain")
        drained = failure is None and wait_until(
            lambda: (s := read_outbox(outbox_path)) is not None and s.rows == 0, DRAIN_S, 0.5
        )
        if failure is None and not drained:
            logger.error("the outbox did not drain within %.0f s", DRAIN_S)
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon_rc = daemon.wait(30)
            except subprocess.TimeoutExpired:
                logger.error("the daemon did not stop within 30 s of SIGTERM: killed")
                daemon.kill()
                daemon_rc = daemon.wait(5)
        else:
            daemon_rc = daemon.returncode
        log.read()
        final = read_outbox(outbox_path, closed=True, keys=True)
        produced = list(log.events)
        waiting = set(final.waiting) if final else set()
        wait_until(
            lambda: set(produced) <= {d.key for d in subscriber.snapshot()} | waiting,
            DELIVER_S,
            0.5,
        )
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait(5)
        subscriber.close()
        broker.stop()
        camera.stop()

    deliveries = subscriber.snapshot()
    unique: dict[str, Delivery] = {}
    for d in deliveries:
        unique.setdefault(d.event_id, d)
    received_keys = Counter(d.key for d in unique.values())
    produced_keys = Counter(produced)
    lost = [k for k in produced_keys if k not in received_keys and k not in waiting]
    unexpected = [k for k in received_keys if k not in produced_keys]
    twice_produced = [k for k, n in produced_keys.items() if n > 1]
    flat = flatness(samples, run_s)
    slope_full, _ = slope_per_h(samples, "rss_mb")
    result: dict[str, Any] = {
        "command": shlex.join([".venv/bin/python", "bench/soak.py", *sys.argv[1:]]),
        "machine": report.machine(),
        "versions": {
            **report.edge_versions(),
            "paho-mqtt": report.dist_version("paho-mqtt"),
            "mosquitto": mosquitto_version(),
        },
        "duration_s": round(run_s, 1),
        "wall_s": round(time.time() - started, 1),
        "restart_every_s": args.restart_every,
        "down_s": args.down_s,
        "broker_signal": sig.name,
        "broker_restarts": restarts,
        "samples": samples,
        "events_published": len(produced),
        "events_received": len(unique),
        "messages_received": len(deliveries),
        "lost": len(lost),
        "duplicated": len(deliveries) - len(unique),
        "pending_at_end": final.rows if final else None,
        "outbox_rows_written": final.written if final else None,
        "outbox_dropped": final.dropped if final else None,
        "events_by_type": dict(Counter(k[0] for k in produced)),
        "recognized": dict(Counter(k[1] for k in produced if k[0] == "recognized")),
        "stale_received": sum(d.stale for d in unique.values()),
        "dup_flagged_messages": sum(d.dup for d in deliveries),
        "unexpected_received": len(unexpected),
        "keys_raised_twice": len(twice_produced),
        "lost_events": [list(k) for k in lost[:50]],
        "delivery_latency_s": latency_summary(list(unique.values())),
        "max_outbox_rows": max(max_rows, *(s["outbox_rows"] for s in samples), 0),
        "rss_first_mb": samples[0]["rss_mb"] if samples else None,
        "rss_last_mb": samples[-1]["rss_mb"] if samples else None,
        "rss_max_mb": max((s["rss_mb"] for s in samples), default=None),
        "rss_peak_max_mb": max((s["rss_peak_mb"] for s in samples), default=None),
        "rss_slope_mb_per_h": flat["rss_slope_second_half_mb_per_h"],
        "rss_slope_full_mb_per_h": slope_full,
        "threads_first": samples[0]["threads"] if samples else None,
        "threads_last": samples[-1]["threads"] if samples else None,
        "threads_max": max((s["threads"] for s in samples), default=None),
        "fds_first": samples[0]["fds"] if samples else None,
        "fds_last": samples[-1]["fds"] if samples else None,
        "fds_max": max((s["fds"] for s in samples), default=None),
        "cpu_s_per_s": (samples[-1]["cpu_s"] - samples[0]["cpu_s"])
        / max(1e-9, samples[-1]["t"] - samples[0]["t"])
        if len(samples) > 1
        else None,
        "flat": flat,
        "subscriber": {
            "connects": subscriber.connects,
            "sessions_resumed": subscriber.sessions_resumed,
            "disconnects": subscriber.disconnects,
            "bad_payloads": subscriber.bad_payloads,
        },
        "camera": {
            "clip": str(CLIP),
            "frames": len(frames),
            "fps": round(fps, 3),
            "connections": camera.connections,
            "frames_sent": camera.frames_sent,
        },
        "daemon": {
            "exit_code": daemon_rc,
            "failure": failure,
            "last_status": subscriber.last_status,
            "log_levels": dict(log.levels),
            "tracebacks": log.tracebacks,
            "log_messages": dict(log.messages.most_common(25)),
        },
        "daemon_config": config.read_text(),
        "method": METHOD.format(
            signal=sig.name,
            signal_note=SIGNAL_NOTES[sig.name],
            down_s=args.down_s,
            every=args.restart_every,
            sample_s=args.sample_s,
            reads=RSS_READS,
            gap_ms=RSS_GAP_S * 1000,
            cooldowns="as config.toml's defaults" if args.default_cooldowns else "0",
            cooldown_note="events are as rare as a real door's"
            if args.default_cooldowns
            else "every pass of the clip raises its events (more events to count)",
        ),
    }
    result["flat"]["outbox"] = result["pending_at_end"] == 0 and result["max_outbox_rows"] < 10_000
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        logger.info("kept %s (daemon.log, broker/, outbox.db, config.toml)", work)
    return result


def summary(r: dict[str, Any]) -> str:
    f = r["flat"]

    def yes(ok: bool) -> str:
        return "flat" if ok else "NOT FLAT"

    rows = [
        ["duration", f"{r['duration_s'] / 60:.1f} min"],
        [
            "broker restarts",
            f"{r['broker_restarts']} ({r['broker_signal']}, every {r['restart_every_s']:g} s, down {r['down_s']:g} s)",
        ],
        ["events published (logged)", str(r["events_published"])],
        ["outbox rows written", str(r["outbox_rows_written"])],
        ["events received (distinct ids)", str(r["events_received"])],
        ["lost", str(r["lost"])],
        ["duplicated (extra messages)", str(r["duplicated"])],
        ["pending in the outbox at end", str(r["pending_at_end"])],
        ["stale received", str(r["stale_received"])],
        [
            "delivery latency p50 / p95 / max",
            " / ".join(
                "-" if v is None else f"{v:.2f} s" for v in r["delivery_latency_s"].values()
            ),
        ],
        ["max outbox rows", str(r["max_outbox_rows"])],
        [
            "RSS floor first / last / max",
            f"{r['rss_first_mb']} / {r['rss_last_mb']} / {r['rss_max_mb']} MB",
        ],
        ["RSS peak, max", f"{r['rss_peak_max_mb']} MB"],
        [
            "RSS slope, second half",
            f"{f['rss_slope_second_half_mb_per_h']:+.2f} ± {f['rss_slope_second_half_ci95']:.2f} MB/h: {yes(f['rss'])}",
        ],
        ["RSS slope, whole run", f"{r['rss_slope_full_mb_per_h']:+.2f} MB/h"],
        [
            "threads first / last / max",
            f"{r['threads_first']} / {r['threads_last']} / {r['threads_max']}: {yes(f['threads'])}",
        ],
        [
            "fds first / last / max",
            f"{r['fds_first']} / {r['fds_last']} / {r['fds_max']}: {yes(f['fds'])}",
        ],
        ["outbox", yes(f["outbox"])],
        ["daemon CPU", "-" if r["cpu_s_per_s"] is None else f"{r['cpu_s_per_s']:.3f} s per s"],
        [
            "subscriber sessions resumed",
            f"{r['subscriber']['sessions_resumed']} of {r['subscriber']['connects'] - 1} reconnects",
        ],
    ]
    return report.render(["soak", "value"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--restart-every", type=float, default=180.0, help="seconds")
    parser.add_argument("--down-s", type=float, default=10.0, help="broker down per restart")
    parser.add_argument("--broker-signal", choices=["term", "kill"], default="term")
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--bundle", type=Path, default=REPO / "build" / "bundle-sface")
    parser.add_argument(
        "--default-cooldowns",
        action="store_true",
        help="keep config.toml's cooldowns (default: 0, more events)",
    )
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--keep", help="work in this folder and keep it (logs, outbox, broker)")
    args = parser.parse_args()
    if args.down_s >= args.restart_every:
        parser.error("--down-s must be shorter than --restart-every")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    result = run(args)
    report.write_result(args.out, report.rounded(result, 4))
    print(summary(result))
    problems = []
    if result["daemon"]["failure"] is not None:
        problems.append(result["daemon"]["failure"])
    if result["lost"]:
        problems.append(f"{result['lost']} events lost: {result['lost_events']}")
    if result["outbox_rows_written"] != result["events_published"]:  # the log's format changed?
        problems.append(
            f"the daemon logged {result['events_published']} events but wrote "
            f"{result['outbox_rows_written']} outbox rows: the counts cannot be trusted"
        )
    if result["unexpected_received"]:
        problems.append(f"{result['unexpected_received']} events received that were not logged")
    for problem in problems:
        logger.error("%s", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
