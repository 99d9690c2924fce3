"""The clips the benchmarks run, decoded once to .npy (RGB, (N, H, W, 3)) in
build/bench-cache/ so that every worker reads the same pixels, and the clip's gallery.

- ``hamilton``: videos/hamilton/short_hamilton_clip.mp4 (640x360, 29.97 fps, 275 frames:
  three shots, Lin-Manuel Miranda, an audience, Barack Obama);
- ``street``: videos/street/video.mp4 (1920x1080, 25 fps, 105 frames, pedestrians nobody
  enrolled, 3 to 6 faces a frame);
- ``idle``: a static scene built from the street clip: the per-pixel median of its frames
  (the people walk out of it), at 640x360, repeated for 12 s at 25 fps with fresh sensor
  noise on every frame (Gaussian, sigma 2 grey levels, seeded), as a camera watching an
  empty hall delivers it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import peers
import report_data

from model_export import splits

HAMILTON = Path("videos") / "hamilton" / "short_hamilton_clip.mp4"
STREET = Path("videos") / "street" / "video.mp4"
IDLE_SIZE = (640, 360)
IDLE_FPS = 25.0
IDLE_FRAMES = 300
IDLE_NOISE = 2.0


def _decode(video: Path, out: Path) -> tuple[Path, float]:
    import cv2

    capture = cv2.VideoCapture(str(video))
    fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0
    if out.is_file():
        capture.release()
        return out, fps
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise SystemExit(f"{video}: no frames could be decoded")
    peers.CACHE.mkdir(parents=True, exist_ok=True)
    part = out.with_suffix(".part.npy")
    np.save(part, np.stack(frames))
    part.replace(out)
    return out, fps


def hamilton(root: Path) -> tuple[Path, float]:
    """The Hamilton clip's frames (cached) and its frame rate."""
    return _decode(root / HAMILTON, peers.CACHE / "hamilton-rgb.npy")


def street(root: Path) -> tuple[Path, float]:
    return _decode(root / STREET, peers.CACHE / "street-rgb.npy")


def idle(root: Path) -> tuple[Path, float]:
    """The static scene (see the module's docstring), cached."""
    import cv2

    out = peers.CACHE / f"idle-{IDLE_SIZE[0]}x{IDLE_SIZE[1]}-{IDLE_FRAMES}.npy"
    if out.is_file():
        return out, IDLE_FPS
    frames = np.load(street(root)[0], mmap_mode="r")
    background = np.median(np.asarray(frames), axis=0).astype(np.uint8)
    still = cv2.resize(background, IDLE_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
    rng = np.random.default_rng(23)
    clip = np.empty((IDLE_FRAMES, IDLE_SIZE[1], IDLE_SIZE[0], 3), np.uint8)
    for i in range(IDLE_FRAMES):
        noisy = still + rng.normal(0.0, IDLE_NOISE, still.shape).astype(np.float32)
        clip[i] = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    part = out.with_suffix(".part.npy")
    np.save(part, clip)
    part.replace(out)
    return out, IDLE_FPS


def gallery(root: Path, s: splits.Splits, distractors: int) -> Path:
    """The clip's three people and ``distractors`` LFW report people, one photo each:
    a JSON list of [name, photo] for the workers."""
    refs = root / "videos" / "hamilton" / "reference"
    people = [
        ["Lin-Manuel Miranda", str(refs / "lin-manuel-miranda.png")],
        ["Alex Lacamoire", str(refs / "alex-lacamoire.png")],
        ["Barack Obama", str(refs / "obama.jpg")],
    ]
    others = report_data.clip_distractors(root, s, distractors)
    people += [[f"lfw:{p.parent.name}", str(p)] for p in others]
    peers.CACHE.mkdir(parents=True, exist_ok=True)
    out = peers.CACHE / f"clip-gallery-{distractors}.json"
    out.write_text(json.dumps(people))
    return out
