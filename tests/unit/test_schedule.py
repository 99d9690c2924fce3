"""The encoder schedule (edge/schedule.py) on its own and in the pipeline on fakes (a
fake clock and a fake encoder that counts its calls): a decided track is not embedded
again, a better view is, the budget is honoured; and the swap of one face for another in
the same place."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import ENCODER, FakeClock, FakeEngine, FakeFace, FakeGallery, ListSink

from edge.decision import FaceQuality, Policy
from edge.pipeline import Pipeline
from edge.schedule import EmbedSchedule, ScheduleSettings, View, better
from edge.tracker import Tracker, TrackerSettings
from edge.types import BBox, Frame

Q = FaceQuality(60.0, 100.0, 0.1)


def view(track: int, state: str, q: FaceQuality = Q, regained: bool = False) -> View:
    return View(track, q, state, regained)  # type: ignore[arg-type]


def test_better_means_larger_or_sharper_or_more_frontal_without_shrinking() -> None:
    assert better(FaceQuality(75, 100, 0.1), Q)  # 25% larger
    assert not better(FaceQuality(70, 100, 0.1), Q)
    assert better(FaceQuality(60, 150, 0.1), Q)  # half as sharp again
    assert not better(FaceQuality(60, 140, 0.1), Q)
    assert better(FaceQuality(50, 100, -0.05), FaceQuality(60, 100, 0.2))  # 0.15 more frontal
    assert not better(FaceQuality(50, 100, 0.06), FaceQuality(60, 100, 0.2))
    assert not better(FaceQuality(40, 1000, 0.0), Q)  # sharper and frontal but much smaller


def test_a_new_track_is_embedded_then_only_every_recheck_until_decided() -> None:
    s = EmbedSchedule(ScheduleSettings(max_embeds_per_s=0, recheck_s=0.5, identity_check_s=3))
    assert s.pick([view(1, "new")], 10.0) == [0]
    s.embedded(view(1, "new"), 10.0)
    assert s.pick([view(1, "undecided")], 10.2) == []
    assert s.pick([view(1, "undecided")], 10.5) == [0]
    s.embedded(view(1, "undecided"), 10.5)
    assert s.pick([view(1, "doubt")], 10.6) == []
    assert s.pick([view(1, "doubt")], 11.0) == [0]


def test_a_decided_track_is_not_embedded_again_before_its_identity_check() -> None:
    s = EmbedSchedule(ScheduleSettings(max_embeds_per_s=0, recheck_s=0.1, identity_check_s=3))
    s.embedded(view(1, "new"), 10.0)
    big = FaceQuality(120, 500, 0.0)  # a much better view changes nothing for a named track
    assert all(s.pick([view(1, "recognized", big)], 10.0 + t) == [] for t in (0.1, 1, 2.9))
    assert s.pick([view(1, "recognized")], 13.0) == [0]
    assert s.pick([view(1, "recognized", regained=True)], 10.5) == [0]  # after a gap


def test_an_unknown_track_is_re_checked_every_unknown_check() -> None:
    s = EmbedSchedule(ScheduleSettings(max_embeds_per_s=0, unknown_check_s=0.5, identity_check_s=3))
    s.embedded(view(1, "new"), 10.0)
    assert s.pick([view(1, "unknown")], 10.4) == []
    assert s.pick([view(1, "unknown")], 10.5) == [0]


def test_a_better_view_is_embedded_at_once_while_undecided_or_unknown() -> None:
    s = EmbedSchedule(ScheduleSettings(max_embeds_per_s=0, recheck_s=1, unknown_check_s=10))
    s.embedded(view(1, "new"), 10.0)
    assert s.pick([view(1, "undecided", FaceQuality(80, 100, 0.1))], 10.05) == [0]
    s.embedded(view(1, "undecided", FaceQuality(80, 100, 0.1)), 10.05)
    # what must be beaten now is the best of both views
    assert s.pick([view(1, "unknown", FaceQuality(90, 100, 0.1))], 10.1) == []
    assert s.pick([view(1, "unknown", FaceQuality(100, 100, 0.1))], 10.1) == [0]


def test_the_budget_goes_to_undecided_tracks_then_to_the_largest_faces() -> None:
    s = EmbedSchedule(ScheduleSettings(max_embeds_per_s=2, recheck_s=0, identity_check_s=0))
    for track in (1, 2, 3):
        s.embedded(view(track, "new"), 0.0)
    views = [view(1, "recognized", FaceQuality(200, 100, 0)), view(2, "undecided"),
             view(3, "recognized", FaceQuality(300, 100, 0)), view(4, "new", FaceQuality(50, 100, 0))]  # fmt: skip
    assert s.pick(views, 5.0) == [1, 3]  # the bucket holds 2: the undecided, largest first
    assert s.pick(views, 5.0) == []  # spent
    assert s.pick(views, 5.5) == [1]  # half a second later: one more


def test_the_budget_holds_over_a_long_run() -> None:
    s = EmbedSchedule(ScheduleSettings(max_embeds_per_s=3, recheck_s=0))
    granted = 0
    for i in range(300):  # 10 s at 30 frames/s, five undecided faces in each
        now = i / 30
        picked = s.pick([view(t, "undecided") for t in range(5)], now)
        granted += len(picked)
    assert 30 <= granted <= 3 * 10 + 3  # the rate, plus the bucket it started with


def test_off_or_unlimited_embeds_every_face() -> None:
    off = EmbedSchedule(ScheduleSettings(enabled=False))
    off.embedded(view(1, "new"), 0.0)
    assert off.pick([view(1, "recognized"), view(2, "new")], 0.01) == [0, 1]
    unlimited = EmbedSchedule(ScheduleSettings(max_embeds_per_s=0))
    assert unlimited.pick([view(t, "new") for t in range(50)], 0.0) == list(range(50))


def test_forget_drops_ended_tracks() -> None:
    s = EmbedSchedule(ScheduleSettings(max_embeds_per_s=0, recheck_s=5))
    s.embedded(view(1, "new"), 0.0)
    s.forget({2})
    assert s.pick([view(1, "undecided")], 0.1) == [0]  # nothing known of it: a first view


@pytest.mark.parametrize(
    "bad",
    [
        {"max_embeds_per_s": -1},
        {"recheck_s": -0.1},
        {"identity_check_s": -1},
        {"unknown_check_s": -1},
    ],
)
def test_settings_refuse_negative_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ScheduleSettings(**bad)


# -- in the pipeline, on fakes ------------------------------------------------------------

ALICE, CAROL = (0.0, 0.0), (0.0, 10.0)  # carol is not enrolled
BOX = BBox(40, 20, 100, 80)


def rig(schedule: ScheduleSettings | None, engine: FakeEngine) -> tuple[Pipeline, ListSink]:
    policy = Policy("euclidean", verify_tau=0.6, identify_tau=0.5, min_face=40, min_sharpness=10.0)
    sink = ListSink()
    tracker = Tracker(TrackerSettings(k=3, n=5, unknown_after=4, max_missed=10), "door")
    pipeline = Pipeline(engine, FakeGallery({"Alice": [ALICE]}), policy, ENCODER, tracker, sink,
                        clock=FakeClock(), schedule=schedule,
                        detect_scale=0.8 if schedule else 1.0)  # fmt: skip
    return pipeline, sink


def play(
    pipeline: Pipeline, engine: FakeEngine, faces: list[list[FakeFace]], fps: float = 25
) -> None:
    for i, scene in enumerate(faces):
        engine.add(*scene)
        pipeline.process(Frame(np.zeros((120, 160, 3), np.uint8), i, 100.0 + i / fps, "door"))


def test_the_schedule_names_a_person_with_a_tenth_of_the_embeddings() -> None:
    frames = [[FakeFace(BOX, ALICE)]] * 100  # 4 s at 25 frames/s
    results = {}
    for name, schedule in {"off": None, "on": ScheduleSettings(max_embeds_per_s=8, recheck_s=0.1,
                                                               identity_check_s=2.0)}.items():  # fmt: skip
        engine = FakeEngine()
        engine.width = 160
        pipeline, sink = rig(schedule, engine)
        play(pipeline, engine, frames)
        results[name] = (engine.calls["embed"], [(e.type, e.person) for e in sink.events])
    assert results["off"] == (100, [("recognized", "Alice")])
    embeds, events = results["on"]
    assert events == [("recognized", "Alice")]
    # 3 embeddings 0.12 s apart (every third frame) decide it at 0.24 s, then an identity
    # check every 2 s: at 2.24 s (the clip ends at 3.96 s)
    assert embeds == 3 + 1


def test_a_stranger_in_an_enrolled_persons_place_is_unknown() -> None:
    # issue 23's swap: 15 frames of an enrolled person, 5 empty frames, 30 of a stranger
    frames = [[FakeFace(BOX, ALICE)]] * 15 + [[]] * 5 + [[FakeFace(BOX, CAROL)]] * 30
    for schedule in (None, ScheduleSettings()):
        engine = FakeEngine()
        engine.width = 160
        pipeline, sink = rig(schedule, engine)
        play(pipeline, engine, frames)
        assert [(e.type, e.person) for e in sink.events] == [
            ("recognized", "Alice"),
            ("unknown", None),
        ]


def test_detection_runs_at_the_scale_that_keeps_min_face_findable() -> None:
    from edge.pipeline import DETECT_FACE_PX, detect_scaled, detection_scale

    assert detection_scale(40) == DETECT_FACE_PX / 40
    assert detection_scale(20) == 1.0 and detection_scale(0) == 1.0

    class Spy:
        def detect(self, image: np.ndarray) -> list:
            from edge.types import Detection

            self.shape = image.shape
            lm = np.array([[10, 10], [20, 10], [15, 15], [11, 20], [19, 20]], np.float32)
            return [Detection(BBox(10, 10, 20, 20), 0.9, lm)]

    spy = Spy()
    [d] = detect_scaled(spy, np.zeros((360, 640, 3), np.uint8), 0.5)  # type: ignore[arg-type]
    assert spy.shape == (180, 320, 3)
    assert (d.box.x1, d.box.y2) == (20, 40) and d.landmarks[2].tolist() == [30, 30]


def test_scaled_detection_maps_every_coordinate_back_exactly() -> None:
    """Area-averaged down (what the detector is shown), each box corner by its own axis's
    factor, the score kept, landmarks as float32 whatever the detector gives."""
    import cv2

    from edge.pipeline import detect_scaled
    from edge.types import Detection

    class Spy:
        def detect(self, image: np.ndarray) -> list:
            self.image = image
            lm = np.array([[10, 10], [20, 12]], np.float64)  # a detector giving doubles
            return [Detection(BBox(10, 10, 20, 30), 0.87, lm)]

    frame = np.random.default_rng(0).integers(0, 256, (300, 400, 3), np.uint8)
    spy = Spy()
    [d] = detect_scaled(spy, frame, 0.25)  # type: ignore[arg-type]
    assert np.array_equal(spy.image, cv2.resize(frame, (100, 75), interpolation=cv2.INTER_AREA))
    assert (d.box.x1, d.box.y1, d.box.x2, d.box.y2) == (40, 40, 80, 120) and d.score == 0.87
    assert d.landmarks.dtype == np.float32 and d.landmarks.tolist() == [[40, 40], [80, 48]]
    [tiny] = detect_scaled(spy, frame[:3, :3], 0.1)  # type: ignore[arg-type]
    assert spy.image.shape == (1, 1, 3)  # never a side of 0 pixels
    assert (tiny.box.x1, tiny.box.y2) == (30, 90)
