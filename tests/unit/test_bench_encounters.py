"""bench/encounters.py: the clips it makes of photos, and how it counts encounters."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import doc_blocks
import doc_common
import encounters
from report_data import OpenSetPlan


def _photo() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 255, (250, 200, 3), dtype=np.uint8)


def test_a_photo_becomes_frames_of_a_face_coming_nearer() -> None:
    frames = encounters.frames_of(_photo(), seed=7, count=6)
    assert len(frames) == 6
    assert all(f.shape == (encounters.HEIGHT, encounters.WIDTH, 3) for f in frames)
    assert all(f.dtype == np.uint8 for f in frames)
    # the photo covers more of the frame as the clip goes on (the background is flat grey)
    covered = [float((np.abs(f.astype(int) - 96).sum(2) > 40).mean()) for f in frames]
    assert covered[-1] > 1.5 * covered[0]
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(frames))
    again = encounters.frames_of(_photo(), seed=7, count=6)
    assert all(np.array_equal(a, b) for a, b in zip(frames, again, strict=True))


def test_clips_are_every_stranger_photo_and_one_probe_per_enrolled_person() -> None:
    p = Path
    plan = OpenSetPlan(
        "lfw",
        {"A": [p("a1"), p("a2"), p("a3"), p("a4"), p("a5")], "B": [p("b1"), p("b2"), p("b3")]},
        {"S": [p("s1"), p("s2")]},
        "",
    )
    copies = {
        x: p(f"copy-{x}") for ps in (*plan.enrolled.values(), *plan.strangers.values()) for x in ps
    }
    clips = encounters.clips_for({"lfw": plan}, copies)
    assert [(c.kind, c.person, c.photo, c.file) for c in clips] == [
        ("mated", "A", "a4", "copy-a4"),  # B has no photo left after enrolling 3
        ("stranger", "S", "s1", "copy-s1"),
        ("stranger", "S", "s2", "copy-s2"),
    ]


def _row(domain: str, kind: str, person: str, named: list[str], unknown: bool = False) -> dict:
    return {"domain": domain, "kind": kind, "person": person, "photo": "", "file": "",
            "named": named, "unknown": unknown}  # fmt: skip


def test_an_encounter_counts_as_named_right_wrong_or_unknown() -> None:
    rows = [
        _row("lfw", "mated", "A", ["A"]),
        _row("lfw", "mated", "B", ["A", "B"]),  # a wrong name too: wrong, not right
        _row("lfw", "mated", "C", [], unknown=True),
        _row("lfw", "mated", "D", ["E"]),
        _row("lfw", "stranger", "S", []),
        _row("lfw", "stranger", "S", ["A"]),
        _row("lfw", "stranger", "T", [], unknown=True),
        _row("cfp", "stranger", "U", []),
    ]
    s = encounters.summarise(rows)
    assert list(s) == ["lfw", "cfp"]
    lfw = s["lfw"]
    assert (lfw["named_right"]["k"], lfw["named_right"]["n"]) == (1, 4)
    assert (lfw["wrong_name"]["k"], lfw["left_unknown"]["k"]) == (2, 1)
    assert (lfw["strangers_named"]["k"], lfw["strangers_named"]["n"]) == (1, 3)
    assert lfw["strangers_named"]["people"] == 2
    assert lfw["strangers_unknown_event"]["k"] == 1
    assert lfw["named_as"] == [("S", "A")]
    assert s["cfp"]["strangers_named"]["k"] == 0


def test_the_docs_render_the_encounters_or_say_they_are_pending() -> None:
    rows = [_row("lfw", "stranger", "S", []), _row("lfw", "mated", "A", ["A"])]
    e = {"frames_per_clip": 8, "frame_size": [640, 480], "clips": 2,
         "domains": encounters.summarise(rows),
         "street": {"frames": 105, "tracks": 13, "recognized": [], "gallery_people": 200}}  # fmt: skip
    text = doc_common.encounters_table(e)
    assert "| LFW | 0.00% [" in text and "(0 of 1)" in text
    assert "13 tracks, named: nobody" in text
    assert "8 frames (640x480)" in doc_common.encounters_about(e)
    pending = doc_blocks.recognition_encounters({"schema": 2}, Path("docs/RECOGNITION.md"))
    assert pending.startswith("*Pending")
