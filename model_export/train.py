"""``model-export train``: a small Siamese face encoder trained with the triplet loss.

Batches of P people x K photos (a person with fewer than K photos gives differently
augmented copies), online mining (``model_export.losses``: batch-hard or semi-hard) of
triplets on the L2-normalised embeddings, margin g. With a teacher bundle, distillation:
the student also learns the teacher's unit embedding of each photo (or the distances
between them), through the teacher's own device path. Validation on pairs of people
kept out of training, every epoch (monitoring only: the final model is the last epoch,
or with ``--average`` the moving average of its weights (``model_export.averaging``),
never picked on the validation pairs, so they stay a fair test). Checkpoints every epoch
(``model_export.checkpoints``); a second run with the same ``--out`` resumes. The output
folder (``model_export.run_record``) is an encoder that ``model-export build --encoder
DIR`` turns into a bundle. This module is the loop; the student's start with ``--init
teacher`` is ``model_export.teacher_cut``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_export import run_record
from model_export.augment import Augment
from model_export.averaging import WeightAverage, decay_for
from model_export.batches import batches, prefetch, with_teacher
from model_export.checkpoints import Checkpoints, TrainState
from model_export.metrics import verification_report
from model_export.run_record import ENCODER_FILE, LOG_FILE
from model_export.teacher_cut import check_cut, refit_cut, student_from_teacher, teacher_source
from model_export.train_data import (
    ARCFACE,
    DLIB_CHIP,
    Geometry,
    Prepared,
    Split,
    prepare,
    split_people,
)
from model_export.train_options import TrainError, TrainOptions, check_options, live

logger = logging.getLogger(__name__)


def _subset(split: Split, max_people: int | None) -> Split:
    if max_people is None or len(split.train) <= max_people:
        return split
    names = sorted(split.train, key=_subset_order(split.train))[:max_people]
    return Split({n: split.train[n] for n in names}, split.val_pairs, split.how)


def _subset_order(people: dict[str, list[Path]]) -> Callable[[str], tuple[int, float, str]]:
    """The order ``--max-people`` takes people in: those with several photos first (they
    make the triplets), and within that every source (``cfp/``, ``lfw/``) in proportion,
    its k-th person of n at k/n: by name alone, 64 people were all CFP's (``cfp/`` sorts
    first), near-frontal and profile crops with no LFW photo among them."""

    def source(name: str) -> str:
        return name.split("/", 1)[0] if "/" in name else ""

    by_source: dict[str, list[str]] = {}
    for name in sorted(people):
        by_source.setdefault(source(name), []).append(name)
    share = {n: i / len(ns) for ns in by_source.values() for i, n in enumerate(ns)}
    return lambda n: (-min(len(people[n]), 4), share[n], n)


# ---------------------------------------------------------------- validation


def embed(model: Any, faces: np.ndarray, batch: int = 256, normalise: bool = True) -> np.ndarray:
    out = [
        np.asarray(model(faces[i : i + batch].astype(np.float32), training=False))
        for i in range(0, len(faces), batch)
    ]
    v = np.concatenate(out)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12) if normalise else v


def validate(model: Any, data: Prepared, split: Split, normalise: bool = True) -> dict[str, Any]:
    """The held-out pairs, Euclidean on the embeddings (L2-normalised unless told not:
    ``--distill centred`` compares the raw outputs, as its bundle will)."""
    from model_export.evaluate import pair_distances

    vectors = embed(model, data.val, normalise=normalise)
    index = {p: i for i, p in enumerate(data.val_paths)}
    pairs = [p for p in split.val_pairs if p.left in index and p.right in index]
    d = pair_distances(vectors, index, pairs, "euclidean")
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    return verification_report(d, same, folds)


# ---------------------------------------------------------------- the run


@dataclass
class _Run:
    """What a run trains, on what: set up when it starts (or resumes)."""

    opts: TrainOptions
    split: Split
    data: Prepared
    geometry: Geometry
    model: Any
    student: dict[str, Any]  # train.json's record of the student
    teacher: Any = None  # the teacher's Keras model (--init teacher)
    cut: Any = None  # what the cut kept (--init teacher)

    @property
    def people(self) -> int:
        return len(set(self.data.labels.tolist()))

    @property
    def steps_per_epoch(self) -> int:
        return self.people // self.opts.people_per_batch


@dataclass(frozen=True)
class _Trainer:
    """What trains the model, step by step and epoch by epoch."""

    step: Callable[..., dict[str, Any]]
    runner: Callable[[np.ndarray], Any] | None  # the teacher in the loop, on each batch
    optimizer: Any
    schedule: Any
    averager: WeightAverage | None
    checkpoints: Checkpoints


def train(opts: TrainOptions) -> Path:
    """Train (or resume) and write the encoder folder; return it."""
    check_options(opts)
    keras = _tensorflow(opts)
    _open(opts)
    run = _start(opts, keras)
    schedule, optimizer = _optimizer(keras, opts, run.steps_per_epoch)
    ckpt = Checkpoints(opts.out / "checkpoints")
    if opts.refit and run.cut is not None:
        _refit_once(run, ckpt)
    averager = (
        WeightAverage(run.model, decay_for(opts.average, run.steps_per_epoch))
        if opts.average
        else None
    )
    state = ckpt.load(run.model, optimizer, averager) or TrainState()
    if state.epoch:
        logger.info("resuming after epoch %d of %d", state.epoch, opts.epochs)
    rng = np.random.default_rng(opts.seed)
    if state.rng is not None:
        rng.bit_generator.state = state.rng
    in_loop = _teacher_in_loop(run)
    step = _training_step(run, in_loop, optimizer, averager)
    runner = in_loop.pair.runner if in_loop is not None else None
    trainer = _Trainer(step, runner, optimizer, schedule, averager, ckpt)
    run_record.write_log(opts.out / LOG_FILE, state.log)  # a resumed run's log is whole
    macs = _announce(run)
    state = _epochs(run, trainer, state, rng)
    _finish(run, averager, state, macs)
    return opts.out


def _tensorflow(opts: TrainOptions) -> Any:
    """Keras, TensorFlow's threads set from ``--threads`` (before it starts)."""
    if opts.threads:
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    import keras
    import tensorflow as tf

    if opts.threads:
        tf.config.threading.set_intra_op_parallelism_threads(opts.threads)
    return keras


def _open(opts: TrainOptions) -> None:
    """The output folder, a new one or one to resume (a run with the same options)."""
    out = opts.out
    if (out / "checkpoints").is_dir() and not run_record.same_run(out, opts):
        raise TrainError(
            f"--out {out} holds a training run with other options: give another --out, "
            "or delete it to start again"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)
    run_record.write_options(out, opts)


def _start(opts: TrainOptions, keras: Any) -> _Run:
    """The split, the prepared faces (with the teacher's embeddings when they are fixed
    targets) and the student: built from scratch, or cut out of the teacher."""
    split = _subset(
        split_people(opts.data, opts.val_pairs, opts.val_folds, opts.val_fraction, opts.seed),
        opts.max_people,
    )
    mode = opts.resolved_loss()
    in_loop = live(opts)
    source = teacher_source(opts) if opts.init == "teacher" else None
    if source is not None:
        check_cut(opts, source.kind)
    geometry = DLIB_CHIP if source is not None and source.kind == "dlib" else ARCFACE
    data = prepare(
        split, opts.teacher if mode != "triplet" and not in_loop else None, geometry=geometry
    )
    if mode != "triplet" and not in_loop and data.teacher is None:
        raise TrainError("teacher embeddings are missing from the prepared data")
    run_record.write_split(opts.out, split, opts.data)

    from model_export.student import StudentConfig, build_student

    keras.utils.set_random_seed(opts.seed)
    cfg = StudentConfig(width=opts.width, dropout=opts.dropout)
    teacher = cut = None
    if opts.init == "teacher":
        assert source is not None
        model, student, teacher, cut = student_from_teacher(opts, source, data)
    else:
        model, student = build_student(cfg), {"init": "scratch", **cfg.record()}
    run = _Run(opts, split, data, geometry, model, student, teacher, cut)
    if run.steps_per_epoch < 1:
        raise TrainError(
            f"{run.people} training people: fewer than one batch of "
            f"{opts.people_per_batch}; lower --people-per-batch"
        )
    return run


def _optimizer(keras: Any, opts: TrainOptions, steps_per_epoch: int) -> tuple[Any, Any]:
    """AdamW on a cosine schedule after a warm-up of an epoch (a tenth of a short run)."""
    total = steps_per_epoch * opts.epochs
    warmup = min(steps_per_epoch, total // 10)
    schedule = keras.optimizers.schedules.CosineDecay(
        opts.learning_rate * 0.1,
        total - warmup,
        alpha=0.01,
        warmup_target=opts.learning_rate,
        warmup_steps=warmup,
    )
    return schedule, keras.optimizers.AdamW(schedule, weight_decay=opts.weight_decay)


def _refit_once(run: _Run, ckpt: Checkpoints) -> None:
    """``--refit``: once, before the first epoch; a resumed run loads the refitted,
    trained weights from its checkpoint and the refit's figures from its record."""
    record = run.opts.out / "checkpoints" / "refit.json"
    if not ckpt.state_file.is_file():
        record.write_text(json.dumps(refit_cut(run.model, run.teacher, run.cut, run.data)))
    if record.is_file():
        run.student["refit"] = json.loads(record.read_text())


# ---------------------------------------------------------------- the step


@dataclass(frozen=True)
class _InLoop:
    """The teacher in the loop: the teacher and student side by side
    (``model_export.live_teacher``), the distillation targets from the teacher's
    outputs, and the units of the student's raw outputs (``--distill centred``)."""

    pair: Any
    targets_of: Callable[[Any], Any]
    scale: float = 1.0


def _teacher_in_loop(run: _Run) -> _InLoop | None:
    if not live(run.opts):
        return None
    import tensorflow as tf

    from model_export.live_teacher import centred_targets, live_teacher, space_targets

    assert run.teacher is not None and run.cut is not None  # live() needs --init teacher
    pair = live_teacher(run.teacher, run.model, run.cut, run.data.centre)
    run.student["hinted"] = pair.names
    mean = tf.constant(pair.mean)
    if run.opts.distill == "centred":
        # the refit fits the linear layer to the raw embedding minus its mean, about
        # norm * (unit - mean): over norm * spread, the targets' units
        run.student["space"] = {"norm": pair.norm, "spread": pair.spread}
        targets = functools.partial(space_targets, mean=mean, spread=pair.spread)
        return _InLoop(pair, targets, pair.norm * pair.spread)
    return _InLoop(pair, functools.partial(centred_targets, mean=mean))


def _training_step(
    run: _Run, in_loop: _InLoop | None, optimizer: Any, averager: WeightAverage | None
) -> Callable[..., dict[str, Any]]:
    """One optimizer step on a batch (a ``tf.function``): the triplet loss, the
    distillation loss and the hint loss, as the options ask."""
    import tensorflow as tf

    from model_export import losses

    if in_loop is not None:
        from model_export.live_teacher import hint_loss

    opts, model = run.opts, run.model
    mode = opts.resolved_loss()
    use_triplet, use_distill = mode in ("triplet", "both"), mode in ("distill", "both")
    distill_fn = {
        "embedding": losses.embedding_distillation_loss,
        "distance": losses.distance_distillation_loss,
        "centred": losses.space_distillation_loss,
    }[opts.distill]
    # --distill centred: the student's raw output is the embedding (no normalisation), in
    # units where the teacher's centred unit embeddings have length about 1
    space = opts.distill == "centred"
    margin, weight, hint_weight = float(opts.margin), float(opts.distill_weight), opts.hints
    pair = in_loop.pair if in_loop is not None else None
    targets_of = in_loop.targets_of if in_loop is not None else None
    scale = in_loop.scale if in_loop is not None else 1.0

    @tf.function(reduce_retracing=True)
    def step(x: Any, labels: Any, targets: Any, maps: tuple[Any, ...]) -> dict[str, Any]:
        x = tf.cast(x, tf.float32)
        if pair is not None:
            targets = targets_of(targets)
        with tf.GradientTape() as tape:
            if pair is not None:
                s_out = pair.student(x, training=True)
                emb = s_out[0]
                hint = hint_loss(s_out[1:], list(maps)) if hint_weight else 0.0
            else:
                emb, hint = model(x, training=True), 0.0
            if space:  # raw outputs, in the targets' units
                emb = emb / scale
            unit = emb if space else losses.l2_normalize(emb)
            trip, stats = losses.mine(labels, unit, margin, opts.mining)
            dist = distill_fn(emb, targets) if use_distill else tf.constant(0.0)
            loss = (trip if use_triplet else 0.0) + weight * dist + hint_weight * hint
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        if averager is not None:
            averager.update()
        return {"loss": loss, "triplet": trip, "distill": dist, "hint": hint, **stats}

    return step


# ---------------------------------------------------------------- the epochs


def _announce(run: _Run) -> int:
    """Log what is trained, on what; the model's multiply-adds per face."""
    from model_export.export import count_macs

    opts, model = run.opts, run.model
    macs = count_macs(model)
    logger.info(
        "training %s (%.1f M multiply-adds, %d parameters): %s loss, %d people, %d photos, "
        "%d steps of %d x %d per epoch, %d epochs; validation: %s",
        model.name,
        macs / 1e6,
        model.count_params(),
        opts.resolved_loss(),
        run.people,
        len(run.data.labels),
        run.steps_per_epoch,
        opts.people_per_batch,
        opts.images_per_person,
        opts.epochs,
        run.split.how,
    )
    return macs


def _epochs(
    run: _Run, trainer: _Trainer, state: TrainState, rng: np.random.Generator
) -> TrainState:
    """Every epoch left: train, validate, checkpoint, log. The state after the last."""
    opts = run.opts
    augment = Augment(size=run.geometry.size, pad=run.geometry.pad)
    for epoch in range(state.epoch + 1, opts.epochs + 1):
        t0 = time.monotonic()
        steps, means = _train_epoch(run, trainer, rng, augment, epoch)
        if not np.isfinite(means.get("loss", np.nan)):
            raise TrainError(f"epoch {epoch}: the loss is not finite; lower --learning-rate")
        with averaged(trainer.averager):
            report = validate(run.model, run.data, run.split, normalise=opts.distill != "centred")
        seconds = time.monotonic() - t0
        lr = float(trainer.schedule(trainer.optimizer.iterations))
        row = run_record.log_row(epoch, steps, seconds, lr, means, report)
        state = state.after(seconds, rng.bit_generator.state, report, row)
        trainer.checkpoints.save(run.model, trainer.optimizer, state, trainer.averager)
        run_record.write_log(opts.out / LOG_FILE, state.log)
        _log_epoch(epoch, opts.epochs, means, report, seconds)
    return state


def _train_epoch(
    run: _Run, trainer: _Trainer, rng: np.random.Generator, augment: Augment, epoch: int
) -> tuple[int, dict[str, float]]:
    """One epoch's steps; their number and the mean of each loss figure."""
    sums: dict[str, float] = {}
    n = 0
    it = batches(run.data, run.opts, rng, augment)
    if trainer.runner is not None:
        it = with_teacher(it, trainer.runner)
    it = prefetch(it)
    desc = f"epoch {epoch}/{run.opts.epochs}"
    for x, labels, targets, *maps in _progress(it, run.steps_per_epoch, desc):
        result = trainer.step(x, labels, targets, tuple(maps))
        for key, value in result.items():
            sums[key] = sums.get(key, 0.0) + float(value)
        n += 1
    return n, {k: v / max(n, 1) for k, v in sums.items()}


def _log_epoch(
    epoch: int, epochs: int, means: dict[str, float], report: dict[str, Any], seconds: float
) -> None:
    logger.info(
        "epoch %d/%d: loss %.4f (triplet %.4f, distill %.4f, hint %.4f, %.0f%% active) | held-out "
        "pairs: accuracy %.2f%%, TAR@1e-3 %.2f%% | %.0f s",
        epoch,
        epochs,
        means.get("loss", 0),
        means.get("triplet", 0),
        means.get("distill", 0),
        means.get("hint", 0),
        100 * means.get("active", 0),
        100 * report["accuracy_mean"],
        100 * report["tar_at_far"],
        seconds,
    )


def _finish(run: _Run, averager: WeightAverage | None, state: TrainState, macs: int) -> None:
    """The plot, the encoder (the averaged weights when the run averages them), train.json."""
    out = run.opts.out
    run_record.plot_log(out / LOG_FILE, out / "training.png")
    with averaged(averager):
        run_record.save_encoder(run.model, out / ENCODER_FILE)
    stats = {k: v for k, v in run.data.stats.items() if k != "cache"}
    data = {"people": run.people, "photos": len(run.data.labels), **stats}
    meta = run_record.train_meta(
        run.opts,
        run.model,
        run.student,
        run.geometry,
        data,
        run.split.how,
        state.last_validation,
        state.seconds,
        macs,
    )
    run_record.write_meta(out, meta)


def averaged(averager: WeightAverage | None) -> contextlib.AbstractContextManager[None]:
    """The block runs on the averaged weights, when the run averages them."""
    return averager.applied() if averager is not None else contextlib.nullcontext()


def _progress(it: Iterator[Any], total: int, desc: str) -> Iterator[Any]:
    from tqdm import tqdm

    yield from tqdm(
        it,
        total=total,
        desc=desc,
        unit="step",
        leave=False,
        mininterval=5,
        disable=None,
        file=sys.stderr,
    )
