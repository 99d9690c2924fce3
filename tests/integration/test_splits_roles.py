"""The committed splits (data/splits.json) against the real shared faces: they match the
data, no person and no photo is in two roles, every person has a role."""

from __future__ import annotations

import hashlib
from pathlib import Path

from model_export.splits import ROLES, SOURCES, SPLITS_FILE, as_json, load, people_of, survey


def test_the_committed_file_is_what_the_data_gives(face_data: Path) -> None:
    import json

    assert json.loads(SPLITS_FILE.read_text()) == json.loads(json.dumps(as_json(survey(face_data))))


def test_no_person_and_no_photo_is_in_two_roles(face_data: Path) -> None:
    splits = load()
    seen: dict[str, str] = {}
    for role in ROLES:
        for key in splits.people(role):
            assert key not in seen, f"{key} is in {seen[key]} and {role}"
            seen[key] = role
    people = {k: v for s in SOURCES for k, v in people_of(face_data, s).items()}
    assert set(seen) == set(people)  # every person has exactly one role
    owner: dict[str, str] = {}
    for key, photos in people.items():
        for photo in photos:
            digest = hashlib.sha256(photo.read_bytes()).hexdigest()
            other = owner.setdefault(digest, seen[key])
            assert other == seen[key], f"{photo} is also in {other}"
    for group in splits.bound:  # the same picture under two names: one role
        assert len({seen[k] for k in group}) == 1, group
    assert {"lfw/Bart_Hendricks", "lfw/Ricky_Ray"} in [set(g) for g in splits.bound]


def test_the_protocol_folds_are_report_and_the_other_folds_calibrate_or_select(
    face_data: Path,
) -> None:
    from model_export.data import pair_people, read_pairs
    from model_export.splits import REPORT_FOLDS, protocol_pairs

    splits = load()
    pairs = protocol_pairs(face_data)
    assert {p.fold + 1 for p in pairs} == set(REPORT_FOLDS) and len(pairs) == 1800
    assert pair_people(pairs) <= splits.names("report", "lfw")
    every = read_pairs(face_data / "lfw_protocol" / "pairs_dev.txt", face_data / "lfw")
    others = pair_people([p for p in every if p.fold + 1 not in REPORT_FOLDS])
    bound_to_report = {
        k.split("/", 1)[1]
        for g in splits.bound
        if any(splits.role_of(k) == "report" for k in g)
        for k in g
    }  # the same picture as a report person's: report too (Gabrielle_Rose)
    assert len(others) > 800 and others & splits.names("report", "lfw") <= bound_to_report
    roles = {splits.role_of(f"lfw/{name}") for name in others - bound_to_report}
    assert roles == {"calibrate", "select"}
    several = [n for n in others if len(list((face_data / "lfw" / n).iterdir())) >= 4]
    # the point of releasing them: LFW people with several photos outside report
    assert sum(splits.role_of(f"lfw/{n}") == "select" for n in several) >= 40


def test_the_build_fits_on_calibrate_people_only(face_data: Path) -> None:
    from model_export.calibration import calibrate_pairs, calibration_sets, fitting_people

    splits = load()
    people, lfw_names = fitting_people(face_data, None, None)
    photos = [p for ps in people.values() for p in ps]
    splits.check(photos, "calibrate", face_data)
    assert {k.split("/")[0] for k in people} == {"lfw", "cfp"}  # two domains
    cal, chk, golden = calibration_sets(face_data / "lfw", lfw_names)
    splits.check([*cal, *chk, *golden], "calibrate", face_data)
    pairs = calibrate_pairs(people)
    splits.check([x for p in pairs for x in (p.left, p.right)], "calibrate", face_data)
    assert sum(p.same for p in pairs) == sum(not p.same for p in pairs) > 300


def test_training_learns_from_train_and_is_measured_on_select(face_data: Path) -> None:
    from model_export.train_data import split_people

    splits = load()
    split = split_people(face_data)
    splits.check([p for ps in split.train.values() for p in ps], "train", face_data)
    splits.check(split.val_images, "select", face_data)
    assert set(split.train) == set(splits.people("train"))
