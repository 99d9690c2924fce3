"""The split rules on a made-up data folder (the real data's file is checked in
tests/integration/test_splits_roles.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from model_export.splits import (
    RELEASED_SHARES,
    ROLES,
    SHARES,
    SplitError,
    Splits,
    Survey,
    _by_share,
    assign,
    key_of,
    protocol_pairs,
    survey,
)


def picture(path: Path, seed: int, shift: int = 0) -> None:
    rng = np.random.default_rng(seed)
    image = cv2.resize(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), (64, 64))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.clip(image.astype(int) + shift, 0, 255).astype(np.uint8))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "faces"
    for i in range(40):
        picture(root / "lfw" / f"P{i}" / f"P{i}_0001.jpg", seed=i)
    for i in range(10):
        for j in range(3):
            picture(root / "cfp" / f"C{i}" / f"frontal_0{j + 1}.jpg", seed=100 + 10 * i + j)
    picture(root / "lfw" / "Twin" / "Twin_0001.jpg", seed=5, shift=2)  # P5's picture again
    (root / "lfw" / "Copy").mkdir()
    (root / "lfw" / "Copy" / "Copy_0001.jpg").write_bytes(
        (root / "lfw" / "P7" / "P7_0001.jpg").read_bytes()
    )  # the same bytes under another name
    (root / "lfw_protocol").mkdir()
    (root / "lfw_protocol" / "pairs_dev.txt").write_text("1\t1\nP1\t1\t1\nP2\t1\tP3\t1\n")
    return root


def test_protocol_people_report_and_the_rest_by_their_share(data: Path) -> None:
    s = survey(data)
    roles = assign(s)
    assert s.protocol == {"lfw/P1", "lfw/P2", "lfw/P3"}
    assert {roles[k] for k in s.protocol} == {"report"}
    for key, role in roles.items():
        if key not in s.protocol and not any(key in g for g in s.bound):
            assert role == _by_share(key, SHARES[key.split("/")[0]])
    assert set(roles.values()) <= set(ROLES)


def test_only_the_report_folds_are_the_protocol_the_other_folds_calibrate_or_select(
    data: Path,
) -> None:
    lines = ["4\t1"] + [
        f"P{2 * f + 10}\t1\t1\nP{2 * f + 11}\t1\tP{2 * f + 30}\t1" for f in range(4)
    ]
    (data / "lfw_protocol" / "pairs_dev.txt").write_text("\n".join(lines) + "\n")
    s = survey(data)
    assert s.protocol == {"lfw/P10", "lfw/P11", "lfw/P30", "lfw/P12", "lfw/P13", "lfw/P32",
                          "lfw/P14", "lfw/P15", "lfw/P34"}  # fmt: skip
    assert s.released == {"lfw/P16", "lfw/P17", "lfw/P36"}
    roles = assign(s)
    for key in s.released:
        assert roles[key] == _by_share(key, RELEASED_SHARES) in ("calibrate", "select")
    pairs = protocol_pairs(data)
    assert [p.fold for p in pairs] == [0, 0, 1, 1, 2, 2]  # fold 4 is not the protocol
    assert {p.left.parent.name for p in pairs} == {"P10", "P11", "P12", "P13", "P14", "P15"}


def test_released_shares_split_many_people_near_half() -> None:
    picks = [_by_share(f"lfw/Person_{i}", RELEASED_SHARES) for i in range(4000)]
    assert set(picks) == {"calibrate", "select"}
    assert abs(picks.count("select") / len(picks) - 0.5) < 0.03


def test_the_same_picture_under_two_names_binds_them(data: Path) -> None:
    s = survey(data)
    assert frozenset({"lfw/P5", "lfw/Twin"}) in s.bound
    assert frozenset({"lfw/P7", "lfw/Copy"}) in s.bound
    assert len(s.bound) == 2  # different pictures are never bound
    roles = assign(s)
    assert roles["lfw/P5"] == roles["lfw/Twin"] and roles["lfw/P7"] == roles["lfw/Copy"]


def test_a_bound_group_takes_its_strictest_role() -> None:
    people = {"lfw/A": [], "lfw/B": [], "lfw/C": []}
    s = Survey(people, frozenset({"lfw/A"}), [frozenset({"lfw/A", "lfw/B"})])  # type: ignore[arg-type]
    roles = assign(s)
    assert roles["lfw/A"] == roles["lfw/B"] == "report"


def test_shares_split_many_people_near_their_fractions() -> None:
    keys = [f"cfp/Person_{i}" for i in range(4000)]
    counts = {role: 0 for role in ROLES}
    for key in keys:
        counts[_by_share(key, SHARES["cfp"])] += 1
    for role, share in SHARES["cfp"].items():
        assert abs(counts[role] / len(keys) - share) < 0.03, (role, counts)
    assert (
        abs(sum(SHARES["lfw"].values()) - 1) < 1e-9 and abs(sum(SHARES["cfp"].values()) - 1) < 1e-9
    )


def test_a_consumer_reading_outside_its_role_is_stopped(tmp_path: Path) -> None:
    splits = Splits({"train": frozenset({"lfw/A"}), "calibrate": frozenset({"lfw/B"}),
                     "select": frozenset(), "report": frozenset({"cfp/C"})}, [])  # fmt: skip
    root = tmp_path
    splits.check([root / "lfw" / "B" / "B_0001.jpg"], "calibrate", root)
    with pytest.raises(SplitError, match="lfw/A is in the train split, not in calibrate"):
        splits.check(
            [root / "lfw" / "B" / "x.jpg", root / "lfw" / "A" / "y.jpg"], "calibrate", root
        )
    with pytest.raises(SplitError, match="lfw/Z is in the no split"):
        splits.check([root / "lfw" / "Z" / "z.jpg"], "report", root)
    assert splits.people("report") == ["cfp/C"] and splits.names("calibrate", "lfw") == {"B"}
    assert splits.role_of("lfw/A") == "train" and splits.role_of("lfw/Q") is None
    assert key_of(root / "cfp" / "C" / "frontal_01.jpg", root) == "cfp/C"
    with pytest.raises(SplitError, match="unknown role 'test'"):
        splits.people("test")
