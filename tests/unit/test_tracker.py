from __future__ import annotations

import re

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
    assert clip.tracker.started() == 1
    for _ in range(10):  # back within the cooldown: a new track, no event
        clip.frame((LEFT, known("alice")))
    assert len(clip.events) == 1
    assert clip.tracker.started() == 2
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
    assert clip.tracker.started() == 1
    [event] = clip.frame((LEFT, stranger()))  # alice has left the window of 5
    assert event.type == "unknown" and event.frames == 6


def untrusted(clip: Clip, box: BBox, match: Match) -> list[RecognitionEvent]:
    """One frame whose face was too blurred or turned to trust (``usable=False``)."""
    [view] = clip.tracker.follow([box])
    events = clip.tracker.vote(view.track_id, match, clip.now, usable=False)
    clip.events.extend(events)
    clip.now += 0.1
    return events


def test_a_recognized_track_whose_face_turns_away_never_fires_unknown() -> None:
    clip = Clip(TrackerSettings(unknown_after=4))
    for _ in range(3):
        clip.frame((LEFT, known("alice")))
    for _ in range(50):
        untrusted(clip, LEFT, stranger())
    assert [e.type for e in clip.events] == ["recognized"]
    assert clip.tracker.started() == 1


def test_a_stranger_in_a_named_track_starts_a_new_track_after_k_votes() -> None:
    clip = Clip(TrackerSettings(k=3, n=5, unknown_after=4))
    for _ in range(3):
        clip.frame((LEFT, known("alice")))
    clip.frame((LEFT, stranger()))
    clip.frame((LEFT, known("alice")))  # a named vote clears the doubt
    clip.frame((LEFT, stranger()))
    clip.frame((LEFT, stranger()))
    assert clip.tracker.started() == 1 and clip.tracker.follow([LEFT])[0].state == "doubt"
    clip.now += 0.1
    clip.frame((LEFT, stranger()))  # the third in a row: a new track, carrying all three
    assert clip.tracker.started() == 2
    [event] = clip.frame((LEFT, stranger()))  # its fourth vote: unknown_after
    assert event.type == "unknown" and event.track_id == 2
    assert event.frames == 2  # the newcomer counts the frame it began in and this one
    assert [e.type for e in clip.events] == ["recognized", "unknown"]


def test_reset_ends_every_track() -> None:
    clip = Clip()
    clip.frame((LEFT, known("alice")), (RIGHT, known("bob")))
    assert clip.tracker.tracks() == 2
    clip.tracker.reset()
    assert clip.tracker.tracks() == 0 and clip.tracker.live() == set()
    [view] = clip.tracker.follow([LEFT])
    assert view.track_id == 3 and view.state == "new"


def test_a_track_regained_after_a_gap_says_so() -> None:
    clip = Clip()
    clip.frame((LEFT, known("alice")))
    [view] = clip.tracker.follow([LEFT])
    assert not view.regained and view.state == "undecided"
    clip.tracker.vote(view.track_id, known("alice"), clip.now)
    clip.empty(2)
    [view] = clip.tracker.follow([LEFT])
    assert view.regained and view.track_id == 1


def test_a_vote_for_a_track_that_ended_is_refused() -> None:
    clip = Clip()
    [view] = clip.tracker.follow([LEFT])
    clip.tracker.reset()
    with pytest.raises(KeyError, match="no live track 1"):
        clip.tracker.vote(view.track_id, known("alice"), clip.now)


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


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"iou": 1.5}, "iou must be in (0, 1], got 1.5"),
        ({"iou": -0.1}, "iou must be in (0, 1], got -0.1"),
        ({"k": 6, "n": 5}, "expected 1 <= k <= n, got k=6, n=5"),
        ({"unknown_after": 0}, "unknown_after must be >= 1 or None, got 0"),
        ({"cooldown_s": -1.0}, "cooldowns must be >= 0"),
        ({"unknown_cooldown_s": -1.0}, "cooldowns must be >= 0"),
        ({"max_missed": 0}, "max_missed must be >= 1, got 0"),
    ],
)
def test_bad_settings_say_what_is_wrong(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        TrackerSettings(**kwargs)  # type: ignore[arg-type]


def test_the_edges_of_the_settings_are_allowed() -> None:
    edge = TrackerSettings(iou=1.0, k=5, n=5, unknown_after=1, cooldown_s=0.0,
                           unknown_cooldown_s=0.0, max_missed=1)  # fmt: skip
    assert edge.iou == 1.0 and edge.max_missed == 1


def test_a_candidate_name_that_was_not_accepted_does_not_count() -> None:
    clip = Clip(TrackerSettings(unknown_after=3))
    for _ in range(3):  # the nearest was alice, but the rule said unknown
        clip.frame((LEFT, Match("alice", 0.7, TAU, False)))
    assert [(e.type, e.person) for e in clip.events] == [("unknown", None)]


def test_an_overlap_exactly_at_the_iou_threshold_continues_the_track() -> None:
    clip = Clip(TrackerSettings(iou=0.5))
    clip.frame((BBox(0, 0, 100, 100), stranger()))
    clip.frame((BBox(0, 0, 100, 50), stranger()))  # IoU exactly 0.5
    assert clip.tracker.tracks() == 1


def test_a_face_continues_the_track_it_overlaps_most() -> None:
    clip = Clip(TrackerSettings(k=1, n=1, unknown_after=None, max_missed=5))
    a, b = BBox(0, 0, 100, 100), BBox(60, 0, 160, 100)
    clip.frame((a, stranger()), (b, stranger()))  # tracks 1 (a) and 2 (b)
    # one face between them, nearer b: it continues track 2; track 1 is not seen
    [event] = clip.frame((BBox(50, 0, 150, 100), known("alice")))
    assert event.track_id == 2 and clip.tracker.tracks() == 2


def test_the_best_overlaps_are_assigned_first() -> None:
    clip = Clip(TrackerSettings(k=1, n=1, unknown_after=None, iou=0.1))
    t1, t2 = BBox(0, 0, 100, 100), BBox(150, 0, 250, 100)
    clip.frame((t1, stranger()), (t2, stranger()))
    # f1 overlaps t1 (0.56) and t2 (0.12); f2 overlaps t2 (0.90): f1 -> 1, f2 -> 2
    f1, f2 = BBox(0, 0, 180, 100), BBox(155, 0, 255, 100)
    events = clip.frame((f1, known("alice")), (f2, known("bob")))
    assert sorted((e.person, e.track_id) for e in events) == [("alice", 1), ("bob", 2)]
    assert clip.tracker.tracks() == 2


def test_one_track_continues_one_face_only() -> None:
    clip = Clip(TrackerSettings(k=1, n=1, unknown_after=None, iou=0.1))
    clip.frame((BBox(0, 0, 200, 100), stranger()))
    events = clip.frame(
        (BBox(0, 0, 100, 100), known("alice")), (BBox(100, 0, 200, 100), known("bob"))
    )
    assert sorted((e.person, e.track_id) for e in events) == [("alice", 1), ("bob", 2)]


def test_a_second_person_in_a_won_track_is_recognized_too() -> None:
    clip = Clip(TrackerSettings(k=2, n=5))
    clip.frame((LEFT, known("alice")))
    clip.frame((LEFT, known("alice")))  # alice wins
    clip.frame((LEFT, known("bob")))
    clip.frame((LEFT, known("bob")))  # alice 2, bob 2 in the window: bob wins too
    # bob's two votes in a row are k votes that do not name alice: a new track
    assert [(e.person, e.track_id) for e in clip.events] == [("alice", 1), ("bob", 2)]


def test_a_person_in_cooldown_does_not_hide_another() -> None:
    clip = Clip(TrackerSettings(k=2, n=5, cooldown_s=60.0, max_missed=1))
    for _ in range(2):
        clip.frame((LEFT, known("alice")))
    clip.empty(1)  # track 1 dropped; alice in cooldown
    for person in ("alice", "bob", "alice", "bob"):  # both reach k in the same frame
        clip.frame((LEFT, known(person)))
    assert [(e.person, e.track_id) for e in clip.events] == [("alice", 1), ("bob", 2)]


def test_the_cooldown_ends_exactly_after_cooldown_s() -> None:
    clip = Clip(TrackerSettings(k=1, n=1, cooldown_s=2.0, max_missed=1))
    clip.now = 100.0
    clip.frame((LEFT, known("alice")))
    clip.empty(1)
    clip.now = 102.0  # exactly cooldown_s after the event
    [event] = clip.frame((LEFT, known("alice")))
    assert event.time == 102.0


def test_the_unknown_cooldown_ends_exactly_after_unknown_cooldown_s() -> None:
    clip = Clip(TrackerSettings(unknown_after=1, unknown_cooldown_s=2.0, max_missed=1))
    clip.now = 100.0
    [first] = clip.frame((LEFT, stranger(0.9)))
    assert first.type == "unknown" and first.time == 100.0 and first.distance == 0.9
    clip.empty(1)
    clip.now = 102.0
    [second] = clip.frame((LEFT, stranger()))
    assert second.type == "unknown" and second.time == 102.0 and second.track_id == 2


def test_a_face_taken_by_its_best_track_leaves_the_next_pairs_to_others() -> None:
    clip = Clip(TrackerSettings(k=1, n=1, unknown_after=None, iou=0.1))
    t1, t2 = BBox(0, 0, 100, 100), BBox(60, 0, 160, 100)
    clip.frame((t1, stranger()), (t2, stranger()))
    # pairs by overlap: (f1, t1) 0.9, (f1, t2) 0.3 skipped: f1 is taken, (f2, t2) 0.2
    f1, f2 = BBox(5, 0, 105, 100), BBox(130, 0, 230, 100)
    assert f1.iou(t1) > f1.iou(t2) > f2.iou(t2) >= 0.1
    events = clip.frame((f1, known("alice")), (f2, known("bob")))
    assert sorted((e.person, e.track_id) for e in events) == [("alice", 1), ("bob", 2)]


def test_an_unknown_track_named_again_is_voting_again() -> None:
    clip = Clip(TrackerSettings(k=3, n=5, unknown_after=3))
    for _ in range(3):
        clip.frame((LEFT, stranger()))
    assert [e.type for e in clip.events] == ["unknown"]
    assert clip.tracker.follow([LEFT])[0].state == "unknown"
    clip.tracker.vote(1, known("alice"), clip.now)
    assert clip.tracker.follow([LEFT])[0].state == "undecided"


def test_a_clock_set_back_does_not_hold_events_in_the_cooldown() -> None:
    """Frame times are wall-clock times on a live camera: after the clock is set back an
    hour, `now - last` is negative, which is not "within the cooldown" (make faults found
    every event suppressed until the clock caught up)."""
    settings = TrackerSettings(cooldown_s=60.0, unknown_cooldown_s=10.0, max_missed=3)
    clip = Clip(settings)
    for _ in range(3):
        clip.frame((LEFT, known("alice")))
    for _ in range(8):
        clip.frame((RIGHT, stranger(0.9)))
    assert [e.type for e in clip.events] == ["recognized", "unknown"]
    clip.empty(3)
    clip.now -= 3600.0  # the clock set back an hour
    for _ in range(3):
        clip.frame((LEFT, known("alice")))
    for _ in range(8):
        clip.frame((RIGHT, stranger(0.9)))
    assert [e.type for e in clip.events] == ["recognized", "unknown"] * 2


def test_a_decision_within_a_cooldown_is_kept_quiet_not_lost() -> None:
    clip = Clip(TrackerSettings(unknown_after=3, unknown_cooldown_s=10.0, max_missed=3))
    for _ in range(3):
        clip.frame((LEFT, stranger()))
    assert clip.tracker.quiet == [] and len(clip.events) == 1
    clip.empty(3)
    clip.frame((LEFT, stranger(0.9)))
    clip.frame((LEFT, stranger(0.7)))
    assert clip.frame((LEFT, stranger(0.8))) == []
    [quiet] = clip.tracker.quiet  # the second track's verdict, unpublished
    assert (quiet.type, quiet.track_id, quiet.distance) == ("unknown", 2, 0.7)
    clip.frame((LEFT, stranger()))
    assert clip.tracker.quiet == []  # only the last vote's


def test_a_track_seen_once_and_missed_once_is_regained() -> None:
    """One frame seen, one missed, seen again: regained (the schedule embeds it at once)."""
    clip = Clip()
    assert clip.tracker.quiet == []  # before any vote
    [first] = clip.tracker.follow([LEFT])
    assert not first.regained and first.state == "new"
    clip.tracker.follow([])
    [again] = clip.tracker.follow([LEFT])
    assert again.regained and again.track_id == first.track_id
    [after] = clip.tracker.follow([LEFT])
    assert not after.regained


def test_two_faces_over_one_track_do_not_share_it() -> None:
    clip = Clip()
    clip.frame((LEFT, stranger()))
    views = clip.tracker.follow([LEFT, BBox(LEFT.x1 + 2, LEFT.y1, LEFT.x2 + 2, LEFT.y2)])
    assert sorted(v.track_id for v in views) == [1, 2]


def test_a_won_track_is_recognized_and_quiet_verdicts_are_not_logged_as_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Within its cooldown a verdict is kept (quiet) with its person, and logged only as
    'within cooldown', not as an event."""
    clip = Clip(TrackerSettings(k=2, n=5, cooldown_s=60.0, unknown_after=2,
                                unknown_cooldown_s=60.0, max_missed=1))  # fmt: skip
    with caplog.at_level("INFO", logger="edge.tracker"):
        for _ in range(2):
            clip.frame((LEFT, known("alice")))
        assert clip.tracker.follow([LEFT])[0].state == "recognized"
        clip.empty(2)
        clip.frame((LEFT, known("alice")))
        clip.frame((LEFT, known("alice")))
        [quiet] = clip.tracker.quiet
        assert (quiet.type, quiet.person, quiet.track_id) == ("recognized", "alice", 2)
        for _ in range(2):
            clip.frame((RIGHT, stranger()))
        clip.empty(2)
        for _ in range(2):
            clip.frame((RIGHT, stranger()))
        [quiet] = clip.tracker.quiet
        assert (quiet.type, quiet.person) == ("unknown", None)
    said = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("recognized alice on frontdoor") for m in said) == 1
    assert sum(m.startswith("unknown - on frontdoor") for m in said) == 1
    assert "alice on frontdoor (track 2): within cooldown" in said
    assert any(m.startswith("unknown on frontdoor") and "within cooldown" in m for m in said)


def test_one_person_on_two_faces_in_the_same_frame_is_one_event() -> None:
    """Both tracks name alice in the same frame: the second is within her cooldown (0 s
    since the first), kept quiet."""
    clip = Clip(TrackerSettings(k=2, n=5))
    for _ in range(2):
        clip.frame((LEFT, known("alice")), (RIGHT, known("alice")))
    assert [(e.person, e.track_id) for e in clip.events] == [("alice", 1)]
    [quiet] = clip.tracker.quiet
    assert (quiet.person, quiet.track_id) == ("alice", 2)
