"""Refit a cut student to its teacher, layer after layer, by least squares on real faces.

A cut (``model_export.prune``) keeps a subset of the teacher's channels, swaps PReLU for
ReLU and may run at half resolution; with the teacher's own weights on what is left,
each layer's output drifts further from the teacher's, and the cut starts near chance.
Here every convolution is refitted in turn (ThiNet / He et al. 2017 "channel pruning"
style): its weights are the least-squares map from **the student's own input** (the
layers before it already refitted, so each layer makes up for what the earlier ones
lost: missing channels, ReLU instead of PReLU, half the resolution) to **the teacher's
pre-activation** on the channels the cut kept (averaged 2x2 for a half-resolution cut);
ridge towards the teacher's own weights. A 1x1 or full convolution is one linear least
squares problem over every pixel of every face; a depthwise one is one small problem
per channel (its 3x3 taps). The batch norm after each convolution is set to pass its
output through unchanged (its scale and shift are the output's own statistics), so
training starts from the refitted function. The last dense layer is refitted to the
teacher's raw embedding over more faces (one sample per face, many weights).

Cost: one pass of the teacher and of the student over ``faces``, layer by layer, plus
small linear solves: a minute or two on 2 cores for 512 faces.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from model_export.prune import PruneReport

__all__ = [
    "ReconstructReport",
    "average_2x2",
    "fit_conv",
    "fit_dense",
    "pass_through",
    "reconstruct",
    "relative_error",
]

logger = logging.getLogger(__name__)


@dataclass
class ReconstructReport:
    # layer -> relative error of the student's pre-activation against the teacher's
    # (mean squared difference / teacher variance) before and after the refit
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    dense_ridge: float = 0.0  # the ridge the dense layer's fit chose


def _apply(layer: Any, x: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate(
        [np.asarray(layer(tf.constant(x[i : i + batch]))) for i in range(0, len(x), batch)]
    )


def average_2x2(maps: np.ndarray, batch: int = 32) -> np.ndarray:
    """NxHxWxC -> N x ceil(H/2) x ceil(W/2) x C: the mean of each 2x2 cell (an odd last
    row or column: the mean of what there is), by the same "same" average pooling the
    teacher in the loop puts on its hinted maps (``live_teacher``)."""
    return _apply(layers.AveragePooling2D(2, padding="same"), maps, batch)


def _patches(x: np.ndarray, size: tuple[int, int], strides: tuple[int, int], padding: str,
             batch: int) -> np.ndarray:  # fmt: skip
    """N x Ho x Wo x (kh * kw * C) patches, ordered as a Conv2D kernel (kh, kw, C)."""
    out = []
    for i in range(0, len(x), batch):
        out.append(
            np.asarray(
                tf.image.extract_patches(
                    tf.constant(x[i : i + batch]),
                    sizes=[1, *size, 1],
                    strides=[1, *strides, 1],
                    rates=[1, 1, 1, 1],
                    padding=padding.upper(),
                )
            )
        )
    return np.concatenate(out)


def _ridge(a: np.ndarray, b: np.ndarray, prior: np.ndarray, ridge: float) -> np.ndarray:
    """argmin |Xw - y|^2 + lam |w - prior|^2 from the normal equations a = X'X, b = X'y;
    lam relative to the mean diagonal of a."""
    lam = ridge * float(np.trace(a)) / len(a) + 1e-12
    return np.linalg.solve(a + lam * np.eye(len(a)), b + lam * prior)


def fit_conv(layer: layers.Conv2D, x: np.ndarray, target: np.ndarray, ridge: float,
              batch: int) -> None:  # fmt: skip
    kernel, bias = layer.get_weights()
    kh, kw, _, cout = kernel.shape
    n = kernel.size // cout + 1
    a, b = np.zeros((n, n)), np.zeros((n, cout))
    for i in range(0, len(x), batch):
        chunk = x[i : i + batch]
        if (kh, kw) != (1, 1) or layer.strides != (1, 1):
            chunk = _patches(chunk, (kh, kw), layer.strides, layer.padding, batch)
        f = chunk.reshape(-1, n - 1).astype(np.float64)
        f = np.concatenate([f, np.ones((len(f), 1))], axis=1)
        a += f.T @ f
        b += f.T @ target[i : i + batch].reshape(-1, cout).astype(np.float64)
    prior = np.concatenate([kernel.reshape(-1, cout), bias[None]], axis=0)
    w = _ridge(a, b, prior, ridge)
    layer.set_weights([w[:-1].reshape(kernel.shape).astype(np.float32), w[-1].astype(np.float32)])


def _fit_depthwise(layer: layers.DepthwiseConv2D, x: np.ndarray, target: np.ndarray,
                   ridge: float, batch: int) -> None:  # fmt: skip
    kernel, bias = layer.get_weights()
    kh, kw, c, _ = kernel.shape
    k = kh * kw + 1
    a, b = np.zeros((c, k, k)), np.zeros((c, k))
    for i in range(0, len(x), batch):
        taps = _patches(x[i : i + batch], (kh, kw), layer.strides, layer.padding, batch)
        taps = taps.reshape(-1, kh * kw, c).astype(np.float64)
        taps = np.concatenate([taps, np.ones((len(taps), 1, c))], axis=1)  # M x 10 x C
        y = target[i : i + batch].reshape(-1, c).astype(np.float64)
        a += np.einsum("mkc,mlc->ckl", taps, taps)
        b += np.einsum("mkc,mc->ck", taps, y)
    prior = np.concatenate([kernel.reshape(kh * kw, c), bias[None]], axis=0).T  # C x 10
    w = np.stack([_ridge(a[i], b[i], prior[i], ridge) for i in range(c)])  # C x 10
    layer.set_weights(
        [w[:, :-1].T.reshape(kernel.shape).astype(np.float32), w[:, -1].astype(np.float32)]
    )


def pass_through(bn: layers.BatchNormalization, x: np.ndarray) -> None:
    """A batch norm that gives its input back (in inference, and near enough in training
    on a batch with the same statistics): scale = std, shift = mean."""
    mean = x.reshape(-1, x.shape[-1]).mean(axis=0)
    var = x.reshape(-1, x.shape[-1]).var(axis=0)
    std = np.sqrt(var + bn.epsilon)
    bn.set_weights([std, mean, mean, var])


def relative_error(s: np.ndarray, t: np.ndarray) -> float:
    return float(np.mean((s - t) ** 2) / max(float(np.var(t)), 1e-12))


def reconstruct(
    student: keras.Model,
    teacher: keras.Model,
    report: PruneReport,
    faces: np.ndarray,
    dense_faces: np.ndarray | None = None,
    ridge: float = 1e-3,
    dense_ridges: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0),
    batch: int = 32,
) -> ReconstructReport:
    """Refit ``student`` (a cut of ``teacher`` by ``model_export.prune.pruned_student``,
    with batch norms) in place on ``faces`` (uint8 NxSxSx3 aligned crops, a few hundred);
    the dense layer on ``dense_faces`` too (more faces: it has one sample per face)."""
    t_layers = [ly for ly in teacher.layers if not isinstance(ly, keras.layers.InputLayer)]
    t_pos = 0
    t_x = faces.astype(np.float32)
    s_x = faces.astype(np.float32)
    channels = np.arange(faces.shape[-1])
    out = ReconstructReport()

    def teacher_through(name: str) -> np.ndarray:
        nonlocal t_pos, t_x
        while True:
            layer = t_layers[t_pos]
            t_x = _apply(layer, t_x, batch)
            t_pos += 1
            if layer.name == name:
                return t_x

    for layer in student.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, layers.Flatten):
            break  # the dense layer is refitted below, on more faces
        if isinstance(layer, layers.Conv2D | layers.DepthwiseConv2D):
            if not isinstance(layer, layers.DepthwiseConv2D):  # its own kept channels
                channels = report.channels[layer.name]
            target = teacher_through(layer.name)[..., channels]
            if target.shape[1:3] != tuple(layer.output.shape[1:3]):
                target = average_2x2(target, batch)
            before = _apply(layer, s_x, batch)
            if isinstance(layer, layers.DepthwiseConv2D):
                _fit_depthwise(layer, s_x, target, ridge, batch)
            else:
                fit_conv(layer, s_x, target, ridge, batch)
            s_x = _apply(layer, s_x, batch)
            out.before[layer.name] = relative_error(before, target)
            out.after[layer.name] = relative_error(s_x, target)
            logger.info(
                "refit %-18s relative error %.3f -> %.3f",
                layer.name,
                out.before[layer.name],
                out.after[layer.name],
            )
            continue
        if isinstance(layer, layers.BatchNormalization) and layer.name.endswith("_bn"):
            pass_through(layer, s_x)
        s_x = _apply(layer, s_x, batch)
    dense = faces if dense_faces is None else dense_faces
    fit_dense(student, teacher, dense, dense_ridges, batch, out)
    return out


def fit_dense(student: keras.Model, teacher: keras.Model, faces: np.ndarray,
               ridges: tuple[float, ...], batch: int, out: ReconstructReport) -> None:  # fmt: skip
    """The last dense layer: least squares from the student's flattened features to the
    teacher's raw embedding **minus its mean over these faces**, faces and their mirror
    images, ridge towards its current weights (the teacher's, resampled, the bias shifted
    by that mean). Centred, the student's unit embedding starts at the distillation's
    target (``train_data.centred_unit``: the teacher's embeddings centred on the
    training photos' mean): fitted to the raw embedding, its first epochs went to
    unlearning the common part (a refitted cut of dlib fell from 88% to 65% in epoch 1).
    It has about as many weights per output as there are faces, so the ridge is chosen
    among ``ridges`` by the error on a fifth of the faces left out of the fit (a face and
    its mirror image on the same side), then the fit is made on all of them."""
    dense = student.layers[-1]
    if not isinstance(dense, layers.Dense):
        raise ValueError(f"{student.name}: the last layer is not a dense layer")
    both = np.concatenate([faces, faces[:, :, ::-1]]).astype(np.float32)
    features = keras.Model(student.input, dense.input).predict(both, batch_size=batch, verbose=0)
    target = teacher.predict(both, batch_size=batch, verbose=0).astype(np.float64)
    mean = target.mean(axis=0)
    target -= mean
    kernel, bias = dense.get_weights()
    bias = bias - mean
    before = features @ kernel + bias
    f = np.concatenate([features, np.ones((len(features), 1), np.float32)], axis=1)
    f = f.astype(np.float64)
    prior = np.concatenate([kernel, bias[None]], axis=0)
    held = np.tile(np.arange(len(faces)) % 5 == 4, 2)  # every fifth face, and its mirror
    a_fit, b_fit = f[~held].T @ f[~held], f[~held].T @ target[~held]
    errors = {}
    for r in ridges:
        w = _ridge(a_fit, b_fit, prior, r)
        errors[r] = relative_error(f[held] @ w, target[held])
    best = min(errors, key=lambda r: errors[r])
    w = _ridge(f.T @ f, f.T @ target, prior, best)
    dense.set_weights([w[:-1].astype(np.float32), w[-1].astype(np.float32)])
    out.before[dense.name] = relative_error(before, target)
    out.after[dense.name] = relative_error(f @ w, target)
    out.dense_ridge = best
    logger.info(
        "refit %-18s relative error %.3f -> %.3f (%d faces with mirrors; ridge %g: error "
        "on left-out faces %s)",
        dense.name,
        out.before[dense.name],
        out.after[dense.name],
        len(both),
        best,
        ", ".join(f"{r:g}: {e:.3f}" for r, e in errors.items()),
    )
