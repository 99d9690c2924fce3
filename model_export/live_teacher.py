"""The teacher inside the training loop, for a student cut out of it (``--init teacher``).

A student trained on a few thousand photos fits them and stops generalising when its
targets are fixed, one per photo. With the teacher's float model in the loop, every
augmented (or mixed) crop gets its own target, and the student learns more than the
final embedding: each of its convolutions keeps a subset of a teacher convolution's
channels (``model_export.prune``; a cut of dlib's ResNet, ``model_export.resnet_cut``:
its stem and each block's first convolution), so it is also taught the teacher's
activations on those channels ("hints", FitNets-style, no projection needed). Every spatial position
of every map is a training signal, many more than one vector per photo.

The teacher runs as a float TFLite graph (XNNPACK: about a fifth of TensorFlow's CPU
time for SFace here) on the thread that builds the batches, so it works while
TensorFlow trains the student on the previous batch. Its outputs: the embedding and,
per hinted convolution, the kept channels of its pre-activation map.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from model_export.prune import PruneReport
from model_export.resnet_cut import ResnetCut
from model_export.train_data import centre_and_spread

__all__ = [
    "LiveTeacher",
    "TeacherRunner",
    "centred_targets",
    "hint_loss",
    "live_teacher",
    "space_targets",
]

logger = logging.getLogger(__name__)


@dataclass
class LiveTeacher:
    runner: TeacherRunner  # faces -> [embedding, *teacher maps (kept channels)]
    student: keras.Model  # face -> [embedding, *student maps] (shares the student's layers)
    names: list[str]  # the hinted convolutions
    mean: np.ndarray  # the teacher's unit embeddings' mean over the training faces
    spread: float  # the root mean square length of a unit embedding minus that mean
    norm: float  # the mean length of the teacher's raw embedding


class TeacherRunner:
    """The teacher's multi-output float TFLite graph, one interpreter per batch size."""

    def __init__(self, model: keras.Model, threads: int = 1) -> None:
        self.flatbuffer = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        self.threads = threads
        self.n_outputs = len(model.outputs)
        self._by_batch: dict[int, Any] = {}

    def _runner(self, batch: int) -> Any:
        if batch not in self._by_batch:
            from edge.tflite import interpreter_class

            cls, _ = interpreter_class()
            interpreter = cls(model_content=self.flatbuffer, num_threads=self.threads)
            self._by_batch[batch] = interpreter.get_signature_runner()
        return self._by_batch[batch]

    def __call__(self, faces: np.ndarray) -> list[np.ndarray]:
        """uint8 BxSxSx3 faces -> [embedding BxD, *maps], float32, in the model's order."""
        runner = self._runner(len(faces))
        (name,) = runner.get_input_details()
        out = runner(**{name: faces.astype(np.float32)})
        return [np.asarray(out[f"output_{i}"]) for i in range(self.n_outputs)]


def hint_pairs(
    teacher: keras.Model, student: keras.Model, report: PruneReport | ResnetCut
) -> list[str]:
    """The convolutions whose student output matches the teacher's map in size, or half
    of it (a cut at half resolution, ``--scale 2``: the teacher's map is averaged 2x2
    for it). A stride-2 stem changes the first maps of a full-resolution cut: those are
    left out (its first maps are the teacher's at every other position, not averages)."""
    half = any(ly.name == "half_resolution" for ly in student.layers)
    names = []
    for name in report.channels:
        s = _student_map(student, name)
        if s is not None and _factor(teacher.get_layer(name), s) == (2 if half else 1):
            names.append(name)
    return names


def _factor(t: Any, s: Any) -> int:
    """How many teacher rows one student row covers (0: no whole ratio)."""
    (th, tw), (sh, sw) = t.output.shape[1:3], s.output.shape[1:3]
    for f in (1, 2):
        if (sh, sw) == (-(-th // f), -(-tw // f)):
            return f
    return 0


def _student_map(student: keras.Model, name: str) -> Any:
    for candidate in (f"{name}_bn", name):
        try:
            return student.get_layer(candidate)
        except ValueError:
            continue
    return None


def live_teacher(
    teacher: keras.Model,
    student: keras.Model,
    report: PruneReport | ResnetCut,
    faces: np.ndarray,
    batch: int = 64,
    sample: int = 1000,
) -> LiveTeacher:
    """The teacher's runner (embedding and kept channels of each hinted map), the
    student's multi-output model, and the teacher's mean unit embedding over up to
    ``sample`` of ``faces`` (uint8 NxSxSx3 crops) and their mirror images."""
    names = hint_pairs(teacher, student, report)
    maps = []
    for n in names:
        t = teacher.get_layer(n).output
        if _factor(teacher.get_layer(n), _student_map(student, n)) == 2:
            # the mean of the positions a student position covers (a 7-row map's last
            # row alone: TensorFlow's "same" average leaves the padding out)
            t = layers.AveragePooling2D(2, padding="same", name=f"pool_{n}")(t)
        maps.append(
            layers.Lambda(
                lambda t, idx=report.channels[n]: tf.gather(t, idx, axis=-1), name=f"hint_{n}"
            )(t)
        )
    runner = TeacherRunner(keras.Model(teacher.input, [teacher.output, *maps]))
    s_model = keras.Model(
        student.input, [student.output, *(_student_map(student, n).output for n in names)]
    )
    pick = faces[np.linspace(0, len(faces) - 1, min(sample, len(faces))).astype(int)]
    units: dict[bool, list[np.ndarray]] = {False: [], True: []}
    norms: list[np.ndarray] = []
    for i in range(0, len(pick), batch):
        for flipped in (False, True):
            chunk = pick[i : i + batch, :, ::-1] if flipped else pick[i : i + batch]
            v = runner(np.ascontiguousarray(chunk))[0]
            norms.append(np.linalg.norm(v, axis=1))
            units[flipped].append(v / np.maximum(norms[-1][:, None], 1e-12))
    # the same mean the fixed targets are centred on (plain and mirrored faces together)
    mean, spread = centre_and_spread(np.concatenate(units[False]), np.concatenate(units[True]))
    mean = mean.astype(np.float32)
    norm = float(np.mean(np.concatenate(norms)))
    logger.info(
        "teacher in the loop: %d hinted convolutions; mean unit embedding norm %.3f, "
        "spread about it %.3f",
        len(names),
        float(np.linalg.norm(mean)),
        spread,
    )
    return LiveTeacher(runner, s_model, names, mean, spread, norm)


def centred_targets(embedding: tf.Tensor, mean: tf.Tensor) -> tf.Tensor:
    """The teacher's unit embedding minus its training mean, at unit length (the same
    targets ``train_data.centred_unit`` makes for a teacher bundle)."""
    unit = tf.math.l2_normalize(embedding, axis=-1)
    return tf.stop_gradient(tf.math.l2_normalize(unit - mean, axis=-1))


def space_targets(embedding: tf.Tensor, mean: tf.Tensor, spread: float) -> tf.Tensor:
    """The teacher's unit embedding minus its training mean, **not** re-normalised, in
    units of its spread (``--distill centred``). Distances between these are the
    teacher's own unit-embedding distances (over ``spread``): re-normalised, as
    ``centred_targets`` does, the common part of dlib's embedding (a mean of length 0.92)
    is gone and each face's remainder (root mean square 0.40) blown up to 1, and dlib's
    own errors on the held-out LFW pairs nearly double (25 in 1,200 against 14, mirrored:
    ``research/target_space.py``)."""
    unit = tf.math.l2_normalize(embedding, axis=-1)
    return tf.stop_gradient((unit - mean) / spread)


def hint_loss(student_maps: list[tf.Tensor], teacher_maps: list[tf.Tensor]) -> tf.Tensor:
    """Mean over the hinted convolutions of the squared difference between the student's
    map and the teacher's kept channels, each channel in units of the teacher's standard
    deviation over the batch (so every layer weighs alike, whatever its scale)."""
    if not student_maps:
        return tf.constant(0.0)
    terms = []
    for s, t in zip(student_maps, teacher_maps, strict=True):
        t = tf.stop_gradient(t)
        std = tf.math.reduce_std(t, axis=[0, 1, 2]) + 1e-3
        terms.append(tf.reduce_mean(tf.square((s - t) / std)))
    return tf.add_n(terms) / float(len(terms))
