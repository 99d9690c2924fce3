"""The demo (``make demo``): the Hamilton clip through the daemon, events printed as an
MQTT subscriber (Home Assistant, Node-RED) would receive them.

Enrolls the three reference people of ``videos/hamilton/reference/`` into a fresh demo
gallery, starts a private mosquitto on a free port, runs ``edge-face run`` on the clip and
prints every message it publishes.

``--bundle DIR`` picks the model bundle: by default the SFace bundle of ``make bundle``
(build/bundle-sface); ``make demo-device`` gives the committed models/edge-face-dlib-cut,
which needs no TensorFlow and no build.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "build" / "demo"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_broker(port: int) -> subprocess.Popen[bytes]:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    conf = DEMO / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    sys.exit("mosquitto did not start (is it installed? sudo apt-get install mosquitto)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "build" / "bundle-sface",
                        help="model bundle folder (default build/bundle-sface)")  # fmt: skip
    args = parser.parse_args()
    bundle = args.bundle.resolve()
    if not (bundle / "manifest.json").is_file():
        print(f"no model bundle at {bundle}: run `make bundle`, or `make demo-device` to use "
              "the committed models/edge-face-dlib-cut", file=sys.stderr)  # fmt: skip
        return 2
    data = Path(os.environ.get("EDGE_FACE_DATA", REPO.parent / "shared" / "faces"))
    clip = data / "videos" / "hamilton" / "short_hamilton_clip.mp4"
    if not clip.is_file():
        print(
            f"face data not found at {data}: set EDGE_FACE_DATA to the folder with videos/hamilton/",
            file=sys.stderr,
        )
        return 2
    shutil.rmtree(DEMO, ignore_errors=True)
    DEMO.mkdir(parents=True)
    port = free_port()
    env = {**os.environ, "EDGE_FACE_CONFIG": str(REPO / "config.toml"),
           "EDGE_FACE_MODEL_BUNDLE": str(bundle),
           "EDGE_FACE_GALLERY_PATH": str(DEMO / "gallery.db"), "EDGE_FACE_MQTT_OUTBOX": str(DEMO / "outbox.db"),
           "EDGE_FACE_MQTT_PORT": str(port), "EDGE_FACE_MQTT_DEVICE_ID": "demo",
           "EDGE_FACE_CAMERA_SOURCE": str(clip), "EDGE_FACE_CAMERA_NAME": "hamilton-clip"}  # fmt: skip
    edge_face = str(Path(sys.executable).with_name("edge-face"))
    refs = {
        "Lin-Manuel Miranda": "lin-manuel-miranda.png",
        "Alex Lacamoire": "alex-lacamoire.png",
        "Barack Obama": "obama.jpg",
    }
    for name, photo in refs.items():
        subprocess.run(
            [edge_face, "enroll", name, str(clip.parent / "reference" / photo)], env=env, check=True
        )
    broker = start_broker(port)
    received: list[dict[str, object]] = []

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/events"):
            event = json.loads(msg.payload)
            received.append(event)
            who = event["person"] or "an unknown person"
            print(f"  EVENT {event['type']:<10} {who:<20} distance {event['distance']}  track {event['track_id']}  "
                  f"frames {event['frames']}  at {event['time']}")  # fmt: skip
        elif msg.topic.endswith("/availability"):
            print(f"  availability: {msg.payload.decode()}")

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe("edge-face/demo/#", qos=1)
    sub.loop_start()
    print(f"broker on 127.0.0.1:{port}; running the daemon on {clip.name} with {bundle.name} ...")
    try:
        with tempfile.TemporaryFile() as log:
            rc = subprocess.run([edge_face, "run"], env=env, stderr=log).returncode
            if rc != 0:
                log.seek(0)
                print(log.read().decode()[-3000:], file=sys.stderr)
        time.sleep(0.5)
    finally:
        sub.loop_stop()
        broker.terminate()
        broker.wait()
    names = sorted({str(e["person"]) for e in received if e["type"] == "recognized"})
    print(f"done: {len(received)} events; recognized: {', '.join(names) or 'nobody'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
