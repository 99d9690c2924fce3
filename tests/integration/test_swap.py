"""Issue 23's swap, on real photos through the real daemon (SFace bundle, SQLite gallery,
mosquitto): 15 frames of an enrolled person, 5 empty frames, then 30 frames of a stranger
in the same place. Box overlap alone would carry the name on; the identity re-check must
give ``recognized`` and then ``unknown``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from broker import Broker, Listener, wait_until

from edge.bundle import load_bundle
from edge.engine import load_engine
from edge.enroll import enroll_photos
from edge.gallery import Gallery

pytestmark = [pytest.mark.integration, pytest.mark.slow]
# calibrate people of LFW (data/splits.json): the enrolled one has two photos
ENROLLED, STRANGER = "Guido_Westerwelle", "Abel_Aguilar"


def face(photo: Path) -> np.ndarray:
    """The middle 170x170 of an LFW photo (250x250): its face, without a neighbour's."""
    return cv2.imread(str(photo))[40:210, 40:210]


def scene(photo: Path | None) -> np.ndarray:
    """A 640x480 grey room with the face always at the same place."""
    canvas = np.full((480, 640, 3), 110, np.uint8)
    if photo is not None:
        canvas[150:320, 235:405] = face(photo)
    return canvas


def test_a_stranger_in_an_enrolled_persons_place_is_unknown(
    sface_bundle_dir: Path, face_data: Path, broker: Broker, tmp_path: Path
) -> None:
    lfw = face_data / "lfw"
    enrolled = sorted((lfw / ENROLLED).glob("*.jpg"))
    stranger = sorted((lfw / STRANGER).glob("*.jpg"))[0]
    gallery, portrait = tmp_path / "gallery.db", tmp_path / "portrait.png"
    assert cv2.imwrite(str(portrait), face(enrolled[0]))
    with Gallery(gallery) as g:
        assert enroll_photos(g, load_engine(load_bundle(sface_bundle_dir)), ENROLLED.replace("_", " "),
                             [portrait]).stored == 1  # fmt: skip
    frames = tmp_path / "frames"
    frames.mkdir()
    sequence = [enrolled[1]] * 15 + [None] * 5 + [stranger] * 30
    for i, photo in enumerate(sequence):
        assert cv2.imwrite(str(frames / f"{i:03d}.png"), scene(photo))
    listener = Listener(broker, ["edge-face/test/events"])
    env = {**os.environ, "EDGE_FACE_CONFIG": "", "EDGE_FACE_MODEL_BUNDLE": str(sface_bundle_dir),
           "EDGE_FACE_GALLERY_PATH": str(gallery), "EDGE_FACE_MQTT_OUTBOX": str(tmp_path / "outbox.db"),
           "EDGE_FACE_MQTT_PORT": str(broker.port), "EDGE_FACE_MQTT_HOST": broker.host,
           "EDGE_FACE_MQTT_DEVICE_ID": "test", "EDGE_FACE_CAMERA_SOURCE": str(frames)}  # fmt: skip
    log = tmp_path / "daemon.log"
    proc = subprocess.run([sys.executable, "-m", "edge", "run"], env=env, stdout=subprocess.DEVNULL,
                          stderr=log.open("wb"), timeout=180)  # fmt: skip
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert wait_until(lambda: len(listener.messages) >= 2, 5), (
        listener.messages,
        log.read_text()[-3000:],
    )
    got = [json.loads(m.payload) for m in listener.messages]
    assert [(e["type"], e["person"]) for e in got] == [
        ("recognized", "Guido Westerwelle"),
        ("unknown", None),
    ]
    assert got[0]["track_id"] != got[1]["track_id"]
    assert "no longer shows Guido Westerwelle" in log.read_text()
