"""The layer-by-layer refit of a cut (model_export.reconstruct) on a small teacher chain
shaped like SFace (convolution, depthwise convolution, PReLU, explicit padding before a
stride-2 depthwise one, batch norm, flatten, dense), with random weights."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from keras import layers  # noqa: E402

from model_export.prune import pruned_student  # noqa: E402
from model_export.reconstruct import average_2x2, reconstruct  # noqa: E402


def _teacher(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    x = inp = keras.Input((16, 16, 3), name="data")
    x = layers.Conv2D(8, 3, padding="same", name="conv_1_conv2d")(x)
    x = layers.PReLU(shared_axes=[1, 2], name="conv_1_relu")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="conv_2_dw_conv2d")(x)
    x = layers.PReLU(shared_axes=[1, 2], name="conv_2_dw_relu")(x)
    x = layers.Conv2D(16, 1, name="conv_2_conv2d")(x)
    x = layers.PReLU(shared_axes=[1, 2], name="conv_2_relu")(x)
    x = layers.ZeroPadding2D(1, name="conv_3_dw_conv2d_pad")(x)
    x = layers.DepthwiseConv2D(3, strides=2, name="conv_3_dw_conv2d")(x)
    x = layers.PReLU(shared_axes=[1, 2], name="conv_3_dw_relu")(x)
    x = layers.Conv2D(24, 1, name="conv_3_conv2d")(x)
    x = layers.PReLU(shared_axes=[1, 2], name="conv_3_relu")(x)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(8, name="pre_fc1")(x)
    model = keras.Model(inp, x, name="teacher")
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.PReLU):
            (alpha,) = layer.get_weights()
            layer.set_weights([rng.uniform(-0.3, 0.5, alpha.shape).astype(np.float32)])
    return model


def _faces(n: int, seed: int = 1) -> np.ndarray:
    """Smooth random images (neighbouring pixels alike, as in photos), 0-255."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (n, 4, 4, 3))
    return np.repeat(np.repeat(small, 4, axis=1), 4, axis=2) + rng.normal(0, 8, (n, 16, 16, 3))


def test_refit_of_the_whole_teacher_is_exact() -> None:
    """keep=1 with PReLU kept: the least-squares fit of every layer reproduces the
    teacher's maps (so the patch and kernel layouts agree), and the output is unchanged."""
    teacher = _teacher()
    student, report = pruned_student(teacher, 1.0, relu=False)
    x = _faces(48).astype(np.float32)
    result = reconstruct(
        student, teacher, report, x.astype(np.uint8), ridge=1e-9, dense_ridges=(1e-9,)
    )
    assert set(result.after) == {
        "conv_1_conv2d",
        "conv_2_dw_conv2d",
        "conv_2_conv2d",
        "conv_3_dw_conv2d",
        "conv_3_conv2d",
        "pre_fc1",
    }
    assert max(result.after.values()) < 1e-3
    # the dense layer is fitted to the teacher's embedding centred on its mean over the
    # faces and their mirror images (the distillation's targets are centred)
    seen = x.astype(np.uint8).astype(np.float32)  # the faces the refit was given
    mean = np.asarray(teacher(np.concatenate([seen, seen[:, :, ::-1]]))).mean(axis=0)
    t, s = np.asarray(teacher(x)) - mean, np.asarray(student(x, training=False))
    assert np.abs(s - t).max() / np.abs(t).max() < 1e-2


def test_refit_never_worse_than_the_cut() -> None:
    """A cut (half the channels, ReLU): on the faces it is fitted on, every layer's error
    after the refit is at most its error with the cut's own weights (ridge towards those
    weights: they are a candidate of the least-squares problem), and the embedding ends
    closer to the teacher's."""
    teacher = _teacher()
    x = _faces(64)
    plain, _ = pruned_student(teacher, 0.5)
    student, report = pruned_student(teacher, 0.5)
    result = reconstruct(student, teacher, report, x)
    for name, after in result.after.items():
        assert after <= result.before[name] + 1e-6, name
    held_out = _faces(64, seed=2).astype(np.float32)
    t = np.asarray(teacher(held_out))

    def err(m: keras.Model) -> float:
        return float(np.mean((np.asarray(m(held_out, training=False)) - t) ** 2))

    assert err(student) < err(plain)


def test_refit_half_resolution() -> None:
    """scale=2: the student's maps are half the teacher's; the targets are the teacher's
    maps averaged 2x2; the refit runs and lowers every layer's error."""
    teacher = _teacher()
    student, report = pruned_student(teacher, 1.0, scale=2)
    assert student.get_layer("conv_3_conv2d").output.shape[1:3] == (4, 4)
    result = reconstruct(student, teacher, report, _faces(64))
    for name, after in result.after.items():
        assert after <= result.before[name] + 1e-6, name


def test_average_2x2_by_hand() -> None:
    maps = np.arange(3 * 3, dtype=np.float32).reshape(1, 3, 3, 1)
    out = average_2x2(maps)[0, :, :, 0]
    assert out.tolist() == [[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8]]
