"""The fault suite's laboratory (bench/faults.py): real parts, started and watched.

- a private mosquitto (tests/integration/broker.py ``Broker``) and a real paho subscriber
  at QoS 1 that stamps every message with its arrival time (``TimedListener``);
- an IP camera that plays the Hamilton clip in a loop as MJPEG over HTTP
  (``LoopCamera``, tests/integration/mjpeg.py's ``MjpegCamera`` with its ``stall()`` and
  ``resume()``), which can also send garbage instead of JPEGs;
- the real daemon, ``edge-face run``, as a subprocess configured through its
  ``EDGE_FACE_*`` environment (``Daemon``), its log kept per start;
- counting: events produced (the tracker's log line of each event) against events
  delivered (unique ``event_id`` at the subscriber), lost and duplicated (``tally``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

import broker as mq  # noqa: E402  (tests/integration/broker.py: Broker, Listener, Proxy)
import mjpeg  # noqa: E402  (tests/integration/mjpeg.py: MjpegCamera)

logger = logging.getLogger("faults")

DEVICE = "faults"
CAMERA = "door"
TOPIC = f"edge-face/{DEVICE}"
EVENTS, STATUS, AVAILABILITY = f"{TOPIC}/events", f"{TOPIC}/status", f"{TOPIC}/availability"
HAMILTON = Path("videos") / "hamilton" / "short_hamilton_clip.mp4"
REFERENCES = {
    "Lin-Manuel Miranda": "lin-manuel-miranda.png",
    "Alex Lacamoire": "alex-lacamoire.png",
    "Barack Obama": "obama.jpg",
}
SERVE_FPS = 15.0  # the looped camera's frame rate (the clip's 29.97 fps, every other frame)
#: the tracker's line for every event it makes (edge/tracker.py ``_event``)
PRODUCED = re.compile(
    r"INFO edge\.tracker: (recognized|unknown) (.*?) on " + CAMERA + r" \(track (\d+), (\d+) frames"
)


STAMPED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (.*)$", re.M)


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    return mq.wait_until(predicate, timeout, step)


def free_port() -> int:
    return mq.free_port()


# --- the subscriber ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arrival:
    topic: str
    payload: bytes
    retain: bool
    dup: bool
    t: float  # time.monotonic() at arrival
    wall: float  # time.time() at arrival


class TimedListener(mq.Listener):
    """broker.py's real paho subscriber (QoS 1), every message stamped on arrival."""

    def __init__(self, broker: mq.Broker, **kwargs: Any) -> None:
        self.arrivals: list[Arrival] = []
        super().__init__(broker, [f"{TOPIC}/#"], **kwargs)

    def _on_message(self, _c: Any, _u: object, msg: Any) -> None:
        arrival = Arrival(
            msg.topic,
            bytes(msg.payload),
            bool(msg.retain),
            bool(msg.dup),
            time.monotonic(),
            time.time(),
        )
        with self._lock:
            self.arrivals.append(arrival)

    def on_topic(self, topic: str) -> list[Arrival]:
        with self._lock:
            return [a for a in self.arrivals if a.topic == topic]

    def events(self) -> list[tuple[Arrival, dict[str, Any]]]:
        return [(a, json.loads(a.payload)) for a in self.on_topic(EVENTS)]

    def statuses(self) -> list[tuple[float, dict[str, Any]]]:
        return [(a.t, json.loads(a.payload)) for a in self.on_topic(STATUS)]

    def first_event_after(self, t: float) -> float | None:
        """Seconds from ``t`` to the first event that arrived after it (None: none did)."""
        later = [a.t for a in self.on_topic(EVENTS) if a.t >= t]
        return round(min(later) - t, 2) if later else None

    def first_status_after(self, t: float, key: str, value: object) -> float | None:
        """Seconds from ``t`` to the first status after it with ``key == value``."""
        later = [s for s, p in self.statuses() if s >= t and p.get(key) == value]
        return round(min(later) - t, 2) if later else None

    def latest_status(self) -> dict[str, Any]:
        found = self.statuses()
        return found[-1][1] if found else {}


# --- the camera --------------------------------------------------------------------------


def clip_jpegs(data: Path, every: int = 2) -> list[bytes]:
    """The Hamilton clip's frames as JPEGs, every ``every``-th (29.97 fps -> 15 fps)."""
    capture = cv2.VideoCapture(str(data / HAMILTON))
    out: list[bytes] = []
    index = 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        if index % every == 0:
            done, jpeg = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if done:
                out.append(jpeg.tobytes())
        index += 1
    capture.release()
    if not out:
        raise SystemExit(f"{data / HAMILTON}: no frames could be decoded")
    return out


class LoopCamera(mjpeg.MjpegCamera):
    """The clip in a loop on one shared timeline (a reconnecting client joins where the
    picture is), served as MJPEG; ``stall()``/``resume()``/``stop()`` are MjpegCamera's.
    With ``garbage`` set, every frame is garbage instead: random bytes, a JPEG header
    followed by random bytes, a truncated JPEG or a JPEG with a damaged middle."""

    def __init__(
        self, jpegs: list[bytes], port: int, fps: float = SERVE_FPS, seed: int = 29
    ) -> None:
        first = cv2.imdecode(np.frombuffer(jpegs[0], np.uint8), cv2.IMREAD_COLOR)
        super().__init__(first, port, fps)
        self.jpegs, self.fps = jpegs, fps
        self.garbage = False
        self.sent = Counter[str]()
        self._rng = np.random.default_rng(seed)
        self._t0 = time.monotonic()

    def rewind(self) -> None:
        """The clip starts again from its first frame now."""
        self._t0 = time.monotonic()

    def frame(self) -> bytes:
        if self.garbage:
            return self._garbage()
        self.sent["jpeg"] += 1
        return self.jpegs[int((time.monotonic() - self._t0) * self.fps) % len(self.jpegs)]

    def _garbage(self) -> bytes:
        rng = self._rng
        good = self.jpegs[int(rng.integers(len(self.jpegs)))]
        kind = ("random", "header+random", "truncated", "damaged")[int(rng.integers(4))]
        self.sent[kind] += 1
        if kind == "random":
            return rng.bytes(len(good))
        if kind == "header+random":
            return b"\xff\xd8\xff\xe0" + rng.bytes(len(good) - 4)
        if kind == "truncated":
            return good[: len(good) * int(rng.integers(10, 70)) // 100]
        damaged = bytearray(good)
        start = int(rng.integers(len(good) // 4, len(good) // 2))
        damaged[start : start + 2000] = rng.bytes(2000)
        return bytes(damaged)

    def start(self) -> None:
        camera = self
        self._stopped.clear()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not camera._stopped.is_set():
                        camera._flowing.wait()
                        data = camera.frame()  # one snapshot: length and body agree
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(f"Content-Length: {len(data)}\r\n\r\n".encode())
                        self.wfile.write(data + b"\r\n")
                        time.sleep(camera.period)
                except OSError:
                    return
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()


# --- the daemon --------------------------------------------------------------------------


@dataclass
class Daemon:
    """``edge-face run`` as a subprocess; every start gets a log of its own."""

    env: dict[str, str]
    workdir: Path
    name: str
    logs: list[Path] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0

    def start(self) -> None:
        log = self.workdir / f"{self.name}-{len(self.logs) + 1}.log"
        self.logs.append(log)
        exe = str(Path(sys.executable).with_name("edge-face"))
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                [exe, "run"], env=self.env, stdout=subprocess.DEVNULL, stderr=err
            )
        self.started = time.monotonic()
        RUNNING.add(self.proc)

    def text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs if p.is_file())

    def last_text(self) -> str:
        return self.logs[-1].read_text(errors="replace") if self.logs else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_running(self, timeout: float = 90.0) -> bool:
        """Until the daemon logged that it runs (model, gallery, camera, broker wait done)."""
        return (
            wait_until(lambda: "running: camera" in self.last_text() or not self.alive(), timeout)
            and self.alive()
        )

    def terminate(self, timeout: float = 20.0) -> tuple[int | None, float]:
        """SIGTERM; the exit status and how long the stop took (None: killed after timeout)."""
        if self.proc is None:
            return None, 0.0
        began = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc: int | None = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        RUNNING.discard(self.proc)
        took = round(time.monotonic() - began, 2)
        fatal = "FATAL: exception not rethrown" in self.last_text()
        STOPS.append(
            {
                "fault": self.workdir.name,
                "log": self.logs[-1].name,
                "status": rc,
                "seconds": took,
                "fatal": fatal,
            }
        )
        return rc, took

    def kill9(self) -> None:
        """The power cut: SIGKILL, no clean-up of any kind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        if self.proc is not None:
            RUNNING.discard(self.proc)

    def produced(self) -> list[tuple[str, str | None, int, int]]:
        """The events the daemon made (the tracker's log line of each), over every start."""
        return [
            (m[1], None if m[2] == "-" else m[2], int(m[3]), int(m[4]))
            for m in PRODUCED.finditer(self.text())
        ]

    def seconds_to_running(self, start: int) -> float | None:
        """From the first log line of start number ``start`` (1-based) to its "running"
        line: model, gallery, camera and the wait for the broker."""
        if start > len(self.logs) or not self.logs[start - 1].is_file():
            return None
        stamps = [
            (datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp(), m[2])
            for m in STAMPED.finditer(self.logs[start - 1].read_text(errors="replace"))
        ]
        running = [t for t, text in stamps if "running: camera" in text]
        return round(running[0] - stamps[0][0], 1) if stamps and running else None

    def count(self, text: str) -> int:
        return self.text().count(text)


#: every SIGTERM stop of a daemon in the run: fault, log, exit status, seconds
STOPS: list[dict[str, Any]] = []

#: every daemon and helper process started and not yet reaped (killed at the end)
RUNNING: set[subprocess.Popen[bytes]] = set()


def kill_leftovers() -> None:
    for proc in list(RUNNING):
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        RUNNING.discard(proc)


def daemon_env(
    bundle: Path, gallery: Path, outbox: Path, port: int, camera: str, **extra: str
) -> dict[str, str]:
    """The daemon's configuration (no config file; every key through EDGE_FACE_*): events
    without cooldowns (every encounter of the loop is an event), status every second,
    keep-alive 5 s, no Home Assistant discovery."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EDGE_FACE_") and k != "JOURNAL_STREAM"
    }
    return {
        **env,
        "EDGE_FACE_CONFIG": "",
        "EDGE_FACE_MODEL_BUNDLE": str(bundle),
        "EDGE_FACE_GALLERY_PATH": str(gallery),
        "EDGE_FACE_MQTT_OUTBOX": str(outbox),
        "EDGE_FACE_MQTT_HOST": mq.HOST,
        "EDGE_FACE_MQTT_PORT": str(port),
        "EDGE_FACE_MQTT_DEVICE_ID": DEVICE,
        "EDGE_FACE_CAMERA_SOURCE": camera,
        "EDGE_FACE_CAMERA_NAME": CAMERA,
        "EDGE_FACE_MQTT_KEEPALIVE": "5",
        "EDGE_FACE_MQTT_STATUS_INTERVAL_S": "1",
        "EDGE_FACE_MQTT_DISCOVERY": "false",
        "EDGE_FACE_TRACKING_COOLDOWN_S": "0",
        "EDGE_FACE_TRACKING_UNKNOWN_COOLDOWN_S": "0",
        "OMP_NUM_THREADS": "1",
        **extra,
    }


# --- counting ----------------------------------------------------------------------------


def tally(daemon: Daemon, listener: TimedListener) -> dict[str, Any]:
    """Produced (the daemon's log), delivered (unique event ids at the subscriber), lost
    (produced and never delivered, matched by type, person, track and frames), duplicated
    (deliveries beyond the first of an id), and deliveries matching no produced event."""
    produced = Counter(daemon.produced())
    arrivals = listener.events()
    first: dict[str, tuple[str, str | None, int, int]] = {}
    for _a, e in arrivals:
        first.setdefault(
            str(e["event_id"]), (e["type"], e["person"], int(e["track_id"]), int(e["frames"]))
        )
    delivered = Counter(first.values())
    return {
        "produced": sum(produced.values()),
        "delivered": len(first),
        "lost": sum((produced - delivered).values()),
        "duplicated": len(arrivals) - len(first),
        "unmatched": sum((delivered - produced).values()),
    }


def outbox_ids(path: Path) -> tuple[list[str], str]:
    """The event ids waiting in an outbox file (the daemon stopped), and its integrity check."""
    conn = sqlite3.connect(path)
    try:
        check = str(conn.execute("PRAGMA integrity_check").fetchone()[0])
        ids = [
            str(json.loads(bytes(p))["event_id"])
            for (p,) in conn.execute("SELECT payload FROM outbox ORDER BY id")
        ]
    finally:
        conn.close()
    return ids, check


def copy_db(src: Path, dst: Path) -> Path:
    """A consistent copy of an SQLite file (``VACUUM INTO``), switched to WAL as edge's own
    files are (a ``VACUUM INTO`` copy starts in rollback-journal mode)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.unlink(missing_ok=True)
    conn = sqlite3.connect(src)
    try:
        conn.execute("VACUUM INTO ?", (str(dst),))
    finally:
        conn.close()
    conn = sqlite3.connect(dst)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    return dst


def cli(
    env: dict[str, str], *args: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """One ``edge-face`` verb, its output captured."""
    exe = str(Path(sys.executable).with_name("edge-face"))
    return subprocess.run(
        [exe, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def mosquitto_version() -> str | None:
    try:
        out = subprocess.run(
            [mq.mosquitto_binary(), "-h"], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    first = (out.stdout or out.stderr).splitlines()
    return first[0].replace("mosquitto version ", "") if first else None


def which(name: str) -> str | None:
    return shutil.which(name)


# --- one fault's result ------------------------------------------------------------------


@dataclass
class Row:
    """One fault: what was done, what was expected, what was measured."""

    key: str
    fault: str
    injection: str
    expected: str
    produced: int | None = None
    delivered: int | None = None
    lost: int | None = None
    duplicated: int | None = None
    recover_s: float | None = None
    recover_what: str = ""
    checks: list[tuple[str, bool]] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)  # what a failure shows, in words
    seconds: float = 0.0
    error: str | None = None

    def check(self, what: str, ok: bool) -> bool:
        self.checks.append((what, bool(ok)))
        logger.info("  %s %s", "ok  " if ok else "FAIL", what)
        return ok

    def finding(self, text: str) -> None:
        self.findings.append(text)
        logger.info("  finding: %s", text)

    def note(self, text: str) -> None:
        self.details.append(text)
        logger.info("  %s", text)

    def counts(self, numbers: dict[str, Any]) -> None:
        for key in ("produced", "delivered", "lost", "duplicated"):
            setattr(self, key, numbers[key])
        self.note(
            f"events: {numbers['produced']} produced, {numbers['delivered']} delivered, "
            f"{numbers['lost']} lost, {numbers['duplicated']} duplicated"
        )
        self.check("no event lost", numbers["lost"] == 0)
        self.check("no delivery that the daemon never produced", numbers["unmatched"] == 0)

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.checks) and all(ok for _, ok in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "fault": self.fault,
            "injection": self.injection,
            "expected": self.expected,
            "produced": self.produced,
            "delivered": self.delivered,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "recover_s": self.recover_s,
            "recover_what": self.recover_what,
            "passed": self.passed,
            "checks": [{"check": c, "ok": ok} for c, ok in self.checks],
            "details": self.details,
            "findings": self.findings,
            "seconds": round(self.seconds, 1),
            "error": self.error,
        }


# --- the laboratory ----------------------------------------------------------------------


@dataclass
class Lab:
    """What every fault shares: the work folder, the bundle, the enrolled gallery (read
    only by the daemons; faults that damage it take a copy) and the clip's JPEGs."""

    root: Path
    data: Path
    bundle: Path
    gallery: Path
    jpegs: list[bytes]
    people: dict[str, int]  # enrolled: name -> embeddings

    def dir(self, name: str) -> Path:
        path = self.root / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def env(
        self, outbox: Path, port: int, camera: str, gallery: Path | None = None, **extra: str
    ) -> dict[str, str]:
        return daemon_env(self.bundle, gallery or self.gallery, outbox, port, camera, **extra)

    def cli_env(
        self, gallery: Path | None = None, bundle: Path | None = None, **extra: str
    ) -> dict[str, str]:
        return daemon_env(
            bundle or self.bundle,
            gallery or self.gallery,
            self.root / "unused-outbox.db",
            1883,
            "http://127.0.0.1:9/none",
            **extra,
        )


#: further people in the gallery beside the clip's three (one photo each; the clip's own
#: people, who are in these sets too, are left out)
DISTRACTORS = ("photos/ageitgey/knn_examples/train", "photos/timesler/test_images")
SAME_AS_CLIP = {"alex_lacamoire", "obama"}


def make_lab(root: Path, data: Path, bundle: Path) -> Lab:
    """Enroll the clip's three people (their reference photos) and the small photo sets'
    people through edge.enroll, the library ``edge-face enroll`` calls."""
    from edge.bundle import load_bundle
    from edge.engine import load_engine
    from edge.enroll import enroll_photos
    from edge.gallery import Gallery

    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    engine = load_engine(load_bundle(bundle))
    path = root / "gallery.db"
    refs = data / HAMILTON.parent / "reference"
    with Gallery(path) as g:
        for name, photo in REFERENCES.items():
            if not enroll_photos(g, engine, name, [refs / photo]).stored:
                raise SystemExit(f"cannot enroll {name} from {refs / photo}")
        for folder in DISTRACTORS:
            for person in sorted(p for p in (data / folder).iterdir() if p.is_dir()):
                if person.name in SAME_AS_CLIP:
                    continue
                photos = sorted(person.glob("*.jp*g"))[:1]
                if photos:
                    enroll_photos(g, engine, f"photo:{person.name}", photos)
        people = {p.name: p.embeddings for p in g.people()}
    logger.info("gallery: %d people enrolled (%s)", len(people), path)
    jpegs = clip_jpegs(data)
    logger.info(
        "camera clip: %d frames at %.0f fps, %.1f s a loop",
        len(jpegs),
        SERVE_FPS,
        len(jpegs) / SERVE_FPS,
    )
    return Lab(root, data, bundle, path, jpegs, people)
