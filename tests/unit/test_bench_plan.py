"""The benchmarks read report people only (bench/report_data.py), on a made-up folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import report_data

from model_export.data import Pair
from model_export.splits import ROLES, SplitError, Splits

LFW = {  # name -> photos
    "Ann": 6,
    "Bob": 5,
    "Cat": 4,
    "Dan": 1,
    "Eve": 2,
    "Fit": 9,  # the most photographed, but a train person
    "Gus": 1,  # calibrate
}
CFP = ["Hal", "Ida", "Jon", "Kim", "Lea"]  # Lea: select


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name, count in LFW.items():
        (tmp_path / "lfw" / name).mkdir(parents=True)
        for i in range(1, count + 1):
            (tmp_path / "lfw" / name / f"{name}_{i:04d}.jpg").write_bytes(b"")
    for name in CFP:
        (tmp_path / "cfp" / name).mkdir(parents=True)
        for i in range(1, 11):
            (tmp_path / "cfp" / name / f"frontal_{i:02d}.jpg").write_bytes(b"")
        for i in range(1, 5):
            (tmp_path / "cfp" / name / f"profile_{i:02d}.jpg").write_bytes(b"")
    return tmp_path


@pytest.fixture
def split() -> Splits:
    roles = {role: frozenset[str]() for role in ROLES}
    roles["report"] = frozenset(
        [f"lfw/{n}" for n in ("Ann", "Bob", "Cat", "Dan", "Eve")]
        + [f"cfp/{n}" for n in ("Hal", "Ida", "Jon", "Kim")]
    )
    roles["train"] = frozenset({"lfw/Fit"})
    roles["calibrate"] = frozenset({"lfw/Gus"})
    roles["select"] = frozenset({"cfp/Lea"})
    return Splits(roles, [])


def people_in(plan: report_data.OpenSetPlan) -> set[str]:
    return set(plan.enrolled) | set(plan.strangers)


def test_the_open_set_takes_report_people_only(root: Path, split: Splits) -> None:
    plans = report_data.report_plans(
        root, split, people=2, strangers=10, cfp_people=2, cfp_strangers=10
    )
    lfw, cfp = plans["lfw"], plans["cfp"]
    # the most photographed report people are enrolled; Fit (train) has more photos
    assert list(lfw.enrolled) == ["Ann", "Bob"]
    assert people_in(lfw) == {"Ann", "Bob", "Cat", "Dan", "Eve"}
    assert people_in(cfp) == {"Hal", "Ida", "Jon", "Kim"}
    assert not set(lfw.enrolled) & set(lfw.strangers)
    assert not set(cfp.enrolled) & set(cfp.strangers)
    # every photo of every plan is a report person's
    split.check([p for plan in plans.values() for p in plan.photos()], "report", root)


def test_the_plans_shapes(root: Path, split: Splits) -> None:
    plans = report_data.report_plans(
        root, split, people=2, strangers=2, cfp_people=2, cfp_strangers=1
    )
    lfw, cfp = plans["lfw"], plans["cfp"]
    assert lfw.probes() == (6 - 3) + (5 - 3) and len(lfw.strangers) == 2
    assert all(len(ps) == 1 for ps in lfw.strangers.values())  # one photo per LFW stranger
    # CFP: frontal photos only, all of a stranger's
    assert all("frontal" in p.name for p in cfp.photos())
    assert cfp.probes() == 2 * 7 and cfp.stranger_photos() == 10
    # CFP profiles: the same people, enrolled from the same frontal photos, searched with
    # their 4 profiles each
    prof = plans["cfp-profile"]
    assert set(prof.enrolled) == set(cfp.enrolled) and set(prof.strangers) == set(cfp.strangers)
    assert all(prof.enrolled[n][:3] == cfp.enrolled[n][:3] for n in cfp.enrolled)
    assert prof.probes() == 2 * 4 and prof.stranger_photos() == 4
    searched = [p for ps in prof.enrolled.values() for p in ps[3:]]
    assert all("profile" in p.name for p in searched + next(iter(prof.strangers.values())))


def test_a_photo_of_anyone_outside_report_stops_the_run(root: Path, split: Splits) -> None:
    ann, fit = root / "lfw" / "Ann" / "Ann_0001.jpg", root / "lfw" / "Fit" / "Fit_0001.jpg"
    report_data.report_pairs(
        [Pair(1, ann, root / "lfw" / "Bob" / "Bob_0001.jpg", False)], split, root
    )
    with pytest.raises(SplitError, match="lfw/Fit is in the train split"):
        report_data.report_pairs([Pair(1, ann, fit, False)], split, root)
    with pytest.raises(SplitError, match="cfp/Lea is in the select split"):
        report_data.check(split, [root / "cfp" / "Lea" / "frontal_01.jpg"], root)


def test_a_plan_is_checked_even_if_the_splits_lie(root: Path, split: Splits) -> None:
    # a report role naming a person who is also somewhere else cannot happen in a good
    # file; a plan built from names the check rejects must stop, not run
    class Lying(Splits):
        def names(self, role: str, source: str) -> set[str]:
            return super().names(role, source) | ({"Fit"} if source == "lfw" else set())

    lying = Lying(split.roles, [])
    with pytest.raises(SplitError, match="lfw/Fit"):
        report_data.report_plans(root, lying, people=2, strangers=10, cfp_people=0)


def test_the_clip_distractors_are_report_people(root: Path, split: Splits) -> None:
    chosen = report_data.clip_distractors(root, split, 3)
    assert len(chosen) == 3
    assert {p.parent.name for p in chosen} <= {"Ann", "Bob", "Cat", "Dan", "Eve"}


def test_verification_pairs_are_a_given_file_whole_or_the_protocols_report_folds(
    tmp_path: Path,
) -> None:
    (tmp_path / "lfw_protocol").mkdir()
    lines = ["4\t1"] + [f"A{f}\t1\t2\nB{f}\t1\tC{f}\t1" for f in range(4)]
    shared = tmp_path / "lfw_protocol" / "pairs_dev.txt"
    shared.write_text("\n".join(lines) + "\n")
    named, pairs = report_data.verification_pairs(tmp_path, None)
    assert named == shared and sorted({p.fold for p in pairs}) == [0, 1, 2]  # folds 1-3
    mine = tmp_path / "mine.txt"
    mine.write_text("\n".join(lines) + "\n")
    named, pairs = report_data.verification_pairs(tmp_path, mine)
    assert named == mine and sorted({p.fold for p in pairs}) == [0, 1, 2, 3]  # whole
