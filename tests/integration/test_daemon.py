"""The daemon end to end: real bundle, real gallery, real mosquitto, real videos."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from broker import Broker, Listener, wait_until

from edge.bundle import load_bundle
from edge.engine import load_engine
from edge.enroll import enroll_photos
from edge.gallery import Gallery
from model_export.calibration import select

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REFERENCES = {"Lin-Manuel Miranda": "lin-manuel-miranda.png", "Alex Lacamoire": "alex-lacamoire.png",
              "Barack Obama": "obama.jpg"}  # fmt: skip


@pytest.fixture(scope="module")
def gallery_file(
    bundle_dir: Path, face_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The three Hamilton people and 50 LFW distractors."""
    path = tmp_path_factory.mktemp("gallery") / "gallery.db"
    engine = load_engine(load_bundle(bundle_dir))
    refs = face_data / "videos" / "hamilton" / "reference"
    with Gallery(path) as g:
        for name, photo in REFERENCES.items():
            assert enroll_photos(g, engine, name, [refs / photo]).stored == 1
        enrolled = 0
        for photo in select(face_data / "lfw", {"Barack_Obama"}, 120):
            if (
                enrolled < 50
                and enroll_photos(g, engine, f"lfw:{photo.parent.name}", [photo]).stored
            ):
                enrolled += 1
        assert enrolled == 50
    return path


def daemon_env(
    bundle_dir: Path,
    gallery: Path,
    broker: Broker,
    source: Path | str,
    tmp_path: Path,
    **extra: str,
) -> dict[str, str]:
    return {**os.environ, "EDGE_FACE_CONFIG": "", "EDGE_FACE_MODEL_BUNDLE": str(bundle_dir),
            "EDGE_FACE_GALLERY_PATH": str(gallery), "EDGE_FACE_MQTT_OUTBOX": str(tmp_path / "outbox.db"),
            "EDGE_FACE_MQTT_PORT": str(broker.port), "EDGE_FACE_MQTT_HOST": broker.host,
            "EDGE_FACE_MQTT_DEVICE_ID": "test", "EDGE_FACE_CAMERA_SOURCE": str(source),
            "EDGE_FACE_CAMERA_NAME": "clip", "EDGE_FACE_MQTT_KEEPALIVE": "5", **extra}  # fmt: skip


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "edge", "run"], env=env, stdout=subprocess.DEVNULL,
                            stderr=log.open("wb"))  # fmt: skip


def events(listener: Listener) -> list[dict[str, object]]:
    found = [m for m in listener.messages if m.topic == "edge-face/test/events"]
    assert all(m.qos == 1 and not m.retain for m in found)
    return [json.loads(m.payload) for m in found]


def test_hamilton_clip_names_lin_manuel_and_no_distractor(bundle_dir: Path, gallery_file: Path, broker: Broker,
                                                          face_data: Path, tmp_path: Path) -> None:  # fmt: skip
    """With crops and sightings on: each event names its sighting, its face goes alone to
    the face topic, and discovery announces Home Assistant's image entity of it."""
    clip = face_data / "videos" / "hamilton" / "short_hamilton_clip.mp4"
    listener = Listener(broker, ["edge-face/test/#", "homeassistant/#"])
    env = daemon_env(bundle_dir, gallery_file, broker, clip, tmp_path, EDGE_FACE_MQTT_INCLUDE_CROP="true",
                     EDGE_FACE_SIGHTINGS_ENABLED="true",
                     EDGE_FACE_SIGHTINGS_PATH=str(tmp_path / "sightings.db"))  # fmt: skip
    proc = start(env, tmp_path / "daemon.log")
    assert proc.wait(180) == 0, (tmp_path / "daemon.log").read_text()[-3000:]
    assert wait_until(
        lambda: listener.payloads("edge-face/test/availability")[-1:] == [b"offline"], 5
    )
    got = events(listener)
    faces = listener.payloads("edge-face/test/face")
    assert [base64.b64decode(f) for f in faces] == [base64.b64decode(str(e["crop"])) for e in got]
    assert all(base64.b64decode(f)[:2] == b"\xff\xd8" for f in faces) and faces
    ids = [e["sighting_id"] for e in got]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == len(ids)
    image = json.loads(listener.payloads("homeassistant/image/test/last_face/config")[-1])
    assert image["image_topic"] == "edge-face/test/face"
    recognized = [e for e in got if e["type"] == "recognized"]
    assert "Lin-Manuel Miranda" in {e["person"] for e in recognized}
    assert not [e for e in recognized if str(e["person"]).startswith("lfw:")]
    per_track = Counter((e["person"], e["track_id"]) for e in recognized)
    assert max(per_track.values()) == 1
    assert len({e["event_id"] for e in got}) == len(got)
    status = json.loads(listener.payloads("edge-face/test/status")[-1])
    assert status["gallery_size"] == 53 and status["faces_seen"] > 0
    listener.close()


def test_street_strangers_are_not_named(bundle_dir: Path, gallery_file: Path, broker: Broker, face_data: Path,
                                        tmp_path: Path) -> None:  # fmt: skip
    video = face_data / "videos" / "street" / "video.mp4"
    listener = Listener(broker, ["edge-face/test/#"])
    proc = start(
        daemon_env(bundle_dir, gallery_file, broker, video, tmp_path), tmp_path / "daemon.log"
    )
    assert proc.wait(180) == 0, (tmp_path / "daemon.log").read_text()[-3000:]
    time.sleep(0.5)
    assert [e for e in events(listener) if e["type"] == "recognized"] == []
    listener.close()


def test_sigterm_stops_cleanly_and_kill_9_leaves_the_last_will(bundle_dir: Path, gallery_file: Path,
                                                                broker: Broker, face_data: Path, tmp_path: Path) -> None:  # fmt: skip
    clip = face_data / "videos" / "hamilton" / "short_hamilton_clip.mp4"
    env = daemon_env(bundle_dir, gallery_file, broker, clip, tmp_path, EDGE_FACE_CAMERA_MAX_FPS="3")
    availability = "edge-face/test/availability"
    listener = Listener(broker, [availability])
    proc = start(env, tmp_path / "a.log")
    assert wait_until(lambda: b"online" in listener.payloads(availability), 60)
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert time.monotonic() - began < 5
    assert listener.payloads(availability)[-1] == b"offline"

    proc = start(env, tmp_path / "b.log")
    assert wait_until(lambda: listener.payloads(availability)[-1:] == [b"online"], 60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert wait_until(
        lambda: listener.payloads(availability)[-1:] == [b"offline"], 15
    )  # keepalive 5 s x 1.5
    listener.close()


def test_broker_down_for_ten_seconds_loses_nothing(bundle_dir: Path, gallery_file: Path, broker: Broker,
                                                   face_data: Path, tmp_path: Path) -> None:  # fmt: skip
    clip = face_data / "videos" / "hamilton" / "short_hamilton_clip.mp4"
    env = daemon_env(bundle_dir, gallery_file, broker, clip, tmp_path, EDGE_FACE_CAMERA_MAX_FPS="15",
                     EDGE_FACE_TRACKING_COOLDOWN_S="0", EDGE_FACE_TRACKING_UNKNOWN_COOLDOWN_S="0")  # fmt: skip
    listener = Listener(
        broker, ["edge-face/test/events"], client_id="outage-listener", clean_session=False
    )
    log = tmp_path / "daemon.log"
    proc = start(env, log)
    assert wait_until(lambda: len(listener.messages) >= 1, 60)
    broker.stop()
    time.sleep(10)
    broker.start()
    assert proc.wait(180) == 0, log.read_text()[-3000:]
    produced = [ln for ln in log.read_text().splitlines() if "edge.tracker:" in ln and " on clip (track" in ln
                and "within cooldown" not in ln]  # fmt: skip
    assert wait_until(lambda: len(listener.messages) >= len(produced), 20)
    ids = [json.loads(m.payload)["event_id"] for m in listener.messages]
    assert len(ids) == len(set(ids)) == len(produced) >= 3
    times = [json.loads(m.payload)["time"] for m in listener.messages]
    assert times == sorted(times)  # in order
    listener.close()


def test_a_damaged_gallery_row_is_logged_and_the_run_goes_on(bundle_dir: Path, gallery_file: Path, broker: Broker,
                                                             face_data: Path, tmp_path: Path) -> None:  # fmt: skip
    damaged = tmp_path / "gallery.db"
    with Gallery(gallery_file) as g:
        g.conn.execute(f"VACUUM INTO '{damaged}'")
    with Gallery(damaged) as g:
        g.conn.execute("UPDATE embeddings SET vector = X'0102' WHERE id = 2")
    clip = face_data / "videos" / "hamilton" / "short_hamilton_clip.mp4"
    log = tmp_path / "daemon.log"
    proc = start(daemon_env(bundle_dir, damaged, broker, clip, tmp_path), log)
    assert proc.wait(180) == 0
    text = log.read_text()
    assert "is damaged and was skipped" in text and "stopped after 275 frames" in text


def test_enrolling_while_running_reloads_the_gallery(bundle_dir: Path, gallery_file: Path, broker: Broker,
                                                     face_data: Path, tmp_path: Path) -> None:  # fmt: skip
    gallery = tmp_path / "gallery.db"
    with Gallery(gallery_file) as g:
        g.conn.execute(f"VACUUM INTO '{gallery}'")
    clip = face_data / "videos" / "hamilton" / "short_hamilton_clip.mp4"
    log = tmp_path / "daemon.log"
    proc = start(
        daemon_env(bundle_dir, gallery, broker, clip, tmp_path, EDGE_FACE_CAMERA_MAX_FPS="5"), log
    )
    assert wait_until(lambda: "gallery: 53 person(s)" in log.read_text(), 60)
    engine = load_engine(load_bundle(bundle_dir))
    with Gallery(gallery) as g:  # what `edge-face enroll` does, from another process
        assert enroll_photos(
            g, engine, "Colin Powell", [face_data / "lfw/Colin_Powell/Colin_Powell_0001.jpg"]
        ).stored
    assert wait_until(lambda: "gallery: 54 person(s)" in log.read_text(), 10)
    proc.send_signal(signal.SIGHUP)  # also re-reads on SIGHUP
    assert wait_until(lambda: log.read_text().count("gallery: 54 person(s)") >= 2, 10)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_a_stream_camera_that_vanishes_and_returns(bundle_dir: Path, gallery_file: Path, broker: Broker,
                                                   face_data: Path, tmp_path: Path) -> None:  # fmt: skip
    from broker import free_port
    from mjpeg import MjpegCamera

    from edge.images import read_image

    photo = cv2.cvtColor(
        read_image(face_data / "videos/hamilton/reference/obama.jpg"), cv2.COLOR_RGB2BGR
    )
    camera = MjpegCamera(photo, free_port())
    camera.start()
    log = tmp_path / "daemon.log"
    proc = start(daemon_env(bundle_dir, gallery_file, broker, camera.url, tmp_path), log)
    try:
        assert wait_until(lambda: "running: camera" in log.read_text(), 60)
        time.sleep(2)
        camera.stop()
        assert wait_until(lambda: "gives no frames: reconnecting" in log.read_text(), 30)
        time.sleep(3)
        camera.start()
        assert wait_until(lambda: "is back" in log.read_text(), 30), log.read_text()[-2000:]
        time.sleep(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        camera.stop()
    text = log.read_text()
    assert text.count("gives no frames") == 1 and "recognized Barack Obama" in text


def test_a_camera_that_is_not_up_yet_keeps_the_daemon_running(bundle_dir: Path, gallery_file: Path,
                                                               broker: Broker, tmp_path: Path) -> None:  # fmt: skip
    """An IP camera that boots slower than the Pi: the daemon stays up, online, says
    camera_ok false, never logs the camera's password, and stops at once on SIGTERM."""
    from broker import free_port

    camera = f"http://admin:secret@127.0.0.1:{free_port()}/video"  # nothing listens there
    listener = Listener(broker, ["edge-face/test/#"])
    log = tmp_path / "daemon.log"
    env = daemon_env(bundle_dir, gallery_file, broker, Path("unused"), tmp_path,
                     EDGE_FACE_CAMERA_SOURCE=camera, EDGE_FACE_MQTT_STATUS_INTERVAL_S="1")  # fmt: skip
    proc = start(env, log)

    def camera_down() -> bool:
        return any(
            not json.loads(p)["camera_ok"] for p in listener.payloads("edge-face/test/status")
        )

    assert wait_until(camera_down, 60), log.read_text()[-3000:]
    assert proc.poll() is None and listener.payloads("edge-face/test/availability")[-1] == b"online"
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert time.monotonic() - began < 5
    text = log.read_text()
    assert "not available yet" in text and "admin:***@127.0.0.1" in text
    assert "secret" not in text
    listener.close()


def test_a_stalled_stream_is_noticed_and_never_holds_up_a_stop(bundle_dir: Path, gallery_file: Path,
                                                                broker: Broker, face_data: Path,
                                                                tmp_path: Path) -> None:  # fmt: skip
    """A camera that keeps the connection open and sends nothing: within a few seconds the
    status says camera_ok false and the daemon reconnects; SIGTERM during the stall stops
    it within the unit's 15 s (here: 5 s); when frames flow again the camera is back."""
    from broker import free_port
    from mjpeg import MjpegCamera

    camera = MjpegCamera(np.full((240, 320, 3), 90, np.uint8), free_port())
    camera.start()
    listener = Listener(broker, ["edge-face/test/#"])
    log = tmp_path / "daemon.log"
    env = daemon_env(bundle_dir, gallery_file, broker, camera.url, tmp_path,
                     EDGE_FACE_MQTT_STATUS_INTERVAL_S="1")  # fmt: skip
    proc = start(env, log)

    def camera_ok() -> list[bool]:
        return [json.loads(p)["camera_ok"] for p in listener.payloads("edge-face/test/status")]

    try:
        assert wait_until(lambda: True in camera_ok(), 60), log.read_text()[-2000:]
        camera.stall()
        stalled = time.monotonic()
        assert wait_until(lambda: camera_ok()[-1] is False, 20), log.read_text()[-2000:]
        assert time.monotonic() - stalled < 12  # not FFmpeg's 30 s
        camera.resume()
        assert wait_until(lambda: "is back" in log.read_text(), 30), log.read_text()[-2000:]
        camera.stall()
        time.sleep(2)  # a read is waiting on the stalled stream
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert time.monotonic() - began < 5
    finally:
        if proc.poll() is None:
            proc.kill()
        camera.stop()
        listener.close()


def test_a_broker_down_at_start_holds_up_no_frame(bundle_dir: Path, gallery_file: Path, broker: Broker,
                                                  face_data: Path, tmp_path: Path) -> None:  # fmt: skip
    """The broker is not there when the daemon starts: frames are processed at once (no
    wait for it), the event waits in the outbox and is delivered when the broker comes."""
    from broker import Proxy, free_port
    from mjpeg import MjpegCamera

    from edge.images import read_image

    photo = cv2.cvtColor(
        read_image(face_data / "videos/hamilton/reference/obama.jpg"), cv2.COLOR_RGB2BGR
    )
    camera = MjpegCamera(photo, free_port())
    camera.start()
    proxy = Proxy(broker)  # the daemon's way to the broker: closed until the broker "comes"
    proxy.cut()
    listener = Listener(broker, ["edge-face/test/#"])
    log = tmp_path / "daemon.log"
    env = daemon_env(bundle_dir, gallery_file, broker, camera.url, tmp_path,
                     EDGE_FACE_MQTT_PORT=str(proxy.port))  # fmt: skip
    proc = start(env, log)
    try:
        assert wait_until(lambda: "cannot reach the MQTT broker" in log.read_text(), 60)
        down = time.monotonic()
        assert wait_until(lambda: "recognized Barack Obama" in log.read_text(), 30), (
            log.read_text()[-2000:]
        )
        assert time.monotonic() - down < 6, "frames waited for the broker"
        assert events(listener) == []
        proxy.resume()
        assert wait_until(lambda: any(e["person"] == "Barack Obama" for e in events(listener)), 40)
        assert wait_until(lambda: listener.payloads("edge-face/test/status"), 5)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        camera.stop()
        proxy.cut()
        listener.close()
    assert "not reachable yet" not in log.read_text()
