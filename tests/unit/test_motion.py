"""The motion gate (edge/motion.py) and detection zones (edge/zones.py), alone and in the
pipeline on fakes: a static scene runs the detector once, motion wakes it, a cut ends
every track, a face outside the zones is not followed."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import ENCODER, FakeClock, FakeEngine, FakeFace, FakeGallery, ListSink

from edge.config import ConfigError, parse_config
from edge.decision import Policy
from edge.motion import MotionGate, MotionSettings
from edge.pipeline import Pipeline
from edge.tracker import Tracker, TrackerSettings
from edge.types import BBox, Frame
from edge.zones import in_zones, inside

RNG = np.random.default_rng(7)
# a picture of 20x20-pixel patches of random colour (a room at low detail)
SCENE = np.kron(RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8), np.ones((20, 20, 1), np.uint8))


def noisy(image: np.ndarray, level: int = 6) -> np.ndarray:
    """The same picture with a camera's pixel noise."""
    noise = RNG.integers(-level, level + 1, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype(np.uint8)


def with_square(image: np.ndarray, x: int, side: int = 40) -> np.ndarray:
    out = image.copy()
    out[100 : 100 + side, x : x + side] = 255
    return out


def test_a_still_scene_with_noise_is_still_and_a_moving_square_is_not() -> None:
    gate = MotionGate()
    assert gate.look(SCENE) == "moving"  # the first frame: nothing to compare with
    gate.detected()
    assert all(gate.look(noisy(SCENE)) == "still" for _ in range(20))
    assert gate.look(with_square(SCENE, 50)) == "moving"


def test_slow_change_adds_up_against_the_last_detected_frame() -> None:
    gate = MotionGate(MotionSettings(pixel_delta=20))
    gate.look(SCENE)
    gate.detected()
    verdicts = []
    for step in range(1, 8):  # brighter by 4 grey levels a frame: never 20 in one step
        verdicts.append(gate.look(np.clip(SCENE.astype(int) + 4 * step, 0, 255).astype(np.uint8)))
    assert verdicts[0] == "still" and "moving" in verdicts


def test_a_cut_is_most_of_the_picture_changing_at_once() -> None:
    gate = MotionGate()
    gate.look(SCENE)
    assert gate.look(255 - SCENE) == "cut"
    assert gate.look(255 - SCENE) == "still"  # the cut frame is the new reference
    assert gate.look(SCENE[:200]) == "cut"  # another frame size is another camera


def test_motion_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        MotionSettings(moving_share=0)
    with pytest.raises(ValueError):
        MotionSettings(width=4)
    with pytest.raises(ValueError):
        MotionSettings(cut_histogram=0)


def pipeline(
    engine: FakeEngine,
    zones: list[list[tuple[float, float]]] | None = None,
    detect_fps: float = 0.0,
) -> tuple[Pipeline, ListSink]:
    policy = Policy("euclidean", verify_tau=0.6, identify_tau=0.5, min_face=40, min_sharpness=10.0)
    sink = ListSink()
    tracker = Tracker(TrackerSettings(k=3, n=5, unknown_after=4), "door")
    return Pipeline(engine, FakeGallery({"Alice": [(0.0, 0.0)]}), policy, ENCODER, tracker, sink,
                    clock=FakeClock(), motion=MotionSettings(), zones=zones or [],
                    detect_fps=detect_fps), sink  # fmt: skip


def test_a_static_sequence_runs_no_detector_after_the_first_frame() -> None:
    engine = FakeEngine()
    engine.width = 320
    p, _ = pipeline(engine)
    for i in range(30):
        p.process(Frame(noisy(SCENE), i, 100 + i / 25, "door"))
    assert engine.calls["detect"] == 1
    assert p.stats.detector_runs == 1 and p.stats.skipped == 29


def test_motion_wakes_the_detector_and_a_live_track_keeps_it_awake() -> None:
    engine = FakeEngine()
    engine.width = 320
    p, sink = pipeline(engine)
    p.process(Frame(SCENE, 0, 100.0, "door"))
    face = FakeFace(BBox(40, 20, 100, 80), (0.0, 0.0))
    engine.add(face)  # someone walks in ...
    p.process(Frame(with_square(SCENE, 60), 1, 100.04, "door"))
    for i in range(2, 12):  # ... and stands still: the track keeps the detector running
        engine.add(face)
        p.process(Frame(with_square(SCENE, 60), i, 100 + i / 25, "door"))
    assert engine.calls["detect"] == 12
    assert [e.person for e in sink.events] == ["Alice"]


def test_detect_fps_spaces_detections_and_the_frames_between_keep_their_tracks() -> None:
    engine = FakeEngine()
    engine.width = 320
    p, sink = pipeline(engine, detect_fps=10)
    face = FakeFace(BBox(40, 20, 100, 80), (0.0, 0.0))
    for i in range(50):  # two seconds at 25 frames a second, someone standing in view
        engine.add(face)
        p.process(Frame(with_square(SCENE, 60), i, 100 + i / 25, "door"))
    assert engine.calls["detect"] == 17  # every 0.12 s: 25 / 3 a second
    assert p.stats.detector_runs == 17 and p.stats.skipped == 33
    assert p.tracker.started() == 1  # one track throughout: skipped frames miss nothing
    assert [e.person for e in sink.events] == ["Alice"]


def test_a_clock_set_back_or_a_cut_detects_at_once() -> None:
    engine = FakeEngine()
    engine.width = 320
    p, _ = pipeline(engine, detect_fps=1)
    face = FakeFace(BBox(40, 20, 100, 80), (0.0, 0.0))
    stamps = [100.0, 100.1, 50.0, 50.1]  # the camera's clock was set back after 0.1 s
    for i, t in enumerate(stamps):
        engine.add(face)
        p.process(Frame(with_square(SCENE, 60), i, t, "door"))
    assert p.stats.detector_runs == 2
    engine.add(face)
    p.process(Frame(255 - SCENE, 4, 50.2, "door"))  # a cut, 0.2 s after the last detection
    assert p.stats.detector_runs == 3


def test_a_cut_ends_the_tracks() -> None:
    engine = FakeEngine()
    engine.width = 320
    p, _ = pipeline(engine)
    face = FakeFace(BBox(40, 20, 100, 80), (0.0, 0.0))
    for i, image in enumerate([SCENE, with_square(SCENE, 60), 255 - SCENE]):
        engine.add(face)
        p.process(Frame(image, i, 100 + i / 25, "door"))
    assert p.tracker.started() == 2  # the same box after the cut is a new track


def test_zones_keep_faces_whose_centre_is_inside() -> None:
    square = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]
    triangle = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]
    assert inside(0.25, 0.5, square) and not inside(0.75, 0.5, square)
    assert inside(0.2, 0.2, triangle) and not inside(0.8, 0.8, triangle)
    left, right = BBox(10, 10, 50, 50), BBox(200, 10, 260, 50)
    assert in_zones(left, [square], 320, 240) and not in_zones(right, [square], 320, 240)
    assert in_zones(right, [], 320, 240)  # no zones: everywhere
    assert in_zones(right, [square, [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0)]], 320, 240)


def test_a_face_outside_the_zones_is_not_followed() -> None:
    engine = FakeEngine()
    engine.width = 320
    p, _ = pipeline(engine, zones=[[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]])
    engine.add(
        FakeFace(BBox(200, 20, 260, 80), (0.0, 0.0)), FakeFace(BBox(20, 20, 80, 80), (0.0, 0.0))
    )
    p.process(Frame(SCENE, 0, 100.0, "door"))
    assert p.tracker.tracks() == 1 and engine.calls["embed"] == 1


def test_zones_in_the_config_are_checked() -> None:
    config = parse_config("[camera]\nzones = [[[0, 0], [0.5, 0], [0.5, 1]]]\n", env={})
    assert config.camera.zones == [[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0)]]
    with pytest.raises(ConfigError, match="zone 1: expected at least 3"):
        parse_config("[camera]\nzones = [[[0, 0], [1, 1]]]\n", env={})
    with pytest.raises(ConfigError, match="outside the frame"):
        parse_config("[camera]\nzones = [[[0, 0], [640, 0], [0, 480]]]\n", env={})


def test_detect_fps_detects_at_the_interval_less_its_slack_and_not_twice_at_one_time() -> None:
    """At 4 detections a second: a frame 0.245 s (0.25 less the 5 ms slack) after the last
    detection is detected; one with the same frame time as it is not."""
    engine = FakeEngine()
    engine.width = 320
    p, _ = pipeline(engine, detect_fps=4)
    face = FakeFace(BBox(40, 20, 100, 80), (0.0, 0.0))
    for i, t in enumerate([0.0, 0.0, 0.245]):
        engine.add(face)
        p.process(Frame(with_square(SCENE, 60), i, t, "door"))
    assert (p.stats.detector_runs, p.stats.skipped) == (2, 1)


def test_the_pipelines_motion_gate_takes_the_configured_settings() -> None:
    policy = Policy("euclidean", verify_tau=0.6, identify_tau=0.5)
    tracker = Tracker(TrackerSettings(), "door")
    tuned = MotionSettings(width=64, pixel_delta=30, moving_share=0.01)
    p = Pipeline(FakeEngine(), FakeGallery({"Alice": [(0.0, 0.0)]}), policy, ENCODER, tracker,
                 ListSink(), clock=FakeClock(), motion=tuned)  # fmt: skip
    assert p.motion is not None and p.motion.settings == tuned
