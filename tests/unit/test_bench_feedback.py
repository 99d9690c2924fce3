"""bench/feedback.py's protocol on made-up embeddings, through the real gallery file and
rule: the stranger taken for Alice is marked once; afterwards neither that photo nor his
other one is named Alice, and Alice's own photo still is."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import feedback

from edge.decision import Policy


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, np.float32)
    return v / np.linalg.norm(v)


def test_one_mark_stops_the_mistake_and_keeps_the_person() -> None:
    known = {"Alice": [unit(1, 0, 0), unit(1, 0.05, 0), unit(1, 0.1, 0)]}  # 2 enrolled + 1 probe
    strangers = {
        "Bob": [unit(1, 0, 0.3), unit(1, 0, 0.35)],  # seen: near Alice; his other photo too
        "Carol": [unit(0, 1, 0), unit(0, 1, 0.1)],  # far from everyone
    }
    policy = Policy("cosine", 0.2, 0.2, tau=0.2, margin=0.0)
    d = feedback.run_domain("enc", policy, known, strangers)
    assert (d["marked"], d["people_corrected"]) == (1, 1)
    before, after = d["before"], d["after"]
    assert before["marked_seen_named"]["k"] == 1 and after["marked_seen_named"]["k"] == 0
    assert before["marked_other_photos_named_as_before"]["k"] == 1
    assert after["marked_other_photos_named_as_before"]["k"] == 0
    assert before["enrolled_named_right"]["k"] == after["enrolled_named_right"]["k"] == 1
    assert after["corrected_people_named_right"]["k"] == 1
    assert before["strangers_other_photos_named"]["n"] == 2
