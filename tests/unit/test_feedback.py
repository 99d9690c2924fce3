"""Negative feedback in a real gallery file (edge/feedback.py): impostor faces are stored
with their person, reach the decision, go with the person, and survive a repair."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.decision import FaceQuality, Policy
from edge.gallery import Gallery, GalleryError, Sample
from edge.gallery_repair import repair

SHARP = FaceQuality(size_px=100, sharpness=50.0)


def vec(*values: float) -> np.ndarray:
    return np.array(values, np.float32)


def test_an_impostor_face_stops_the_name_for_faces_like_it(tmp_path: Path) -> None:
    policy = Policy(metric="euclidean", verify_tau=1.0, identify_tau=1.0)
    with Gallery(tmp_path / "g.db") as g:
        g.add("Alice", [Sample(vec(0, 0), "enc", "alice.jpg", 50.0)])
        stranger, alice_again = vec(0.8, 0.0), vec(0.0, 0.3)
        assert policy.for_gallery(g.matrix("enc")).decide(stranger, SHARP).person == "Alice"
        g.add_impostor("Alice", vec(0.9, 0.0), "enc", "sighting 7")
        m = g.matrix("enc")
        assert m.impostors is not None and m.impostor_owner is not None
        assert m.impostor_owner.tolist() == [0]
        decider = policy.for_gallery(m)
        assert decider.decide(stranger, SHARP).known is False  # nearer the impostor face
        assert decider.decide(alice_again, SHARP).person == "Alice"  # her own: still named
        with pytest.raises(GalleryError, match="no person named 'Bob'"):
            g.add_impostor("Bob", vec(1, 1), "enc", "x")
        with pytest.raises(GalleryError, match="encoder"):
            g.add_impostor("Alice", vec(1, 1), "other-encoder", "x")


def test_impostors_go_with_their_person_and_survive_a_repair(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    marker = vec(123.25, -77.5)
    with Gallery(path) as g:
        g.add("Alice", [Sample(vec(0, 0), "enc", "a.jpg", 50.0)])
        g.add("Bob", [Sample(vec(5, 5), "enc", "b.jpg", 50.0)])
        g.add_impostor("Alice", marker, "enc", "s1")
        g.add_impostor("Bob", vec(6, 6), "enc", "s2")
    repair(path)
    with Gallery(path) as g:
        assert g.matrix("enc").impostor_owner is not None
        assert len(g.matrix("enc").impostor_owner) == 2
        g.remove("Alice")
        m = g.matrix("enc")
        assert m.names == ["Bob"] and m.impostor_owner is not None
        assert m.impostor_owner.tolist() == [0]
    data = b"".join(p.read_bytes() for p in tmp_path.glob("g.db*") if "damaged" not in p.name)
    assert marker.astype("<f4").tobytes() not in data
