"""The daemon's pipeline on in-memory fakes (tests/fakes.py): what reaches the sink for a
scripted scene, the gates, the gallery reload and the figures. The real parts run in
tests/integration/test_daemon.py."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from fakes import ENCODER, FakeClock, FakeEngine, FakeFace, FakeGallery, ListSink, frame

from edge.bundle import Manifest
from edge.config import RecognitionConfig
from edge.decision import Cohort, Policy
from edge.gallery import EncoderMismatchError
from edge.pipeline import Pipeline
from edge.recognize import NoFaceError, Recognizer, compare, policy_for
from edge.stats import STAGES, Stopwatch
from edge.tracker import Tracker, TrackerSettings
from edge.types import AlignedFace, BBox, Embedding, GalleryMatrix

ALICE, BOB = (0.0, 0.0), (10.0, 0.0)
BOX = BBox(40, 20, 100, 80)  # 60 px
SMALL = BBox(40, 20, 70, 50)  # 30 px


def near(person: tuple[float, float], d: float = 0.2) -> tuple[float, float]:
    return (person[0] + d, person[1])


class Rig:
    """A pipeline on fakes, fed one frame every 0.1 s."""

    def __init__(self, policy: Policy | None = None, include_crop: bool = False,
                 settings: TrackerSettings | None = None) -> None:  # fmt: skip
        self.engine = FakeEngine()
        self.gallery = FakeGallery({"Alice": [ALICE], "Bob": [BOB]})
        self.clock = FakeClock()
        self.sink = ListSink()
        self.policy = policy or Policy("euclidean", verify_tau=0.6, identify_tau=0.5,
                                       min_face=40, min_sharpness=10.0)  # fmt: skip
        tracker = Tracker(settings or TrackerSettings(k=3, n=5, unknown_after=8), "door")
        crop = {"include_crop": True} if include_crop else {}  # else the default
        self.pipeline = Pipeline(self.engine, self.gallery, self.policy, ENCODER, tracker,
                                 self.sink, clock=self.clock, **crop)  # fmt: skip
        self.index = 0

    def run(self, frames: int, *faces: FakeFace) -> list[str]:
        """``frames`` frames showing ``faces``; the events they gave, as 'type person'."""
        events = []
        for _ in range(frames):
            self.engine.add(*faces)
            self.index += 1
            self.clock.advance(0.1)
            for e in self.pipeline.process(frame(self.index, 2000.0 + self.index / 10)):
                events.append(f"{e.type} {e.person or '-'}")
        return events


def test_an_enrolled_face_over_k_frames_gives_one_event_on_the_sink() -> None:
    rig = Rig()
    assert rig.run(2, FakeFace(BOX, near(ALICE))) == []
    assert rig.run(1, FakeFace(BOX, near(ALICE))) == ["recognized Alice"]
    assert rig.run(20, FakeFace(BOX, near(ALICE))) == []
    [event] = rig.sink.events
    assert event.person == "Alice" and event.camera == "door" and event.box == BOX
    assert event.distance == pytest.approx(0.2) and event.tau == 0.5
    assert event.frames == 3 and event.time == pytest.approx(2000.3)
    assert event.crop_jpeg is None


def test_a_stranger_gives_unknown_and_no_name() -> None:
    rig = Rig()
    assert rig.run(8, FakeFace(BOX, (5.0, 5.0))) == ["unknown -"]
    assert rig.run(10, FakeFace(BOX, (5.0, 5.0))) == []


def test_a_face_under_min_face_is_not_aligned_embedded_or_tracked() -> None:
    rig = Rig()
    assert rig.run(20, FakeFace(SMALL, near(ALICE))) == []
    assert rig.engine.calls == {"detect": 20, "align": 0, "embed": 0}
    assert rig.pipeline.stats.faces_seen == 0 and rig.pipeline.stats.frames == 20
    # the same face at min_face exactly is looked at
    assert rig.run(3, FakeFace(BBox(0, 0, 40, 40), near(ALICE))) == ["recognized Alice"]
    assert rig.pipeline.stats.faces_seen == 3


def test_a_blurry_face_is_never_named() -> None:
    rig = Rig()
    events = rig.run(10, FakeFace(BOX, near(ALICE), sharp=False))
    assert events == ["unknown -"]  # no name: the track is judged a stranger


def test_two_faces_in_one_frame_are_decided_separately() -> None:
    rig = Rig()
    left, right = BBox(0, 0, 60, 60), BBox(100, 0, 160, 60)
    events = rig.run(3, FakeFace(left, near(ALICE)), FakeFace(right, near(BOB)))
    assert sorted(events) == ["recognized Alice", "recognized Bob"]


def test_the_configs_tau_reaches_the_daemons_rule() -> None:
    strict = Policy("euclidean", verify_tau=0.6, identify_tau=0.5, tau=0.1)
    rig = Rig(policy=strict)
    assert rig.run(10, FakeFace(BOX, near(ALICE, 0.2))) == ["unknown -"]
    assert rig.sink.events[0].tau == 0.1


def test_an_enrollment_elsewhere_is_picked_up_within_a_second() -> None:
    rig = Rig(settings=TrackerSettings(k=1, n=1, unknown_after=None))
    carol = (0.0, 10.0)
    assert rig.run(1, FakeFace(BOX, carol)) == []
    rig.gallery.enroll("Carol", carol)
    checks = rig.gallery.calls["data_version"]
    assert rig.run(5, FakeFace(BOX, carol)) == []  # 0.5 s: not asked yet
    assert rig.gallery.calls["data_version"] == checks  # SQLite is not queried every frame
    events = rig.run(5, FakeFace(BOX, carol))
    assert events == ["recognized Carol"]
    assert rig.pipeline.matrix.names == ["Alice", "Bob", "Carol"]


def test_a_reload_request_reads_the_gallery_before_the_next_frame() -> None:
    rig = Rig(settings=TrackerSettings(k=1, n=1, unknown_after=None))
    del rig.gallery.people["Alice"]  # changed without a new data_version
    reads = rig.gallery.calls["matrix"]
    rig.run(20, FakeFace(BOX, near(BOB)))
    assert rig.gallery.calls["matrix"] == reads  # the version did not move: no re-read
    rig.pipeline.request_reload()
    rig.run(1, FakeFace(BOX, near(BOB)))
    assert rig.gallery.calls["matrix"] == reads + 1 and rig.pipeline.matrix.names == ["Bob"]


def test_a_gallery_that_fails_to_load_keeps_the_last_good_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig()
    rig.gallery.broken = True
    rig.gallery.enroll("Carol", (0.0, 10.0))
    assert rig.run(15, FakeFace(BOX, near(ALICE))) == ["recognized Alice"]
    assert "keeping the previous one" in caplog.text
    assert rig.pipeline.matrix.names == ["Alice", "Bob"]


def test_the_rule_follows_the_gallerys_size_on_reload() -> None:
    table = {"margin": 0.0, "sizes": [1, 100], "rates": [0.01], "tau": [[0.9], [0.3]]}
    m = manifest(identify=table)
    rig = Rig(policy=policy_for(m, RecognitionConfig()))
    before = rig.pipeline.decider.rule.tau
    for i in range(50):
        rig.gallery.enroll(f"P{i}", (100.0 + i, 0.0))
    rig.run(11, FakeFace(BOX, near(ALICE)))
    assert rig.pipeline.decider.rule.tau < before


def test_the_crop_rides_with_the_event_only_when_asked_for() -> None:
    rig = Rig(include_crop=True)
    rig.run(3, FakeFace(BOX, near(ALICE)))
    [event] = rig.sink.events
    assert event.crop_jpeg is not None and event.crop_jpeg[:2] == b"\xff\xd8"  # a JPEG


def test_the_figures_count_frames_faces_and_every_stage() -> None:
    rig = Rig()
    rig.run(4, FakeFace(BOX, near(ALICE)), FakeFace(SMALL, near(BOB)))
    stats = rig.pipeline.stats
    assert stats.frames == 4 and stats.faces_seen == 4
    assert set(stats.percentiles()) == set(STAGES)
    assert stats.fps() == pytest.approx(10.0)  # the fake clock moves 0.1 s a frame


def manifest(**extra: object) -> Manifest:
    from pydantic import TypeAdapter

    raw = {"format": 1, "name": "t", "encoder_id": ENCODER,
           "encoder": {"file": "e", "input_size": 16, "embedding_size": 2, "metric": "cosine"},
           "detector": {"type": "yunet", "file": "d"}, "alignment": {"type": "similarity", "size": 16},
           "tau": {"verify": 0.6, "identify": 0.45}, "files": {}, **extra}  # fmt: skip
    return TypeAdapter(Manifest).validate_python(json.loads(json.dumps(raw)))


def test_the_policy_takes_the_bundles_thresholds_and_the_configs_overrides() -> None:
    table = {"margin": 0.05, "sizes": [1, 100], "rates": [0.01], "tau": [[0.5], [0.4]]}
    plain = policy_for(manifest(identify=table), RecognitionConfig())
    assert plain == Policy(
        "cosine", 0.6, 0.45, plain.open_set, 0.01, None, None, 10.0, 0.0, max_yaw=0.5
    )
    assert plain.open_set is not None and plain.open_set.margin == 0.05
    cfg = RecognitionConfig(
        tau=0.3, strangers_accepted=0.05, margin=0.1, min_sharpness=20.0, max_yaw=0.7
    )
    tuned = policy_for(manifest(), cfg, min_face=64)
    assert tuned == Policy("cosine", 0.6, 0.45, None, 0.05, 0.3, 0.1, 20.0, 64, max_yaw=0.7)
    assert tuned.rule(10).tau == 0.3 and tuned.verify_threshold() == 0.3
    cohort = Cohort(np.ones((3, 2), np.float32), 2)
    assert policy_for(manifest(identify=table), RecognitionConfig(), cohort=cohort).cohort is cohort


def test_identify_uses_the_same_per_face_path() -> None:
    engine = FakeEngine([[FakeFace(BOX, near(ALICE)), FakeFace(SMALL, (5.0, 5.0), sharp=False)]])
    decider = Policy("euclidean", 0.6, 0.5).for_gallery(FakeGallery({"Alice": [ALICE]}).matrix())
    results = Recognizer(engine, decider).faces(np.zeros((10, 10, 3), np.uint8))
    assert [r.as_dict() for r in results] == [
        {"box": [40.0, 20.0, 100.0, 80.0], "person": "Alice", "distance": 0.2, "tau": 0.5, "known": True, "yaw": 0.0},
        {"box": [40.0, 20.0, 70.0, 50.0], "person": None, "distance": 7.0711, "tau": 0.5, "known": False, "yaw": 0.0},
    ]  # fmt: skip
    assert results[0].quality.size_px == 60 and results[1].quality.sharpness == 0.0


def test_the_gallery_is_asked_again_exactly_after_the_check_interval() -> None:
    rig = Rig()
    rig.gallery.enroll("Carol", (0.0, 10.0))
    start = rig.gallery.calls["data_version"]
    for _ in range(2):  # 0.5 s, then 1.0 s after the last check: asked at exactly 1.0
        rig.clock.advance(0.5)
        rig.pipeline.process(frame(0, 0.0))
    assert rig.gallery.calls["data_version"] == start + 2  # the check, and the reload's read
    assert "Carol" in rig.pipeline.matrix.names


def test_a_gallery_of_another_encoder_is_refused_at_start() -> None:
    gallery = FakeGallery({"Alice": [ALICE]}, encoder="another-encoder")
    policy = Policy("euclidean", 0.6, 0.5)
    tracker = Tracker(TrackerSettings(), "door")
    with pytest.raises(EncoderMismatchError, match="another-encoder"):
        Pipeline(FakeEngine(), gallery, policy, ENCODER, tracker, ListSink())


def test_uptime_counts_from_the_pipelines_start() -> None:
    rig = Rig()
    assert rig.pipeline.stats.started == 1000.0  # the fake clock when it was built
    rig.run(2)
    assert rig.pipeline.stats.percentiles()["detect"][0] > 0  # real laps were recorded


def test_the_per_face_path_times_every_stage() -> None:
    ticks = iter(range(100))
    watch = Stopwatch(clock=lambda: float(next(ticks)))
    engine = FakeEngine([[FakeFace(BOX, near(ALICE))]])
    decider = Policy("euclidean", 0.6, 0.5).for_gallery(FakeGallery({"Alice": [ALICE]}).matrix())
    Recognizer(engine, decider).faces(np.zeros((10, 10, 3), np.uint8), watch)
    assert watch.laps == {"detect": 1.0, "align": 1.0, "embed": 1.0, "match": 1.0}
    assert watch.total() == 5.0


def test_an_engine_that_loses_an_embedding_is_an_error_not_a_dropped_face() -> None:
    class Lossy(FakeEngine):
        def embed(self, faces: list[AlignedFace]) -> list[Embedding]:
            return super().embed(faces)[:-1]

    engine = Lossy([[FakeFace(BOX, near(ALICE)), FakeFace(BBox(0, 0, 60, 60), near(BOB))]])
    decider = Policy("euclidean", 0.6, 0.5).for_gallery(FakeGallery({"Alice": [ALICE]}).matrix())
    with pytest.raises(ValueError, match="zip"):
        Recognizer(engine, decider).faces(np.zeros((10, 10, 3), np.uint8))


def test_a_face_result_as_json() -> None:
    engine = FakeEngine([[FakeFace(BOX, near(ALICE))]])
    policy = Policy("euclidean", 0.6, identify_tau=0.123456)
    [empty] = Recognizer(engine, policy.for_gallery(GalleryMatrix.empty())).faces(
        np.zeros((10, 10, 3), np.uint8)
    )
    assert empty.as_dict() == {"box": [40.0, 20.0, 100.0, 80.0], "person": None,
                               "distance": None, "tau": 0.1235, "known": False, "yaw": 0.0}  # fmt: skip
    turned = replace(empty, quality=replace(empty.quality, yaw=-0.45678))
    assert turned.as_dict()["yaw"] == -0.457  # three decimals


def test_verify_compares_the_largest_face_of_each_photo() -> None:
    big, small = BBox(0, 0, 100, 100), BBox(0, 0, 50, 50)
    engine = FakeEngine([
        [FakeFace(small, (9.0, 9.0)), FakeFace(big, (0.0, 0.0))],  # photo 1: two faces
        [FakeFace(BOX, (0.3, 0.4))],  # photo 2
    ])  # fmt: skip
    policy = Policy("euclidean", verify_tau=0.5, identify_tau=0.4)
    image = np.zeros((10, 10, 3), np.uint8)
    assert compare(engine, image, image, policy, ("a.jpg", "b.jpg")) == {
        "image1": "a.jpg", "image2": "b.jpg", "distance": 0.5, "tau": 0.5, "same": True,
    }  # fmt: skip
    engine.add(FakeFace(BOX, (0.0, 0.0)))
    engine.add(FakeFace(BOX, (0.0, 0.712345)))
    strict = Policy("euclidean", verify_tau=0.5, identify_tau=0.4, tau=0.654321)
    result = compare(engine, image, image, strict, ("a.jpg", "b.jpg"))
    assert (result["distance"], result["tau"], result["same"]) == (0.7123, 0.6543, False)
    assert engine.calls["embed"] == 4  # one face of each photo, never the smaller one
    engine.add(FakeFace(BOX, (1.0, 0.0)))
    engine.add(FakeFace(BOX, (3.0, 0.0)))  # the same direction: cosine distance 0
    cosine = Policy("cosine", verify_tau=0.4, identify_tau=0.3)
    assert compare(engine, image, image, cosine, ("a.jpg", "b.jpg"))["distance"] == 0.0


def test_verify_names_the_photo_without_a_face() -> None:
    image = np.zeros((10, 10, 3), np.uint8)
    policy = Policy("euclidean", 0.6, 0.5)
    engine = FakeEngine([[FakeFace(BOX, ALICE)], []])
    with pytest.raises(NoFaceError, match=r"^b\.jpg: no face found$"):
        compare(engine, image, image, policy, ("a.jpg", "b.jpg"))
    with pytest.raises(NoFaceError, match=r"^a\.jpg: no face found$"):
        compare(FakeEngine([[]]), image, image, policy, ("a.jpg", "b.jpg"))


def test_each_decided_track_is_kept_as_a_sighting_and_the_event_names_it() -> None:
    import sqlite3

    from edge.sightings import Recorder, SightingStore

    store = SightingStore(sqlite3.connect(":memory:", isolation_level=None))
    rig = Rig()
    rig.pipeline.sightings = Recorder(store, ENCODER)
    assert rig.run(3, FakeFace(BOX, near(ALICE))) == ["recognized Alice"]
    assert rig.run(8, FakeFace(BBox(0, 0, 60, 60), (5.0, 5.0))) == ["unknown -"]
    alice, stranger = rig.sink.events
    assert alice.sighting_id is not None and stranger.sighting_id is not None
    assert alice.crop_jpeg is None  # kept in the store, not sent ([mqtt] include_crop off)
    rows = store.get([alice.sighting_id, stranger.sighting_id])
    assert [(r.decision, r.person, r.camera) for r in rows] == [
        ("recognized", "Alice", "door"), ("unknown", None, "door")
    ]  # fmt: skip
    assert rows[0].vector is not None and rows[0].vector.tolist() == pytest.approx(near(ALICE))
    assert rows[0].crop and rows[0].crop[:2] == b"\xff\xd8"  # a JPEG
    assert [s.id for s in store.list(unknown=True)] == [stranger.sighting_id]


def test_a_decision_a_cooldown_keeps_quiet_is_still_kept_as_a_sighting() -> None:
    """The same stranger comes back within the unknown cooldown: no second event, but the
    second track's face is kept, so `sightings cluster` sees every visit."""
    import sqlite3

    from edge.sightings import Recorder, SightingStore

    store = SightingStore(sqlite3.connect(":memory:", isolation_level=None))
    rig = Rig()
    rig.pipeline.sightings = Recorder(store, ENCODER)
    visitor = FakeFace(BBox(0, 0, 60, 60), (5.0, 5.0))
    assert rig.run(8, visitor) == ["unknown -"]
    rig.run(20)  # gone: the track is dropped
    assert rig.run(8, visitor) == []  # back 2.8 s later: within the 10 s cooldown
    assert rig.run(3, FakeFace(BOX, near(ALICE))) == ["recognized Alice"]
    rig.run(20)
    assert rig.run(3, FakeFace(BOX, near(ALICE))) == []  # within Alice's 60 s cooldown
    assert len(rig.sink.events) == 2
    kept = store.list()
    assert sorted((s.decision, s.track_id) for s in kept) == [
        ("recognized", 3), ("recognized", 4), ("unknown", 1), ("unknown", 2)
    ]  # fmt: skip
    published = {e.sighting_id for e in rig.sink.events}
    assert len(published) == 2 and published < {s.id for s in kept}


def test_a_sighting_keeps_the_tracks_best_face_not_the_deciding_one() -> None:
    """The stranger comes closest on the 4th frame (the largest, sharp face) and is judged
    on the 8th: the sighting keeps the 4th face's embedding, quality and crop."""
    import sqlite3

    from edge.sightings import Recorder, SightingStore

    store = SightingStore(sqlite3.connect(":memory:", isolation_level=None))
    rig = Rig()
    rig.pipeline.sightings = Recorder(store, ENCODER)
    events = []
    for k in range(8):
        box = BBox(0, 0, 70, 70) if k == 3 else BBox(0, 0, 60, 60)
        events += rig.run(1, FakeFace(box, (5.0, 5.0 + k / 100), sharp=k != 0))
    assert events == ["unknown -"]
    [kept] = store.get([rig.sink.events[0].sighting_id])
    assert kept.vector is not None and kept.vector.tolist() == pytest.approx([5.0, 5.03])
    assert kept.quality.size_px == 70
    assert rig.sink.events[0].distance != 0  # the event is the verdict's, as before
    assert rig.pipeline.best.best(1) is not None
    rig.run(20)  # the track ends: its best face is let go
    assert rig.pipeline.best.best(1) is None


def test_the_gallery_log_shows_each_domains_own_tau_where_the_bundle_has_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from edge.decision import OpenSetTable

    blend = {"margin": 0.05, "sizes": [1, 100], "rates": [0.01, 0.1],
             "tau": [[0.5, 0.6], [0.4, 0.5]]}  # fmt: skip
    own = {"lfw": [[0.45, 0.55], [0.35, 0.45]], "cfp": [[0.55, 0.65], [0.45, 0.55]]}
    faces = np.array([[0.0, 1.0], [0.0, -1.0], [1.0, 0.0]], np.float32)
    labelled = Cohort(faces, 1, np.array([0, 1, 1]), ("cfp", "lfw"))
    rules = {
        "own": Policy(
            "euclidean",
            0.6,
            0.5,
            OpenSetTable.from_json({**blend, "tau_by_domain": own}),
            cohort=labelled,
        ),
        "plain": Policy(
            "euclidean", 0.6, 0.5, OpenSetTable.from_json(blend), cohort=Cohort(faces, 1)
        ),
    }
    lines = {}
    for name, policy in rules.items():
        caplog.clear()
        with caplog.at_level("INFO", logger="edge.pipeline"):
            Rig(policy)  # two people, one embedding each: read at size 2
        [lines[name]] = [r.getMessage() for r in caplog.records if "gallery:" in r.getMessage()]
    assert lines["own"] == (
        "gallery: 2 person(s), 2 embedding(s); tau 0.485 (each face's own lies between its "
        "nearest cohort faces' domains': cfp 0.535, lfw 0.435), margin 0.050"
    )  # read at size 2, between sizes 1 and 100
    assert lines["plain"] == "gallery: 2 person(s), 2 embedding(s); tau 0.485, margin 0.050"


def test_every_stage_is_timed_and_embeddings_counted_over_frames() -> None:
    rig = Rig()
    rig.run(3, FakeFace(BOX, near(ALICE)), FakeFace(BBox(200, 20, 260, 80), near(BOB)))
    stats = rig.pipeline.stats
    assert stats.embeddings == 6  # two faces embedded in each of three frames
    for stage in ("detect", "align", "embed", "match"):
        assert all(v > 0 for v in stats.latency[stage]), stage


def test_a_frame_between_detections_counts_with_no_faces_and_its_time(
) -> None:  # fmt: skip
    rig = Rig()
    rig.pipeline.detect_interval = 1.0  # at most one detection a second of frame time
    rig.run(5, FakeFace(BOX, near(ALICE)))  # 0.1 s apart: one detected, four between
    stats = rig.pipeline.stats
    assert (stats.frames, stats.skipped, stats.faces_seen) == (5, 4, 1)
    assert stats.fps() == pytest.approx(10.0)


def test_blurry_faces_in_a_named_track_do_not_end_it() -> None:
    """Untrusted votes (too blurry) do not count against the track's person: a named
    track seen blurry as someone else for many frames keeps its person."""
    rig = Rig()
    assert rig.run(3, FakeFace(BOX, near(ALICE))) == ["recognized Alice"]
    rig.run(10, FakeFace(BOX, near(BOB), sharp=False))
    assert rig.pipeline.tracker.started() == 1
