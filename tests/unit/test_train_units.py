"""``model-export train``'s parts on tiny fake data: augmentation, splits and pairs,
batches, checkpoints, options, the student network's size and the trained-encoder hooks
of ``model-export build``. No face detection runs (``prepare`` needs the real photos).

``model_export.train`` imports Keras (through ``model_export.student``), so every test
that touches it or its loop's parts (batches, checkpoints, run record, the teacher's cut)
takes the ``train_mod`` fixture, which skips without TensorFlow; the rest
(``model_export.train_options`` included) is numpy and OpenCV.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

from edge.align import ARCFACE_112
from model_export import batches as batches_mod
from model_export import run_record, teacher_cut
from model_export import train_options as options
from model_export.augment import Augment
from model_export.build import held_out_pairs
from model_export.calibration import check_held_out, trained_people
from model_export.checkpoints import Checkpoints, TrainState
from model_export.data import DataError, Pair, pair_people, read_pairs
from model_export.encoders import EncoderError, resolve_encoder
from model_export.train_data import (
    ARCFACE,
    DLIB_CHIP,
    Prepared,
    Split,
    generate_pairs,
    split_people,
)

SIZE, PAD, WIDE = ARCFACE.size, ARCFACE.pad, ARCFACE.wide

# Every strength at zero: the warp is a pure integer translation by PAD and the colour
# factors are exactly 1, so the result is the centre crop (see test_augment_identity).
STILL = {
    "scale": 0.0,
    "rotate": 0.0,
    "shift": 0.0,
    "brightness": 0.0,
    "contrast": 0.0,
    "saturation": 0.0,
    "grey": 0.0,
    "blur": 0.0,
}


@pytest.fixture(scope="module")
def train_mod() -> ModuleType:
    pytest.importorskip("tensorflow")
    from model_export import train

    return train


def noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def person(root: Path, name: str, n: int) -> list[Path]:
    """``root/Name/Name_0001.jpg`` ... (LFW naming), small noise JPEGs."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(1, n + 1):
        path = folder / f"{name}_{i:04d}.jpg"
        assert cv2.imwrite(str(path), noise((8, 8, 3), seed=i))
        paths.append(path)
    return paths


def names_of(pairs: list[Pair]) -> set[str]:
    return pair_people(pairs)


# ---------------------------------------------------------------- Augment


def test_constants() -> None:
    assert (SIZE, PAD, WIDE) == (112, 16, 144)
    # the wide template is the ArcFace one moved by the border
    wide = ARCFACE.wide_template()
    assert wide[0] == pytest.approx([ARCFACE_112[0][0] + 16, ARCFACE_112[0][1] + 16])
    assert len(wide) == 5
    assert ARCFACE.alignment()["template"][2] == pytest.approx(list(ARCFACE_112[2]))


def test_dlib_chip_template_is_mirror_symmetric() -> None:
    """Mirror augmentation and mirror averaging flip the chip about its middle column
    (x -> size - 1 - x): the template must map onto itself, eyes and mouth corners
    swapped, nose in place."""
    t = np.array(DLIB_CHIP.template)
    mirrored = t.copy()
    mirrored[:, 0] = DLIB_CHIP.size - 1 - t[:, 0]
    assert mirrored[[1, 0, 2, 4, 3]] == pytest.approx(t)
    assert DLIB_CHIP.wide == 190 and DLIB_CHIP.alignment()["size"] == 150


def test_augment_shape_and_dtype() -> None:
    out, flipped = Augment()(noise((WIDE, WIDE, 3)), np.random.default_rng(1))
    assert out.shape == (112, 112, 3)
    assert out.dtype == np.uint8
    assert isinstance(flipped, bool)


def test_augment_centre_is_the_middle() -> None:
    wide = noise((WIDE, WIDE, 3))
    centre = Augment().centre(wide)
    assert centre.shape == (112, 112, 3)
    assert np.array_equal(centre, wide[16:128, 16:128])


def test_augment_identity() -> None:
    """With every strength 0 and no flip, the warp matrix is [[1, 0, 16], [0, 1, 16]]
    (an exact integer translation: bilinear weights 1 and 0) and every colour factor is
    exactly 1. What can still differ: ``(img - mean) * 1 + mean`` is float32 arithmetic,
    which may land a hair below an integer, and ``astype(uint8)`` truncates, so a pixel
    may come out one grey level low. Hence the tolerance of 1 (in practice it is exact)."""
    aug = Augment(flip=0.0, **STILL)
    for seed in range(3):
        wide = noise((WIDE, WIDE, 3), seed)
        out, flipped = aug(wide, np.random.default_rng(seed))
        assert flipped is False
        diff = out.astype(int) - aug.centre(wide).astype(int)
        assert np.abs(diff).max() <= 1
        assert (diff != 0).mean() < 0.01


def test_augment_flip_is_the_mirror_of_the_centre() -> None:
    """The mirror is an index reversal of the whole wide crop, and the border is the same
    on both sides (16 | 112 | 16), so the centre crop of the mirror is exactly the mirror
    of the centre crop: no half-pixel shift (that would come from mirroring by a warp
    about x = 72 instead of 71.5). Tolerance 1 for the float round trip, as above."""
    aug = Augment(flip=1.0, **STILL)
    wide = noise((WIDE, WIDE, 3), 5)
    out, flipped = aug(wide, np.random.default_rng(0))
    assert flipped is True
    mirror = aug.centre(wide)[:, ::-1].astype(int)
    assert np.abs(out.astype(int) - mirror).max() <= 1
    # and it is not just the unflipped crop (noise is not symmetric)
    assert np.abs(out.astype(int) - aug.centre(wide).astype(int)).mean() > 20


def test_augment_same_seed_same_output() -> None:
    aug = Augment()  # every augmentation on
    wide = noise((WIDE, WIDE, 3), 3)
    a, fa = aug(wide, np.random.default_rng(42))
    b, fb = aug(wide, np.random.default_rng(42))
    assert fa == fb
    assert np.array_equal(a, b)
    # different seeds give different crops (the jitter is not silently off)
    c, _ = aug(wide, np.random.default_rng(43))
    assert not np.array_equal(a, c)


def test_augment_reports_the_flip() -> None:
    wide = noise((WIDE, WIDE, 3))
    flags = [Augment(**STILL)(wide, np.random.default_rng(s))[1] for s in range(40)]
    assert set(flags) == {True, False}  # flip=0.5: both happen in 40 draws
    for s, flag in enumerate(flags[:6]):
        out, _ = Augment(**STILL)(wide, np.random.default_rng(s))
        expected = Augment().centre(wide)
        if flag:
            expected = expected[:, ::-1]
        assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1


# ---------------------------------------------------------------- generate_pairs


def fake_people(counts: dict[str, int]) -> dict[str, list[Path]]:
    return {n: [Path(n) / f"{n}_{i:04d}.jpg" for i in range(1, c + 1)] for n, c in counts.items()}


def test_generate_pairs() -> None:
    counts = {f"P{i:02d}": 1 + i % 5 for i in range(15)}  # 1 to 5 photos each
    people = fake_people(counts)
    pairs = generate_pairs(people, folds=3, seed=1)
    # every two consecutive photos give a same pair: n // 2 per person
    assert sum(p.same for p in pairs) == sum(c // 2 for c in counts.values())
    fold_people: list[set[str]] = []
    for fold in range(3):
        in_fold = [p for p in pairs if p.fold == fold]
        same = [p for p in in_fold if p.same]
        diff = [p for p in in_fold if not p.same]
        assert len(same) == len(diff) > 0
        for p in same:
            assert p.left.parent == p.right.parent
            assert p.left != p.right
        for p in diff:
            assert p.left.parent.name != p.right.parent.name
        for p in in_fold:
            assert p.left in people[p.left.parent.name]
            assert p.right in people[p.right.parent.name]
        fold_people.append(names_of(in_fold))
    for i in range(3):
        for j in range(i + 1, 3):
            assert not fold_people[i] & fold_people[j], "a person in two folds"
    assert generate_pairs(people, folds=3, seed=1) == pairs  # reproducible


def test_generate_pairs_few_people() -> None:
    """Two people with two photos each, 5 folds: folds 0 and 1 hold one person each."""
    pairs = generate_pairs(fake_people({"A": 2, "B": 2}))
    assert sum(p.same for p in pairs) == 2
    assert sum(not p.same for p in pairs) == 2


# ---------------------------------------------------------------- split_people


def lfw_tree(root: Path) -> None:
    for name, n in {
        "Alice": 2,
        "Bob": 2,
        "Carol": 1,
        "Dan": 1,
        "Eve": 2,
        "Frank": 2,
        "Gina": 1,
        "Hank": 3,
    }.items():
        person(root, name, n)


PAIRS_TXT = "2\t1\nAlice\t1\t2\nCarol\t1\tDan\t1\nEve\t1\t2\nGina\t1\tHank\t3\n"


def test_split_with_lfw_pairs(tmp_path: Path) -> None:
    root = tmp_path / "lfw"
    lfw_tree(root)
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text(PAIRS_TXT)

    split = split_people(root, pairs_file, folds=(2,))
    assert split.val_pairs == [
        Pair(1, root / "Eve/Eve_0001.jpg", root / "Eve/Eve_0002.jpg", True),
        Pair(1, root / "Gina/Gina_0001.jpg", root / "Hank/Hank_0003.jpg", False),
    ]
    assert sorted(split.train) == ["Alice", "Bob", "Carol", "Dan", "Frank"]
    assert split.train["Alice"] == [root / "Alice/Alice_0001.jpg", root / "Alice/Alice_0002.jpg"]
    assert split.val_images == sorted(
        [root / f for f in ("Eve/Eve_0001.jpg", "Eve/Eve_0002.jpg", "Gina/Gina_0001.jpg")]
        + [root / "Hank/Hank_0003.jpg"]
    )

    both = split_people(root, pairs_file, folds=(1, 2))
    assert [p.fold for p in both.val_pairs] == [0, 0, 1, 1]
    assert sorted(both.train) == ["Bob", "Frank"]
    assert not set(both.train) & names_of(both.val_pairs)


def test_prepared_faces_key_follows_the_code_that_makes_the_chips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache of prepared chips is found again only while the photo reading (the black
    border of ``model_export.data``), detection and alignment code are unchanged."""
    import model_export.data
    from model_export import train_data

    sources = train_data.chip_sources()
    assert Path(model_export.data.__file__) in sources
    assert {p.name for p in sources} >= {"align.py", "yunet.py", "images.py", "faces.py"}
    root = tmp_path / "lfw"
    lfw_tree(root)
    split = split_people(root, None)
    code = tmp_path / "data.py"
    code.write_text("BORDER = 0.30\n")
    monkeypatch.setattr(train_data, "chip_sources", lambda: [code])
    key = train_data._key(split, None, ARCFACE)
    assert train_data._key(split, None, ARCFACE) == key
    code.write_text("BORDER = 0.25\n")
    assert train_data._key(split, None, ARCFACE) != key


def test_split_with_lfw_pairs_errors(tmp_path: Path) -> None:
    root = tmp_path / "lfw"
    lfw_tree(root)
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text(PAIRS_TXT)
    with pytest.raises(DataError, match="no pairs in folds"):
        split_people(root, pairs_file, folds=(3,))
    (root / "Hank" / "Hank_0003.jpg").unlink()
    with pytest.raises(DataError, match="1 pair photos missing"):
        split_people(root, pairs_file, folds=(2,))
    with pytest.raises(DataError, match="not a folder"):
        split_people(tmp_path / "nowhere", pairs_file)


def test_split_without_pairs(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    for i in range(20):
        person(root, f"Multi{i:02d}", 2)
    for i in range(3):
        person(root, f"Single{i}", 1)
    split = split_people(root, val_fraction=0.5, seed=3)
    held = names_of(split.val_pairs)
    # half of the 20 people with two photos; the single-photo people always train
    assert len(held) == 10
    assert all(n.startswith("Multi") for n in held)
    assert sorted(split.train) == sorted(
        [f"Multi{i:02d}" for i in range(20) if f"Multi{i:02d}" not in held]
        + ["Single0", "Single1", "Single2"]
    )
    assert not set(split.train) & held
    # 10 held people with 2 photos: 10 same pairs, 10 different ones, 2 people per fold
    assert sum(p.same for p in split.val_pairs) == 10
    assert sum(not p.same for p in split.val_pairs) == 10
    assert Counter(p.fold for p in split.val_pairs) == {f: 4 for f in range(5)}
    assert "10 people" in split.how
    assert split_people(root, val_fraction=0.5, seed=3) == split  # stable


def test_split_without_pairs_small(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    for i in range(6):
        person(root, f"P{i}", 2)
    split = split_people(root)  # 20 % of 6 rounds to 1, at least 2 are held out
    held = names_of(split.val_pairs)
    assert len(held) == 2
    assert len(split.train) == 4
    assert not set(split.train) & held


def test_split_too_few_people(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    for i in range(3):  # 2 would be held out, 2 more must remain to train
        person(root, f"P{i}", 2)
    person(root, "Lonely", 1)
    with pytest.raises(DataError, match=r"too few people with two or more photos \(3\)"):
        split_people(root)
    with pytest.raises(DataError, match="no person folders"):
        split_people(tmp_path / "faces" / "Lonely")  # a folder of photos, not of people


# ---------------------------------------------------------------- JSON pairs


def test_json_pairs_round_trip(tmp_path: Path, train_mod: ModuleType) -> None:
    root = tmp_path / "data"
    a, b = person(root, "Ann", 2)
    (c,) = person(root, "Cy", 1)
    pairs = [Pair(0, a, b, True), Pair(0, a, c, False), Pair(3, c, b, False)]
    split = Split({"Other": []}, pairs, "by hand")
    path = tmp_path / "val_pairs.json"
    run_record.write_pairs(path, split, root)

    raw = json.loads(path.read_text())
    assert raw["how"] == "by hand"
    assert raw["pairs"][0] == [0, "Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg", True]  # relative
    assert read_pairs(path, root) == pairs
    # the same file read against another root points there
    assert read_pairs(path, tmp_path / "x")[2] == Pair(
        3, tmp_path / "x/Cy/Cy_0001.jpg", tmp_path / "x/Ann/Ann_0002.jpg", False
    )


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '{"rows": []}',
        '{"pairs": 5}',
        '[[0, "a", "b", true]]',
        '{"pairs": [[0, "a", "b"]]}',
        '{"pairs": [["x", "a", "b", true]]}',
        '{"pairs": [[0, 1, 2, true]]}',
    ],
)
def test_json_pairs_malformed(tmp_path: Path, text: str) -> None:
    path = tmp_path / "pairs.json"
    path.write_text(text)
    with pytest.raises(DataError, match="not a pairs file"):
        read_pairs(path, tmp_path)


def test_json_pairs_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read pairs file"):
        read_pairs(tmp_path / "none.json", tmp_path)


# ---------------------------------------------------------------- batches


def fake_prepared(counts: list[int], teacher: bool) -> Prepared:
    """Person i has counts[i] photos. Row r's teacher vector is (r, 0, 0) and its
    mirror's (r, 1, 0), so a target tells which photo and which version it came from."""
    labels = np.array([i for i, c in enumerate(counts) for _ in range(c)], np.int32)
    n = len(labels)
    t = t_flip = None
    if teacher:
        t = np.zeros((n, 3), np.float32)
        t[:, 0] = np.arange(n)
        t_flip = t.copy()
        t_flip[:, 1] = 1
    return Prepared(
        wide=noise((n, WIDE, WIDE, 3), 9),
        labels=labels,
        names=[f"P{i}" for i in range(len(counts))],
        teacher=t,
        teacher_flip=t_flip,
        val=np.zeros((0, SIZE, SIZE, 3), np.uint8),
        val_paths=[],
    )


def test_batches_with_teacher(tmp_path: Path, train_mod: ModuleType) -> None:
    counts = [1, 2, 5, 3, 3, 4]  # 6 people, 18 photos
    data = fake_prepared(counts, teacher=True)
    opts = train_mod.TrainOptions(
        data=tmp_path, out=tmp_path / "out", people_per_batch=3, images_per_person=4
    )
    aug = Augment(**STILL)  # flip 0.5, nothing else: each face is a (mirrored) centre crop
    out = list(batches_mod.batches(data, opts, np.random.default_rng(0), aug))
    assert len(out) == 2  # 6 people // 3
    seen: Counter[int] = Counter()
    flips = set()
    for faces, labels, targets in out:
        assert faces.shape == (12, SIZE, SIZE, 3) and faces.dtype == np.uint8
        assert labels.shape == (12,) and targets.shape == (12, 3)
        assert targets.dtype == np.float32
        per_label = Counter(labels.tolist())
        assert len(per_label) == 3 and set(per_label.values()) == {4}
        seen.update(per_label.keys())
        rows = targets[:, 0].astype(int)
        for j, row in enumerate(rows):
            flipped = bool(targets[j, 1])
            flips.add(flipped)
            # the target is the teacher's vector of this very photo, mirrored or not
            source = data.teacher_flip if flipped else data.teacher
            assert data.teacher is not None and data.teacher_flip is not None
            assert np.array_equal(targets[j], source[row])
            assert data.labels[row] == labels[j]
            expected = aug.centre(data.wide[row])
            if flipped:
                expected = expected[:, ::-1]
            assert np.abs(faces[j].astype(int) - expected.astype(int)).max() <= 1
        for label in per_label:
            used = Counter(rows[labels == label].tolist())
            k = counts[label]
            if k == 1:
                assert list(used.values()) == [4]  # K copies of the one photo
            elif k >= 4:
                assert sorted(used.values()) == [1, 1, 1, 1]  # K different photos
            else:  # cycles through a permutation
                assert sorted(used.values()) == sorted([len(range(i, 4, k)) for i in range(k)])
    assert seen == {i: 1 for i in range(6)}  # every person once per epoch
    assert flips == {True, False}


def test_batches_without_teacher(tmp_path: Path, train_mod: ModuleType) -> None:
    data = fake_prepared([2, 2, 2, 1, 3], teacher=False)
    opts = train_mod.TrainOptions(
        data=tmp_path, out=tmp_path / "out", people_per_batch=3, images_per_person=4
    )
    out = list(batches_mod.batches(data, opts, np.random.default_rng(1), Augment()))
    assert len(out) == 1  # 5 people: one full batch, the rest waits for the next epoch
    faces, labels, targets = out[0]
    assert faces.shape == (12, SIZE, SIZE, 3)
    assert targets.shape == (12, 0)
    assert set(Counter(labels.tolist()).values()) == {4}
    # fewer people than one batch: no batch at all
    few = fake_prepared([2, 2], teacher=False)
    assert list(batches_mod.batches(few, opts, np.random.default_rng(1), Augment())) == []


def test_batches_label_mixed_faces_as_no_one(tmp_path: Path, train_mod: ModuleType) -> None:
    """With --mixup every blended face is labelled NO_IDENTITY (left out of the triplet
    loss); the others keep their person, the data's own labels are untouched."""
    data = fake_prepared([2, 2, 2, 1, 3], teacher=False)
    before = data.labels.copy()
    opts = train_mod.TrainOptions(
        data=tmp_path, out=tmp_path / "out", people_per_batch=5, images_per_person=4, mixup=0.5
    )
    _, labels, _ = next(batches_mod.batches(data, opts, np.random.default_rng(3), Augment()))
    mixed = labels == batches_mod.NO_IDENTITY
    assert 0 < mixed.sum() < len(labels)
    assert set(Counter(labels[~mixed].tolist()).values()) <= {1, 2, 3, 4}
    assert np.array_equal(data.labels, before)


def test_batches_shuffle_people(tmp_path: Path, train_mod: ModuleType) -> None:
    data = fake_prepared([1] * 6, teacher=False)
    opts = train_mod.TrainOptions(
        data=tmp_path, out=tmp_path / "out", people_per_batch=3, images_per_person=2
    )
    first = set()
    for seed in range(5):
        _, labels, _ = next(batches_mod.batches(data, opts, np.random.default_rng(seed), Augment()))
        first.add(frozenset(labels.tolist()))
    assert len(first) > 1  # who shares a batch changes with the seed (every epoch)


# ---------------------------------------------------------------- checkpoints


def tiny_model(keras: ModuleType) -> object:
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


def test_checkpoints_round_trip(tmp_path: Path, train_mod: ModuleType) -> None:
    keras = pytest.importorskip("keras")
    model = tiny_model(keras)
    opt = keras.optimizers.AdamW(learning_rate=0.01, weight_decay=1e-3)
    before = [w.copy() for w in model.get_weights()]
    grads = [keras.ops.ones_like(v) for v in model.trainable_variables]
    opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
    assert int(opt.iterations) == 1
    assert not np.allclose(model.get_weights()[0], before[0])  # the step moved them

    ckpt = Checkpoints(tmp_path / "ckpt")
    assert ckpt.load(tiny_model(keras), keras.optimizers.AdamW()) is None  # nothing yet
    rng = np.random.default_rng(7)
    rng.random(3)
    state = TrainState(
        epoch=3,
        seconds=12.5,
        rng=rng.bit_generator.state,
        last_validation={"accuracy_mean": 0.75, "pairs": 20},
        log=((1, 10, 5.0, 0.002), (2, 10, 5.1, 0.001)),
    )
    ckpt.save(model, opt, state)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["epoch-0003", "state.json"]
    ckpt.save(model, opt, replace(state, epoch=4))  # the next epoch replaces the previous one
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["epoch-0004", "state.json"]
    assert json.loads((tmp_path / "ckpt" / "state.json").read_text())["checkpoint"] == "epoch-0004"
    ckpt.save(model, opt, state)

    fresh = tiny_model(keras)
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
    fresh_opt = keras.optimizers.AdamW(learning_rate=0.01, weight_decay=1e-3)
    loaded = Checkpoints(tmp_path / "ckpt").load(fresh, fresh_opt)
    assert loaded == state
    for a, b in zip(fresh.get_weights(), model.get_weights(), strict=True):
        assert np.array_equal(a, b)
    assert int(fresh_opt.iterations) == 1
    assert len(fresh_opt.variables) == len(opt.variables) > 2  # moments, not only counters
    for a, b in zip(fresh_opt.variables, opt.variables, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b)), a.path
    # the random stream continues where it stopped
    resumed = np.random.default_rng(0)
    assert loaded is not None and loaded.rng is not None
    resumed.bit_generator.state = loaded.rng
    assert np.array_equal(resumed.random(4), rng.random(4))


def test_train_state_after_and_record() -> None:
    """The loop's state moves on one epoch at a time, and its JSON form (state.json, as the
    untyped dict before it wrote) reads back equal."""
    start = TrainState()
    assert (start.epoch, start.seconds, start.rng, start.last_validation, start.log) == (
        0,
        0.0,
        None,
        {},
        (),
    )
    one = start.after(10.0, {"state": 1}, {"accuracy_mean": 0.5}, [1, 10, 10.0])
    two = one.after(5.5, {"state": 2}, {"accuracy_mean": 0.6}, [2, 10, 5.5])
    assert (two.epoch, two.seconds, two.rng) == (2, 15.5, {"state": 2})
    assert two.last_validation == {"accuracy_mean": 0.6}
    assert two.log == ((1, 10, 10.0), (2, 10, 5.5))
    assert start.epoch == 0 and one.epoch == 1  # frozen: each epoch a new state
    record = json.loads(json.dumps(two.record()))
    assert record == {
        "epoch": 2,
        "seconds": 15.5,
        "rng": {"state": 2},
        "last_validation": {"accuracy_mean": 0.6},
        "log": [[1, 10, 10.0], [2, 10, 5.5]],
    }
    assert TrainState.from_record(record) == two
    assert TrainState.from_record({"epoch": 1}) == TrainState(epoch=1)


def test_checkpoints_other_optimizer(tmp_path: Path, train_mod: ModuleType) -> None:
    keras = pytest.importorskip("keras")
    model = tiny_model(keras)
    opt = keras.optimizers.AdamW(learning_rate=0.01)
    opt.build(model.trainable_variables)
    ckpt = Checkpoints(tmp_path)
    ckpt.save(model, opt, TrainState(epoch=1))
    with pytest.raises(train_mod.TrainError, match="optimizer does not match"):
        ckpt.load(tiny_model(keras), keras.optimizers.SGD(learning_rate=0.01))


# ---------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"loss": "hinge"}, "--loss hinge"),
        ({"loss": "distill"}, "--loss distill needs --teacher"),
        ({"loss": "both"}, "--loss both needs --teacher"),
        ({"mining": "hardest"}, "--mining hardest"),
        ({"distill": "cosine"}, "--distill cosine"),
        ({"people_per_batch": 1}, "at least 2 people"),
        ({"images_per_person": 1}, "2 photos per person"),
        ({"epochs": 0}, "--epochs"),
        ({"refit": True}, "--refit, --scale and --stem-stride need --init teacher"),
        ({"scale": 2}, "need --init teacher"),
        ({"stem_stride": 2}, "need --init teacher"),
    ],
)
def test_check_options_rejects(tmp_path: Path, change: dict[str, object], message: str) -> None:
    base = options.TrainOptions(data=tmp_path, out=tmp_path / "out")
    options.check_options(base)  # the defaults are fine (triplet, no teacher)
    with pytest.raises(options.TrainError, match=message):
        options.check_options(replace(base, **change))


def test_check_options_teacher(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    opts = options.TrainOptions(data=tmp_path, out=tmp_path / "out", teacher=bundle)
    assert opts.resolved_loss() == "both"
    with pytest.raises(options.TrainError, match=r"--teacher .*no manifest\.json"):
        options.check_options(opts)
    (bundle / "manifest.json").write_text("{}")
    options.check_options(opts)
    options.check_options(replace(opts, loss="distill", distill="distance"))
    assert replace(opts, teacher=None).resolved_loss() == "triplet"
    assert replace(opts, loss="triplet").resolved_loss() == "triplet"


@pytest.mark.parametrize(
    "change",
    [
        {"drop_blocks": ("conv_11",)},
        {"drop_blocks": ()},
        {"scale": 2},
        {"stem_stride": 2},
    ],
)
def test_chain_options_rejected_for_a_cut_of_dlib(
    tmp_path: Path, train_mod: ModuleType, change: dict[str, object]
) -> None:
    """Options that shape a cut of a chain (SFace) are errors with dlib's ResNet as the
    teacher, not silently ignored; left at their defaults they pass the check (made before
    any data is prepared); --stem-kernel is dlib's only."""
    opts = options.TrainOptions(data=tmp_path, out=tmp_path / "out", init="teacher", keep=0.5)
    with pytest.raises(options.TrainError, match="a cut of dlib's ResNet takes --keep"):
        teacher_cut.check_cut(replace(opts, **change), "dlib")
    teacher_cut.check_cut(opts, "dlib")
    teacher_cut.check_cut(replace(opts, stem_kernel=3), "dlib")
    # per-stage fractions shape either kind of cut
    teacher_cut.check_cut(replace(opts, keep={35: 0.5, 1: 1.0}, inner_keep={35: 0.25}), "dlib")
    teacher_cut.check_cut(replace(opts, keep={56: 0.5, 7: 0.75}), "onnx")
    teacher_cut.check_cut(replace(opts, **change), "onnx")  # a chain takes them
    with pytest.raises(options.TrainError, match="--stem-kernel shapes a cut of dlib"):
        teacher_cut.check_cut(replace(opts, stem_kernel=3), "onnx")
    with pytest.raises(options.TrainError, match="--inner-keep shapes a cut of dlib"):
        teacher_cut.check_cut(replace(opts, inner_keep=0.25), "onnx")


def test_quick_options(tmp_path: Path) -> None:
    opts = options.TrainOptions(data=tmp_path, out=tmp_path / "out", margin=0.3)
    quick = options.quick_options(opts)
    assert (quick.epochs, quick.max_people, quick.val_folds, quick.quick) == (4, 600, (5,), True)
    assert options.quick_options(replace(opts, max_people=100)).max_people == 100
    assert quick.margin == 0.3 and quick.data == tmp_path  # the rest is kept
    assert options.quick_options(replace(opts, epochs=2)).epochs == 2
    options.check_options(quick)


def test_subset(train_mod: ModuleType) -> None:
    photos = fake_people({"a": 1, "b": 6, "c": 4, "d": 2})
    split = Split(photos, [Pair(0, Path("x/1"), Path("y/1"), False)], "how")
    assert train_mod._subset(split, None) is split
    assert train_mod._subset(split, 4) is split
    # the most photos first, counted up to 4 (b and c tie), then by name
    small = train_mod._subset(split, 2)
    assert sorted(small.train) == ["b", "c"]
    assert small.val_pairs == split.val_pairs and small.how == "how"
    assert sorted(train_mod._subset(split, 3).train) == ["b", "c", "d"]
    # every source in proportion: 6 of cfp's 4 and lfw's 9 people are 2 and 4 (cfp's k-th
    # of 4 at k/4, lfw's at k/9), not the first 6 names (cfp's 3 and 3 of lfw's); the
    # person with one photo comes last whatever its source
    mixed = fake_people(
        {**{f"cfp/p{i}": 5 for i in range(3)}, **{f"lfw/q{i}": 4 for i in range(9)}, "cfp/z": 1}
    )
    six = train_mod._subset(Split(mixed, [], "how"), 6).train
    assert sorted(six) == ["cfp/p0", "cfp/p1", "lfw/q0", "lfw/q1", "lfw/q2", "lfw/q3"]
    assert "cfp/z" not in train_mod._subset(Split(mixed, [], "how"), 12).train


# ---------------------------------------------------------------- the student


def test_count_macs_by_hand() -> None:
    keras = pytest.importorskip("keras")
    from model_export.export import count_macs

    inp = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(8, 3, padding="same")(inp)  # 4*4*8 outputs x 3*3*2 = 2304
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)  # 4*4*8 x 3*3 = 1152
    x = keras.layers.Conv2D(4, 1, strides=2)(x)  # 2*2*4 x 8 = 128
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(5)(x)  # 4*5 = 20
    assert count_macs(keras.Model(inp, out)) == 2304 + 1152 + 128 + 20


def test_student_size() -> None:
    keras = pytest.importorskip("keras")
    from model_export.export import count_macs
    from model_export.student import StudentConfig, build_student

    half = build_student(StudentConfig(width=0.5))
    assert tuple(half.input.shape) == (None, 112, 112, 3)
    assert tuple(half.output.shape) == (None, 128)
    macs = count_macs(half)
    assert 30e6 < macs <= 271e6 / 4  # at most a quarter of dlib's ResNet
    assert not any(isinstance(layer, keras.layers.PReLU) for layer in half.layers)
    assert not any("prelu" in type(layer).__name__.lower() for layer in half.layers)
    assert any(isinstance(layer, keras.layers.ReLU) for layer in half.layers)
    assert count_macs(build_student(StudentConfig(width=1.0))) > 2 * macs
    y = half(np.full((2, 112, 112, 3), 128, np.float32), training=False)
    assert tuple(y.shape) == (2, 128) and np.isfinite(np.asarray(y)).all()
    assert StudentConfig(width=0.5).record()["embedding_size"] == 128


# ---------------------------------------------------------------- build's hooks


def test_check_held_out(tmp_path: Path) -> None:
    (tmp_path / "train_people.txt").write_text("Alice\nBob\n")
    pairs_file = tmp_path / "pairs.json"
    fresh = [Pair(0, Path("x/Carol/1.jpg"), Path("x/Dan/1.jpg"), False)]
    check_held_out(tmp_path, fresh, pairs_file)  # no one shared: fine
    check_held_out(tmp_path, [], pairs_file)  # nothing evaluated: fine
    shared = [*fresh, Pair(1, Path("x/Bob/1.jpg"), Path("x/Bob/2.jpg"), True)]
    with pytest.raises(EncoderError, match=r"1 of the people .*\(e\.g\. Bob\)"):
        check_held_out(tmp_path, shared, pairs_file)
    (tmp_path / "train_people.txt").write_text("lfw/Alice\ncfp/Bob\n")  # keys, as runs now write
    assert trained_people(tmp_path) == {"lfw/Alice", "cfp/Bob"}
    with pytest.raises(EncoderError, match=r"\(e\.g\. Bob\)"):
        check_held_out(tmp_path, shared, pairs_file)
    (tmp_path / "train_people.txt").unlink()
    check_held_out(tmp_path, shared, pairs_file)  # no record of the training people
    assert trained_people(tmp_path) == set() and trained_people(None) == set()


def trained_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "encoder.keras").write_bytes(b"not really a model")
    meta = {
        "name": "edge-face-student-w0.5-triplet",
        "command": ["model-export", "train", "--out", str(folder)],
        "loss": "triplet",
        "student": {"embedding_size": 128},
        "input": {"size": 112, "normalisation": "(pixel - 127.5) / 128, inside the graph"},
        "teacher": None,
        "data": {"photos": 40, "people": 20},
        "validation": {"final": {"tau": 1.1234567}},
    }
    (folder / "train.json").write_text(json.dumps(meta))


def test_resolve_encoder_folder(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EncoderError, match=r"not a trained encoder \(no train\.json"):
        resolve_encoder(str(empty))

    run = tmp_path / "run"
    trained_folder(run)
    src = resolve_encoder(str(run))
    assert (src.kind, src.path, src.train_dir) == ("trained", run / "encoder.keras", run)
    assert (src.input_size, src.embedding_size, src.metric) == (112, 128, "euclidean")
    assert src.l2_normalize is True
    assert src.reference_tau == 1.123457
    assert src.alignment["template"] == [[round(x, 4), round(y, 4)] for x, y in ARCFACE_112]
    assert "40 photos of 20 people" in src.provenance

    # its own held-out pairs, once its run wrote them, are evaluated in its bundle
    assert held_out_pairs(src) is None
    (run / "val_pairs.json").write_text('{"pairs": []}')
    assert held_out_pairs(src) == run / "val_pairs.json"

    (run / "train.json").write_text("{broken")
    with pytest.raises(EncoderError, match="unreadable training record"):
        resolve_encoder(str(run))


# ---------------------------------------------------------------- the plot


def test_plot_log(tmp_path: Path, train_mod: ModuleType) -> None:
    pytest.importorskip("matplotlib")
    log = tmp_path / "log.csv"
    rows = [
        [1, 10, 5.0, 0.002, 0.5, 0.4, 0.1, 0.2, 0.6, 0.8, 1.1, 0.8, 0.3, 0.88, 1.0],
        [2, 10, 5.1, 0.001, 0.4, 0.3, 0.1, 0.1, 0.5, 0.7, 1.2, 0.85, 0.4, 0.9, 1.0],
    ]
    with log.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(run_record.LOG_COLUMNS)
        writer.writerows(rows)
    assert len(rows[0]) == len(run_record.LOG_COLUMNS)
    png = tmp_path / "training.png"
    run_record.plot_log(log, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv", "training.png"]


def test_pruned_student_of_sface(train_mod: ModuleType) -> None:
    """Cut out of the real SFace graph: keep=1 without ReLU or batch norm is the teacher
    itself; a third of the channels with two blocks left out is a quarter of dlib's
    multiply-adds, ReLU only."""
    keras = pytest.importorskip("keras")
    pytest.importorskip("onnx")
    from model_export.encoders import resolve_encoder
    from model_export.export import count_macs
    from model_export.prune import PruneError, pruned_student

    teacher = resolve_encoder("sface").keras_model()
    x = np.random.default_rng(0).uniform(0, 255, (2, 112, 112, 3)).astype(np.float32)
    same, _ = pruned_student(teacher, 1.0, relu=False, batch_norm=False)
    assert np.abs(np.asarray(same(x)) - np.asarray(teacher(x))).max() < 1e-4
    small, report = pruned_student(teacher, 0.33, ("conv_11", "conv_12"))
    assert count_macs(small) <= 271e6 / 4
    assert report.dropped == ["conv_11", "conv_12"]
    assert not any(isinstance(ly, keras.layers.PReLU) for ly in small.layers)
    assert small(x).shape == (2, 128)
    with pytest.raises(PruneError, match="changes the shape"):
        pruned_student(teacher, 0.5, ("conv_13",))


def test_pruned_student_stem_and_per_resolution_keep(train_mod: ModuleType) -> None:
    """A stride-2 stem halves the first maps and leaves every later map the teacher's
    size; a per-resolution keep cuts each layer by its own entry; the report names the
    teacher channels each convolution kept (the hints' correspondence)."""
    pytest.importorskip("onnx")
    from model_export.encoders import resolve_encoder
    from model_export.export import count_macs
    from model_export.live_teacher import hint_pairs
    from model_export.prune import keep_for, pruned_student

    assert keep_for(0.4, 112) == 0.4
    table = {56: 0.25, 14: 0.5, 7: 0.75}
    assert [keep_for(table, h) for h in (112, 56, 28, 14, 7)] == [0.25, 0.25, 0.25, 0.5, 0.75]
    teacher = resolve_encoder("sface").keras_model()
    plain, _ = pruned_student(teacher, 0.33, ("conv_11", "conv_12"))
    small, report = pruned_student(teacher, table, ("conv_11", "conv_12"), stem_stride=2)
    assert small.get_layer("conv_1_conv2d").output.shape[1:3] == (56, 56)
    assert small.get_layer("conv_3_dw_conv2d").output.shape[1:3] == (56, 56)
    assert small.get_layer("conv_5_conv2d").output.shape[1:3] == (28, 28)
    assert report.kept["conv_3_conv2d"] == (32, 128)  # 56x56: a quarter
    assert report.kept["conv_7_conv2d"] == (256, 512)  # 14x14: half
    assert report.kept["conv_14_conv2d"] == (768, 1024)  # 7x7: three quarters
    for name, (n, _total) in report.kept.items():
        assert len(report.channels[name]) == n
        assert np.all(np.diff(report.channels[name]) > 0)
    # the stem's two convolutions no longer match the teacher's maps: no hints there
    names = hint_pairs(teacher, small, report)
    assert "conv_1_conv2d" not in names and "conv_2_conv2d" not in names
    assert "conv_3_conv2d" in names and "conv_14_conv2d" in names
    assert count_macs(small) < count_macs(teacher) / 4
    stem = pruned_student(teacher, 0.33, ("conv_11", "conv_12"), stem_stride=2)[0]
    assert count_macs(stem) < count_macs(plain)


def test_resample_dense_by_hand() -> None:
    """7 teacher rows -> 4 student rows: groups {0,1}, {2,3}, {4,5}, {6}; a student map
    equal to the teacher's group means gives the teacher's dense output."""
    from model_export.prune import resample_dense

    kernel = np.arange(7 * 7 * 2 * 3, dtype=np.float64).reshape(7, 7, 2, 3)
    small = resample_dense(kernel, (4, 4))
    assert small.shape == (4, 4, 2, 3)
    assert np.allclose(small[0, 0], kernel[0:2, 0:2].sum(axis=(0, 1)))
    assert np.allclose(small[3, 1], kernel[6, 2:4].sum(axis=0))
    assert np.allclose(small[3, 3], kernel[6, 6])
    assert np.isclose(small.sum(), kernel.sum())
    # a teacher map constant over each group: the student's map of group values is exact
    rng = np.random.default_rng(0)
    groups = rng.normal(size=(4, 4, 2))
    big = np.repeat(np.repeat(groups, 2, axis=0), 2, axis=1)[:7, :7]
    teacher_out = np.einsum("hwc,hwcd->d", big, kernel)
    assert np.allclose(np.einsum("hwc,hwcd->d", groups, small), teacher_out)


def test_pruned_student_half_resolution(train_mod: ModuleType) -> None:
    """scale=2: every map half the teacher's size (the last 4x4), a quarter of the
    multiply-adds, the teacher's weights; on a face that is constant over 2x2 cells the
    first layers' maps are the teacher's averaged 2x2 only approximately (padding), so
    the check is on shapes, cost and weights."""
    pytest.importorskip("onnx")
    from model_export.encoders import resolve_encoder
    from model_export.export import count_macs
    from model_export.live_teacher import hint_pairs
    from model_export.prune import pruned_student

    teacher = resolve_encoder("sface").keras_model()
    half, _ = pruned_student(teacher, 1.0, (), relu=False, batch_norm=False, scale=2)
    assert half.get_layer("conv_1_conv2d").output.shape[1:3] == (56, 56)
    assert half.get_layer("conv_14_conv2d").output.shape[1:3] == (4, 4)
    assert half.output.shape[-1] == 128
    assert count_macs(teacher) / 4 < count_macs(half) < count_macs(teacher) / 3.5
    assert np.array_equal(
        half.get_layer("conv_8_conv2d").get_weights()[0],
        teacher.get_layer("conv_8_conv2d").get_weights()[0],
    )
    small, report = pruned_student(teacher, 0.64, (), scale=2)
    assert count_macs(small) <= 271e6 / 4
    # every convolution's map is half the teacher's: all fourteen are hinted (on the
    # teacher's maps averaged 2x2)
    assert hint_pairs(teacher, small, report) == [f"conv_{i}_conv2d" for i in range(1, 15)]
    x = np.random.default_rng(0).uniform(0, 255, (2, 112, 112, 3)).astype(np.float32)
    assert small(x).shape == (2, 128)


def test_hint_loss_by_hand(train_mod: ModuleType) -> None:
    """Zero when the student's map is the teacher's; otherwise the mean squared
    difference in units of each teacher channel's standard deviation over the batch."""
    import tensorflow as tf

    from model_export.live_teacher import centred_targets, hint_loss, space_targets

    rng = np.random.default_rng(0)
    t = rng.normal(size=(4, 3, 3, 2)).astype(np.float32) * np.array([2, 4], np.float32)
    assert float(hint_loss([tf.constant(t)], [tf.constant(t)])) == pytest.approx(0)
    off = t + np.array([1.0, 2.0], np.float32)
    std = t.std(axis=(0, 1, 2)) + 1e-3
    expected = np.mean(((off - t) / std) ** 2)
    assert float(hint_loss([tf.constant(off)], [tf.constant(t)])) == pytest.approx(
        expected, rel=1e-4
    )
    # two layers weigh alike: the mean of the two
    both = float(hint_loss([tf.constant(off), tf.constant(t)], [tf.constant(t)] * 2))
    assert both == pytest.approx(expected / 2, rel=1e-4)
    assert float(hint_loss([], [])) == 0.0
    # centred targets: unit length, the mean taken off before normalising
    emb = tf.constant([[3.0, 4.0], [0.0, 2.0]])
    mean = tf.constant([0.6, 0.0])
    out = np.asarray(centred_targets(emb, mean))
    np.testing.assert_allclose(out[0], [0.0, 1.0], atol=1e-6)  # (0.6, 0.8) - (0.6, 0) -> (0, 1)
    np.testing.assert_allclose(out[1], [-0.5145, 0.8575], atol=1e-4)  # (-0.6, 1) / 1.166
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    # --distill centred: the unit embedding minus the mean, not re-normalised, over the
    # spread: distances are the unit embeddings' own (over the spread)
    space = np.asarray(space_targets(emb, mean, 0.5))
    np.testing.assert_allclose(space[0], [0.0, 1.6], atol=1e-6)  # ((0.6, 0.8) - mean) / 0.5
    np.testing.assert_allclose(space[1], [-1.2, 2.0], atol=1e-6)  # ((0, 1) - mean) / 0.5
    units = np.array([[0.6, 0.8], [0.0, 1.0]])
    assert np.linalg.norm(space[0] - space[1]) == pytest.approx(
        np.linalg.norm(units[0] - units[1]) / 0.5, rel=1e-5
    )


def test_distill_centred_needs_the_teacher_in_the_loop(tmp_path: Path) -> None:
    """--distill centred learns the teacher's raw embedding of every crop: fixed targets
    (re-normalised when the data is prepared) cannot give it, so it is an error."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text("{}")
    opts = options.TrainOptions(
        data=tmp_path, out=tmp_path / "out", teacher=bundle, init="teacher", distill="centred"
    )
    with pytest.raises(options.TrainError, match="--distill centred needs --teacher-in-loop"):
        options.check_options(opts)
    options.check_options(replace(opts, teacher_in_loop=True, loss="both"))
    with pytest.raises(options.TrainError, match="--distill"):
        options.check_options(replace(opts, distill="raw"))


def test_mix_blends_other_people(train_mod: ModuleType) -> None:
    """Every mixed face is a 0.3-0.7 blend with another person's face: person 0's faces
    are all 0 and person 1's all 200, so a blend within one person would stay 0 or 200."""
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 1, 1])
    faces = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (0, 0, 200, 200)])
    same = faces.copy()
    assert not batches_mod.mix(same, labels, 0.0, rng).any()
    assert np.array_equal(same, faces)
    mixed = faces.copy()
    assert batches_mod.mix(mixed, labels, 1.0, rng).all()
    for j in range(4):
        assert np.all(mixed[j] == mixed[j, 0, 0, 0])
        assert 60 <= int(mixed[j, 0, 0, 0]) <= 140
    assert np.array_equal(labels, [0, 0, 1, 1])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"teacher_in_loop": True, "init": "scratch", "loss": "distill"}, "needs --init teacher"),
        ({"teacher_in_loop": True, "init": "teacher", "loss": "triplet"}, "distillation loss"),
        ({"mixup": 0.25, "loss": "distill", "init": "teacher"}, "needs --teacher-in-loop"),
        ({"mixup": 0.25, "loss": "both", "init": "teacher"}, "needs --teacher-in-loop"),
    ],
)
def test_check_options_teacher_in_loop(
    tmp_path: Path, train_mod: ModuleType, changes: dict[str, object], message: str
) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text("{}")
    opts = train_mod.TrainOptions(data=tmp_path, out=tmp_path / "o", teacher=bundle)
    with pytest.raises(train_mod.TrainError, match=message):
        train_mod.check_options(replace(opts, **changes))
    loop = replace(opts, init="teacher", loss="distill", teacher_in_loop=True, mixup=0.25)
    train_mod.check_options(loop)
    train_mod.check_options(replace(loop, loss="both"))  # mixed faces skip the triplets
    assert train_mod.live(loop)
    assert not train_mod.live(replace(loop, teacher_in_loop=False))
    assert not train_mod.live(replace(opts, init="teacher", loss="distill"))


def test_cli_keep_parsing() -> None:
    import click

    from model_export.cli_train import _fractions

    assert _fractions("0.4") == 0.4
    assert _fractions("56:0.25,14:0.5") == {56: 0.25, 14: 0.5}
    for bad in ("half", "56:0.25,14", "0.01", "56:2"):
        with pytest.raises(click.UsageError, match="--keep"):
            _fractions(bad)
    assert _fractions("35:0.25,4:1", "--inner-keep") == {35: 0.25, 4: 1.0}
    with pytest.raises(click.UsageError, match="--inner-keep 35:0"):
        _fractions("35:0", "--inner-keep")


def test_teacher_runner_matches_keras(train_mod: ModuleType) -> None:
    """The teacher's TFLite graph gives the Keras model's outputs, in the Keras order,
    the hinted maps cut to the kept channels, at any batch size."""
    keras = pytest.importorskip("keras")
    import tensorflow as tf

    from model_export.live_teacher import TeacherRunner

    inp = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(6, 3, padding="same", name="a")(inp)
    b = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="b")(a)
    emb = keras.layers.Dense(5, name="emb")(keras.layers.Flatten()(b))
    kept = keras.layers.Lambda(lambda t: tf.gather(t, [1, 4], axis=-1))(a)
    model = keras.Model(inp, [emb, kept, b])
    runner = TeacherRunner(model)
    for n in (3, 1):
        x = np.random.default_rng(n).integers(0, 255, (n, 8, 8, 3)).astype(np.uint8)
        got = runner(x)
        want = [np.asarray(v) for v in model(x.astype(np.float32))]
        assert [g.shape for g in got] == [(n, 5), (n, 8, 8, 2), (n, 4, 4, 4)]
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- weight average


def test_average_decay_for() -> None:
    from model_export.averaging import decay_for

    assert decay_for(5, 200) == pytest.approx(1 - 1 / 1000)
    assert decay_for(0.5, 1) == 0.0  # less than a step: no averaging at all
    with pytest.raises(ValueError, match="positive"):
        decay_for(0, 100)


def test_average_of_weights(tmp_path: Path, train_mod: ModuleType) -> None:
    """The debiased moving average, by hand: decay min(0.5, (1+t)/(10+t)) at step t."""
    keras = pytest.importorskip("keras")
    tf = pytest.importorskip("tensorflow")
    from model_export.averaging import WeightAverage

    model = tiny_model(keras)
    average = WeightAverage(model, decay=0.5)
    update = tf.function(average.update)  # as inside the training step
    kernel, bias = model.weights
    expected = [np.asarray(kernel.numpy()).copy(), np.asarray(bias.numpy()).copy()]
    for t, value in enumerate([1.0, 2.0, 4.0, 8.0]):
        kernel.assign(np.full((3, 2), value, np.float32))
        bias.assign(np.full((2,), -value, np.float32))
        update()
        d = min(0.5, (1 + t) / (10 + t))  # 0.1, 0.18..., 0.25, 0.3...
        expected = [d * expected[0] + (1 - d) * value, d * expected[1] - (1 - d) * value]
    assert np.allclose(average.shadow[0].numpy(), expected[0])
    assert np.allclose(average.shadow[1].numpy(), expected[1])

    # applied: the model holds the average inside the block, its own weights after
    x = np.ones((1, 3), np.float32)
    with average.applied():
        assert np.allclose(kernel.numpy(), expected[0])
        inside = np.asarray(model(x))
    assert np.allclose(kernel.numpy(), 8.0)
    assert np.allclose(inside, x @ expected[0] + expected[1])

    # checkpointed with the run and loaded back, step count included
    average.save(tmp_path / "average.npz")
    other = WeightAverage(tiny_model(keras), decay=0.5)
    other.load(tmp_path / "average.npz")
    assert int(other.count.numpy()) == 4
    for a, b in zip(other.shadow, average.shadow, strict=True):
        assert np.array_equal(a.numpy(), b.numpy())
    bigger = WeightAverage(
        keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(2)]), 0.5
    )
    with pytest.raises(ValueError, match="does not match"):
        bigger.load(tmp_path / "average.npz")
