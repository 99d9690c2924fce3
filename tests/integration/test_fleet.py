"""A fleet of three daemons with their own gallery files on one real mosquitto (issue 24):
an enrollment on device 1 reaches device 2 and device 3 (started after it: it catches up
from the broker's retained states), and device 3 then names the person on the Hamilton
clip; a removal on device 2 takes the person's name and embedding bytes out of every
gallery file (device 3 is off meanwhile and catches up) and out of the broker's retained
messages; a publisher without the fleet key changes nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from broker import Broker, Listener, Proxy, free_port, publish_once, wait_until
from mjpeg import MjpegCamera

from edge.fleet_codec import Change, Embedding, Version, encode, person_key

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KEY = "fleet-secret-for-the-test-0123456789"
NAME = "Lin-Manuel Miranda"
ROOT = "edge-face/fleet/home/gallery"


@pytest.fixture
def camera() -> Iterator[MjpegCamera]:
    cam = MjpegCamera(
        np.random.default_rng(2).integers(0, 255, (120, 160, 3), np.uint8), free_port()
    )
    cam.start()
    yield cam
    cam.stop()


def device_env(n: int, tmp_path: Path, broker: Broker, bundle: Path, source: str) -> dict[str, str]:
    home = tmp_path / f"dev{n}"
    home.mkdir(exist_ok=True)
    (tmp_path / "fleet.key").write_text(KEY + "\n")
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EDGE_FACE_") or k == "EDGE_FACE_DATA"
    }
    return keep | {
        "EDGE_FACE_CONFIG": "", "EDGE_FACE_MODEL_BUNDLE": str(bundle),
        "EDGE_FACE_GALLERY_PATH": str(home / "gallery.db"), "EDGE_FACE_MQTT_OUTBOX": str(home / "outbox.db"),
        "EDGE_FACE_MQTT_HOST": broker.host, "EDGE_FACE_MQTT_PORT": str(broker.port),
        "EDGE_FACE_MQTT_DEVICE_ID": f"dev{n}",
        "EDGE_FACE_CAMERA_SOURCE": source, "EDGE_FACE_FLEET_ENABLED": "true",
        "EDGE_FACE_FLEET_KEY_FILE": str(tmp_path / "fleet.key"),
    }  # fmt: skip


def edge_face(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip


class Daemon:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc = subprocess.Popen([sys.executable, "-m", "edge", "run"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=log.open("ab"))  # fmt: skip

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(20) == 0, self.log.read_text()[-3000:]


def people(env: dict[str, str]) -> list[str]:
    out = edge_face(env, "people", "--json")
    assert out.returncode == 0, out.stderr
    return [p["name"] for p in json.loads(out.stdout)]


def test_three_devices_share_one_gallery_through_the_broker(
    tmp_path: Path, broker: Broker, camera: MjpegCamera, bundle_dir: Path, face_data: Path
) -> None:
    envs = {n: device_env(n, tmp_path, broker, bundle_dir, camera.url) for n in (1, 2, 3)}
    logs = {n: tmp_path / f"dev{n}.log" for n in (1, 2, 3)}
    daemons = {n: Daemon(envs[n], logs[n]) for n in (1, 2)}
    try:
        assert wait_until(lambda: all("fleet home" in logs[n].read_text() for n in (1, 2)), 30)
        photo = face_data / "videos" / "hamilton" / "reference" / "lin-manuel-miranda.png"
        enrolled = edge_face(envs[1], "enroll", NAME, str(photo))
        assert enrolled.returncode == 0, enrolled.stderr
        assert wait_until(lambda: people(envs[2]) == [NAME], 20), logs[2].read_text()[-3000:]

        def in_step() -> bool:  # `edge-face fleet status`: both seen, neither behind
            out = edge_face(envs[1], "fleet", "status", "--json", "--wait", "0.5")
            report = json.loads(out.stdout)
            seen = {d["device"]: (d["lag"], d["pending"], d["people"]) for d in report["devices"]}
            return out.returncode == 0 and seen == {"dev1": (0, 0, 1), "dev2": (0, 0, 1)}

        assert wait_until(in_step, 20, 0.5), edge_face(envs[1], "fleet", "status").stdout

        daemons[3] = Daemon(envs[3], logs[3])  # started after the enrollment: catches up
        assert wait_until(lambda: people(envs[3]) == [NAME], 20), logs[3].read_text()[-3000:]
        daemons.pop(3).stop()
        clip = face_data / "videos" / "hamilton" / "short_hamilton_clip.mp4"
        on_clip = edge_face(envs[3] | {"EDGE_FACE_CAMERA_SOURCE": str(clip)}, "run")
        assert f"recognized {NAME}" in on_clip.stderr, on_clip.stderr[-3000:]
        # Home Assistant: one "last seen" sensor for the person, on the fleet's device,
        # its state where device 3 saw them
        ha = Listener(broker, ["homeassistant/sensor/#", "edge-face/fleet/home/seen/#"])
        key = person_key(KEY.encode(), NAME)
        sensor = f"homeassistant/sensor/edge_face_home_{key}/last_seen/config"
        assert wait_until(
            lambda: ha.payloads(sensor) and ha.payloads(f"edge-face/fleet/home/seen/{key}"), 10
        )
        config = json.loads(ha.payloads(sensor)[-1])
        assert (
            config["name"] == f"{NAME} last seen"
            and config["device"]["name"] == "edge-face fleet home"
        )
        seen = json.loads(ha.payloads(f"edge-face/fleet/home/seen/{key}")[-1])
        assert (
            seen["person"] == NAME and seen["device"] == "dev3" and seen["where"] == "dev3 camera"
        )
        ha.close()

        with sqlite3.connect(tmp_path / "dev1" / "gallery.db") as conn:
            vector = conn.execute("SELECT vector FROM embeddings").fetchone()[0]
        removed = edge_face(envs[2], "remove", NAME, "--yes")  # on another device
        assert removed.returncode == 0, removed.stderr
        assert wait_until(lambda: people(envs[1]) == [], 20), logs[1].read_text()[-3000:]
        daemons[3] = Daemon(envs[3], logs[3])  # was off during the removal
        assert wait_until(lambda: people(envs[3]) == [], 20), logs[3].read_text()[-3000:]
        for n in (1, 2, 3):
            data = b"".join(p.read_bytes() for p in (tmp_path / f"dev{n}").glob("gallery.db*"))
            assert NAME.encode() not in data and vector not in data, f"device {n}"
        retained = Listener(broker, ["edge-face/fleet/#", "homeassistant/#"])
        assert wait_until(lambda: len(retained.on(f"{ROOT}/{key}")) >= 1, 5)
        wire = b"".join(m.payload for m in retained.messages)
        assert NAME.encode() not in wire and b"embeddings" not in wire  # a tombstone only
        for topic in (sensor, f"edge-face/fleet/home/seen/{key}"):  # their last word: cleared
            assert wait_until(
                lambda t=topic: [m.payload for m in retained.on(t)][-1:] in ([], [b""]), 5
            )
        retained.close()

        forged = Change(person_key(KEY.encode(), "Mallory"), Version(99, "evil"), "put", "Mallory",
                        "x", (Embedding(np.ones(128, np.float32), "x", 1.0),))  # fmt: skip
        topic = f"{ROOT}/{forged.key}"
        publish_once(
            broker, topic, encode(forged, b"not-the-fleet-key-0123456789", topic), retain=True
        )
        assert wait_until(
            lambda: all("refused a message" in logs[n].read_text() for n in (1, 2, 3)), 10
        )
        assert all(people(envs[n]) == [] for n in (1, 2, 3))
    finally:
        for d in daemons.values():
            d.stop()


def test_two_sites_joined_by_a_bridge_converge_once_it_is_back(
    tmp_path: Path, camera: MjpegCamera, bundle_dir: Path, face_data: Path
) -> None:
    """Site A and site B, each its own mosquitto, joined by a mosquitto bridge (B to A,
    through a TCP relay that can cut it). With the bridge down, device 1 (site A) enrolls
    a person and device 2 (site B) removes another; once the bridge is back both sites
    hold the same gallery."""
    site_a = Broker(tmp_path / "site-a")
    site_a.start()
    relay = Proxy(site_a)
    site_b = Broker(tmp_path / "site-b")
    bridge = ["connection site-a", f"address {site_a.host}:{relay.port}",
              "topic edge-face/fleet/# both 1", "cleansession false", "restart_timeout 1 2",
              "keepalive_interval 5", "bridge_protocol_version mqttv311"]  # fmt: skip
    site_b.conf.write_text(site_b.conf.read_text() + "\n".join(bridge) + "\n")
    site_b.start()
    envs = {1: device_env(1, tmp_path, site_a, bundle_dir, camera.url),
            2: device_env(2, tmp_path, site_b, bundle_dir, camera.url)}  # fmt: skip
    logs = {n: tmp_path / f"dev{n}.log" for n in (1, 2)}
    daemons = {n: Daemon(envs[n], logs[n]) for n in (1, 2)}
    refs = face_data / "videos" / "hamilton" / "reference"
    try:
        assert (
            edge_face(
                envs[1], "enroll", "Alex Lacamoire", str(refs / "alex-lacamoire.png")
            ).returncode
            == 0
        )
        assert wait_until(lambda: people(envs[2]) == ["Alex Lacamoire"], 30), (
            tmp_path / "site-b" / "mosquitto.log"
        ).read_text()[-2000:]
        relay.cut()  # the link between the sites goes down
        assert (
            edge_face(envs[1], "enroll", NAME, str(refs / "lin-manuel-miranda.png")).returncode == 0
        )
        assert edge_face(envs[2], "remove", "Alex Lacamoire", "--yes").returncode == 0
        assert wait_until(lambda: people(envs[1]) == ["Alex Lacamoire", NAME], 10)
        assert not wait_until(lambda: NAME in people(envs[2]), 3)  # not across the cut
        relay.resume()
        assert wait_until(lambda: people(envs[1]) == people(envs[2]) == [NAME], 30), (
            people(envs[1]),
            people(envs[2]),
            logs[2].read_text()[-2000:],
        )
    finally:
        for d in daemons.values():
            d.stop()
        site_b.stop()
        relay.cut()
        site_a.stop()
