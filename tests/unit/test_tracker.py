from __future__ import annotations

import pytest

from edge.tracker import Tracker, TrackerSettings
from edge.types import BBox, Match, RecognitionEvent

TAU = 0.5
LEFT = BBox(100, 100, 200, 200)
RIGHT = BBox(400, 100, 500, 200)


def known(person: str, distance: float = 0.3) -> Match:
    return Match(person, distance, TAU, True)


def stranger(distance: float = 0.8) -> Match:
    return Match(None, distance, TAU, False)


def shifted(box: BBox, dx: float) -> BBox:
    return BBox(box.x1 + dx, box.y1, box.x2 + dx, box.y2)


class Clip:
    """Feeds a tracker one frame at a time, 0.1 s apart, and keeps every event."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.tracker = Tracker(settings or TrackerSettings(), "frontdoor")
        self.now = 1000.0
        self.events: list[RecognitionEvent] = []

    def frame(self, *faces: tuple[BBox, Match]) -> list[RecognitionEvent]:
        events = self.tracker.update(list(faces), self.now)
        self.events.extend(events)
        self.now += 0.1
        return events

    def empty(self, frames: int) -> None:
        for _ in range(frames):
            self.frame()


def test_one_person_gives_one_event_once_k_of_n_agree() -> None:
    clip = Clip()
    distances = [0.40, 0.30, 0.35]
    assert clip.frame((LEFT, known("alice", distances[0]))) == []
    assert clip.frame((LEFT, known("alice", distances[1]))) == []
    t = clip.now
    [event] = clip.frame((LEFT, known("alice", distances[2])))
    assert event.type == "recognized" and event.person == "alice"
    assert event.frames == 3 and event.time == t and event.track_id == 1
    assert event.distance == pytest.approx(0.30) and event.tau == TAU
    assert event.camera == "frontdoor" and event.box == LEFT and event.crop_jpeg is None
    assert len(event.event_id) == 32
    for _ in range(50):
        clip.frame((LEFT, known("alice")))
    assert len(clip.events) == 1


def test_not_before_k_frames_even_with_gaps() -> None:
    clip = Clip()
    for match in [known("alice"), stranger(), known("alice"), stranger()]:
        assert clip.frame((LEFT, match)) == []
    [event] = clip.frame((LEFT, known("alice")))
    assert event.frames == 5


def test_a_flicker_of_a_wrong_name_does_not_fire() -> None:
    clip = Clip()
    for i in range(30):
        clip.frame((LEFT, known("bob") if i == 2 else stranger()))
    assert [e.person for e in clip.events if e.type == "recognized"] == []


def test_two_people_side_by_side_give_two_tracks_and_two_events() -> None:
    clip = Clip()
    for _ in range(5):
        clip.frame((LEFT, known("alice")), (RIGHT, known("bob")))
    assert clip.tracker.tracks() == 2
    assert sorted((e.person, e.track_id) for e in clip.events) == [("alice", 1), ("bob", 2)]


def test_leaving_and_coming_back_respects_the_cooldown() -> None:
    settings = TrackerSettings(cooldown_s=60.0, max_missed=3)
    clip = Clip(settings)
    for _ in range(3):
        clip.frame((LEFT, known("alice")))
    assert len(clip.events) == 1
    clip.empty(3)
    assert clip.tracker.tracks() == 0
    for _ in range(10):  # back within the cooldown: a new track, no event
        clip.frame((LEFT, known("alice")))
    assert len(clip.events) == 1
    clip.empty(3)
    clip.now += 60.0
    for _ in range(3):
        clip.frame((LEFT, known("alice")))
    assert [e.person for e in clip.events] == ["alice", "alice"]
    assert clip.events[1].track_id == 3 and clip.events[1].frames == 3


def test_a_long_encounter_never_fires_again_in_the_same_track() -> None:
    clip = Clip(TrackerSettings(cooldown_s=1.0))
    for _ in range(100):  # 10 s in one track, ten times the cooldown
        clip.frame((LEFT, known("alice")))
    assert len(clip.events) == 1


def test_cooldown_is_per_person() -> None:
    clip = Clip()
    for _ in range(3):
        clip.frame((LEFT, known("alice")), (RIGHT, known("bob")))
    assert sorted(e.person or "" for e in clip.events) == ["alice", "bob"]


def test_unknown_face_gives_one_unknown_event() -> None:
    clip = Clip(TrackerSettings(unknown_after=8))
    for i in range(7):
        clip.frame((LEFT, stranger(0.80 + i / 100)))
    assert clip.events == []
    [event] = clip.frame((LEFT, stranger(0.95)))
    assert event.type == "unknown" and event.person is None and event.frames == 8
    assert event.distance == pytest.approx(0.83)  # the smallest of the last n=5, not 0.80
    for _ in range(100):
        clip.frame((LEFT, stranger()))
    assert len(clip.events) == 1


def test_unknown_needs_a_window_without_names() -> None:
    clip = Clip(TrackerSettings(unknown_after=3))
    clip.frame((LEFT, known("alice")))  # one name, not enough to win, blocks unknown
    for _ in range(4):
        clip.frame((LEFT, stranger()))
    assert clip.events == []
    [event] = clip.frame((LEFT, stranger()))  # alice has left the window of 5
    assert event.type == "unknown" and event.frames == 6


def test_a_recognized_track_never_fires_unknown() -> None:
    clip = Clip(TrackerSettings(unknown_after=4))
    for _ in range(3):
        clip.frame((LEFT, known("alice")))
    for _ in range(50):
        clip.frame((LEFT, stranger()))
    assert [e.type for e in clip.events] == ["recognized"]


def test_unknown_then_recognized_when_the_face_turns() -> None:
    clip = Clip(TrackerSettings(unknown_after=3))
    for _ in range(3):
        clip.frame((LEFT, stranger()))
    for _ in range(3):
        clip.frame((LEFT, known("alice")))
    assert [(e.type, e.person) for e in clip.events] == [("unknown", None), ("recognized", "alice")]


def test_unknown_cooldown_is_per_camera() -> None:
    clip = Clip(TrackerSettings(unknown_after=3, unknown_cooldown_s=10.0))
    for _ in range(10):
        clip.frame((LEFT, stranger()), (RIGHT, stranger()))
    assert [(e.type, e.track_id) for e in clip.events] == [("unknown", 1)]


def test_unknown_disabled() -> None:
    clip = Clip(TrackerSettings(unknown_after=None))
    for _ in range(100):
        clip.frame((LEFT, stranger()))
    assert clip.events == []


def test_track_dropped_after_max_missed_frames() -> None:
    clip = Clip(TrackerSettings(max_missed=4))
    clip.frame((LEFT, stranger()))
    clip.empty(3)
    assert clip.tracker.tracks() == 1
    clip.frame((LEFT, stranger()))  # seen again in time: the same track, misses reset
    clip.empty(3)
    assert clip.tracker.tracks() == 1
    clip.empty(1)
    assert clip.tracker.tracks() == 0
    clip.frame((LEFT, known("alice")))
    clip.frame((LEFT, known("alice")))
    [event] = clip.frame((LEFT, known("alice")))
    assert event.track_id == 2 and event.frames == 3


def test_iou_assignment_keeps_ids_stable_when_faces_move() -> None:
    a, b = BBox(100, 100, 200, 200), BBox(180, 100, 280, 200)  # overlapping neighbours
    clip = Clip()
    for step in range(4):
        # listed in the other order each frame: ids must follow the boxes, not the order
        faces = [(shifted(a, 10 * step), known("alice")), (shifted(b, -5 * step), known("bob"))]
        clip.frame(*(faces if step % 2 == 0 else faces[::-1]))
    assert clip.tracker.tracks() == 2
    assert {(e.person, e.track_id) for e in clip.events} == {("alice", 1), ("bob", 2)}


def test_a_far_jump_starts_a_new_track() -> None:
    clip = Clip()
    clip.frame((LEFT, stranger()))
    clip.frame((RIGHT, stranger()))
    assert clip.tracker.tracks() == 2


@pytest.mark.parametrize(
    "kwargs",
    [{"k": 6, "n": 5}, {"k": 0}, {"iou": 0.0}, {"unknown_after": 0}, {"max_missed": 0}],
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TrackerSettings(**kwargs)  # type: ignore[arg-type]
