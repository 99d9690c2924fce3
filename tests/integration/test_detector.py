"""The bundle's face detector on real photos: it finds the face in LFW photos and does
not see faces in scenes without people."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.bundle import load_bundle
from edge.detect import make_detector
from edge.images import read_image
from model_export.data import list_images

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_finds_a_face_in_995_permille_of_lfw(bundle_dir: Path, face_data: Path) -> None:
    bundle = load_bundle(bundle_dir)
    detector = make_detector(bundle.manifest.detector, bundle.root)
    photos = list_images(face_data / "lfw")
    missed = [p for p in photos if not detector.detect(read_image(p))]
    assert len(photos) > 6000
    assert len(missed) <= 0.005 * len(photos), f"{len(missed)} missed, e.g. {missed[:3]}"


def test_at_most_one_false_face_on_nonfaces(bundle_dir: Path, face_data: Path) -> None:
    bundle = load_bundle(bundle_dir)
    detector = make_detector(bundle.manifest.detector, bundle.root)
    photos = list_images(face_data / "nonfaces")
    false_faces = sum(len(detector.detect(read_image(p))) for p in photos)
    assert len(photos) >= 90
    assert false_faces <= 1
