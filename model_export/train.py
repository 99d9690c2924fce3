"""``model-export train``: a small Siamese face encoder trained with the triplet loss.

Batches of P people x K photos (a person with fewer than K photos gives differently
augmented copies), online mining (``model_export.losses``: batch-hard or semi-hard) of
triplets on the L2-normalised embeddings, margin g. With a teacher bundle, distillation:
the student also learns the teacher's unit embedding of each photo (or the distances
between them), through the teacher's own device path. Validation on pairs of people
kept out of training, every epoch (monitoring only: the final model is the last epoch,
or with ``--average`` the moving average of its weights (``model_export.averaging``),
never picked on the validation pairs, so they stay a fair test). Checkpoints every epoch;
a second run with the same ``--out`` resumes. The output folder is an encoder that
``model-export build --encoder DIR`` turns into a bundle.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import json
import logging
import os
import queue
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from model_export.augment import Augment
from model_export.averaging import WeightAverage, decay_for
from model_export.metrics import verification_report
from model_export.train_data import (
    ARCFACE,
    DLIB_CHIP,
    Prepared,
    Split,
    prepare,
    split_people,
)
from model_export.train_options import TrainError, TrainOptions, check_options, default, live

logger = logging.getLogger(__name__)

ENCODER_FILE = "encoder.keras"
META_FILE = "train.json"
LOG_FILE = "log.csv"
NORMALISATION = "(pixel - 127.5) / 128, inside the graph"
PAIRS_FILE = "val_pairs.json"
AVERAGE_FILE = "average.npz"
LOG_COLUMNS = [
    "epoch",
    "steps",
    "seconds",
    "lr",
    "loss",
    "triplet",
    "distill",
    "hint",
    "active",
    "d_ap",
    "d_an",
    "val_accuracy",
    "val_tar_at_far",
    "val_auc",
    "val_tau",
]


def _subset(split: Split, max_people: int | None) -> Split:
    if max_people is None or len(split.train) <= max_people:
        return split
    # people with several photos first (they make the triplets), then the others
    names = sorted(split.train, key=lambda n: (-min(len(split.train[n]), 4), n))[:max_people]
    return Split({n: split.train[n] for n in names}, split.val_pairs, split.how)


# ---------------------------------------------------------------- batches


def batches(
    data: Prepared, opts: TrainOptions, rng: np.random.Generator, augment: Augment
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of (faces uint8 BxSxSx3, labels, teacher targets BxD or Bx0)."""
    by_person: dict[int, list[int]] = {}
    for i, label in enumerate(data.labels):
        by_person.setdefault(int(label), []).append(i)
    people = np.array(sorted(by_person))
    rng.shuffle(people)
    p, k = opts.people_per_batch, opts.images_per_person
    dim = data.teacher.shape[1] if data.teacher is not None else 0
    for start in range(0, len(people) - p + 1, p):
        rows: list[int] = []
        for person in people[start : start + p]:
            photos = np.array(by_person[int(person)])
            order = rng.permutation(photos)
            rows += [int(order[j % len(order)]) for j in range(k)]
        faces = np.empty((len(rows), augment.size, augment.size, 3), np.uint8)
        targets = np.zeros((len(rows), dim), np.float32)
        for j, row in enumerate(rows):
            faces[j], flipped = augment(data.wide[row], rng)
            if data.teacher is not None and data.teacher_flip is not None:
                targets[j] = (data.teacher_flip if flipped else data.teacher)[row]
        labels = data.labels[rows]  # a new array (indexed by a list): marked below
        if opts.mixup:
            labels[mix(faces, labels, opts.mixup, rng)] = NO_IDENTITY
        yield faces, labels, targets


NO_IDENTITY = -1  # the label of a mixed face: left out of the triplet loss (losses.mine)


def mix(
    faces: np.ndarray, labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Replace a ``fraction`` of the faces, in place, by a blend of that face and another
    person's (weight 0.3-0.7): faces no one has, for a teacher in the loop to label.
    Returns the mask of the faces mixed (they belong to no one of ``labels``)."""
    n = len(faces)
    source = faces.copy()  # blends of the faces as they came, never of earlier blends
    mixed = np.zeros(n, bool)
    for j in np.flatnonzero(rng.random(n) < fraction):
        others = np.flatnonzero(labels != labels[j])
        if not len(others):
            continue
        k = int(rng.choice(others))
        w = rng.uniform(0.3, 0.7)
        faces[j] = np.rint(w * source[j] + (1 - w) * source[k]).astype(np.uint8)
        mixed[j] = True
    return mixed


def with_teacher(it: Iterator[Any], runner: Any) -> Iterator[Any]:
    """Each batch with the teacher's outputs on its faces as they are (augmented, mixed):
    (faces, labels, teacher embeddings, *teacher maps)."""
    for faces, labels, _ in it:
        embedding, *maps = runner(faces)
        yield (faces, labels, embedding, *maps)


def _prefetch(it: Iterator[Any], depth: int = 3) -> Iterator[Any]:
    """Build the next batches in a thread while the current one trains."""
    q: queue.Queue[Any] = queue.Queue(depth)
    done = object()
    failed: list[BaseException] = []

    def work() -> None:
        try:
            for item in it:
                q.put(item)
        except BaseException as exc:  # handed to the training thread, raised there
            failed.append(exc)
        finally:
            q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not done:
        yield item
    if failed:
        raise failed[0]


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


# ---------------------------------------------------------------- checkpoints


class Checkpoints:
    """The model's weights, the optimizer's state and the loop's own state, per epoch.
    Each epoch's files go to a folder of their own; ``state.json``, which names that
    folder, is replaced last (atomically), so a kill at any moment leaves a whole
    checkpoint: the new one or the previous one."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def state_file(self) -> Path:
        return self.folder / "state.json"

    def save(
        self,
        model: Any,
        optimizer: Any,
        state: dict[str, Any],
        average: WeightAverage | None = None,
    ) -> None:
        name = f"epoch-{state['epoch']:04d}"
        target = self.folder / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        model.save_weights(target / "model.weights.h5")
        opt = {f"v{i}": np.asarray(v) for i, v in enumerate(optimizer.variables)}
        np.savez(target / "optimizer.npz", **opt)
        if average is not None:
            average.save(target / AVERAGE_FILE)
        part = self.folder / "state.json.part"
        part.write_text(json.dumps({**state, "checkpoint": name}, indent=1))
        part.replace(self.state_file)
        for old in self.folder.glob("epoch-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def load(
        self, model: Any, optimizer: Any, average: WeightAverage | None = None
    ) -> dict[str, Any] | None:
        if not self.state_file.is_file():
            return None
        state: dict[str, Any] = json.loads(self.state_file.read_text())
        target = self.folder / state.pop("checkpoint")
        model.load_weights(target / "model.weights.h5")
        optimizer.build(model.trainable_variables)
        saved = np.load(target / "optimizer.npz")
        if len(saved.files) != len(optimizer.variables):
            raise TrainError(f"{self.folder}: the checkpoint's optimizer does not match this run")
        for i, v in enumerate(optimizer.variables):
            v.assign(saved[f"v{i}"])
        if average is not None:
            average.load(target / AVERAGE_FILE)
        return state


# ---------------------------------------------------------------- the loop


def _same_run(out: Path, opts: TrainOptions) -> bool:
    """Whether ``out`` holds a run with these options (so it may be resumed)."""
    meta = out / "checkpoints" / "options.json"
    return meta.is_file() and json.loads(meta.read_text()) == _options_record(opts)


def _options_record(opts: TrainOptions) -> dict[str, Any]:
    record = asdict(opts)
    record.pop("command")
    return json.loads(json.dumps(record, default=str))


def train(opts: TrainOptions) -> Path:
    """Train (or resume) and write the encoder folder; return it."""
    check_options(opts)
    if opts.threads:
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    import keras
    import tensorflow as tf

    from model_export import losses
    from model_export.export import count_macs
    from model_export.student import StudentConfig, build_student

    if opts.threads:
        tf.config.threading.set_intra_op_parallelism_threads(opts.threads)
    out = opts.out
    if (out / "checkpoints").is_dir() and not _same_run(out, opts):
        raise TrainError(
            f"--out {out} holds a training run with other options: give another --out, "
            "or delete it to start again"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)
    (out / "checkpoints" / "options.json").write_text(json.dumps(_options_record(opts)))

    split = _subset(
        split_people(opts.data, opts.val_pairs, opts.val_folds, opts.val_fraction, opts.seed),
        opts.max_people,
    )
    mode = opts.resolved_loss()
    in_loop = live(opts)
    teacher_source = _teacher_source(opts) if opts.init == "teacher" else None
    if teacher_source is not None:
        check_cut(opts, teacher_source.kind)
    geometry = (
        DLIB_CHIP if teacher_source is not None and teacher_source.kind == "dlib" else ARCFACE
    )
    data = prepare(
        split, opts.teacher if mode != "triplet" and not in_loop else None, geometry=geometry
    )
    if mode != "triplet" and not in_loop and data.teacher is None:
        raise TrainError("teacher embeddings are missing from the prepared data")
    _write_pairs(out / PAIRS_FILE, split, opts.data)
    (out / "train_people.txt").write_text("".join(f"{n}\n" for n in sorted(split.train)))

    keras.utils.set_random_seed(opts.seed)
    cfg = StudentConfig(width=opts.width, dropout=opts.dropout)
    teacher_model = cut = None
    if opts.init == "teacher":
        assert teacher_source is not None
        model, student_record, teacher_model, cut = student_from_teacher(opts, teacher_source, data)
    else:
        model, student_record = build_student(cfg), {"init": "scratch", **cfg.record()}
    people = len(set(data.labels.tolist()))
    steps_per_epoch = people // opts.people_per_batch
    if steps_per_epoch < 1:
        raise TrainError(
            f"{people} training people: fewer than one batch of "
            f"{opts.people_per_batch}; lower --people-per-batch"
        )
    total = steps_per_epoch * opts.epochs
    warmup = min(steps_per_epoch, total // 10)
    schedule = keras.optimizers.schedules.CosineDecay(
        opts.learning_rate * 0.1,
        total - warmup,
        alpha=0.01,
        warmup_target=opts.learning_rate,
        warmup_steps=warmup,
    )
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=opts.weight_decay)
    ckpt = Checkpoints(out / "checkpoints")
    if opts.refit and cut is not None:
        # once, before the first epoch; a resumed run loads the refitted, trained weights
        # from its checkpoint and the refit's figures from its record
        record = out / "checkpoints" / "refit.json"
        if not ckpt.state_file.is_file():
            record.write_text(json.dumps(refit_cut(model, teacher_model, cut, data)))
        if record.is_file():
            student_record["refit"] = json.loads(record.read_text())
    averager = (
        WeightAverage(model, decay_for(opts.average, steps_per_epoch)) if opts.average else None
    )
    fresh = {"epoch": 0, "seconds": 0.0, "rng": None, "log": []}
    state = ckpt.load(model, optimizer, averager) or fresh
    if state["epoch"]:
        logger.info("resuming after epoch %d of %d", state["epoch"], opts.epochs)
    rng = np.random.default_rng(opts.seed)
    if state["rng"] is not None:
        rng.bit_generator.state = state["rng"]

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
    pair = None
    scale = 1.0
    if in_loop:
        from model_export.live_teacher import (
            centred_targets,
            hint_loss,
            live_teacher,
            space_targets,
        )

        assert teacher_model is not None and cut is not None  # live() needs --init teacher
        pair = live_teacher(teacher_model, model, cut, data.centre)
        student_record["hinted"] = pair.names
        mean = tf.constant(pair.mean)
        if space:
            # the refit fits the linear layer to the raw embedding minus its mean, about
            # norm * (unit - mean): over norm * spread, the targets' units
            scale = pair.norm * pair.spread
            student_record["space"] = {"norm": pair.norm, "spread": pair.spread}
            targets_of = functools.partial(space_targets, mean=mean, spread=pair.spread)
        else:
            targets_of = functools.partial(centred_targets, mean=mean)

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

    augment = Augment(size=geometry.size, pad=geometry.pad)
    log_path = out / LOG_FILE
    write_log(log_path, state["log"])  # the checkpoint's rows: a resumed run's log is whole
    macs = count_macs(model)
    logger.info(
        "training %s (%.1f M multiply-adds, %d parameters): %s loss, %d people, %d photos, "
        "%d steps of %d x %d per epoch, %d epochs; validation: %s",
        model.name,
        macs / 1e6,
        model.count_params(),
        mode,
        people,
        len(data.labels),
        steps_per_epoch,
        opts.people_per_batch,
        opts.images_per_person,
        opts.epochs,
        split.how,
    )
    report: dict[str, Any] = state.get("last_validation", {})
    for epoch in range(state["epoch"] + 1, opts.epochs + 1):
        t0 = time.monotonic()
        sums: dict[str, float] = {}
        n = 0
        it = batches(data, opts, rng, augment)
        if pair is not None:
            it = with_teacher(it, pair.runner)
        it = _prefetch(it)
        for x, labels, targets, *maps in _progress(
            it, steps_per_epoch, f"epoch {epoch}/{opts.epochs}"
        ):
            result = step(x, labels, targets, tuple(maps))
            for key, value in result.items():
                sums[key] = sums.get(key, 0.0) + float(value)
            n += 1
        means = {k: v / max(n, 1) for k, v in sums.items()}
        if not np.isfinite(means.get("loss", np.nan)):
            raise TrainError(f"epoch {epoch}: the loss is not finite; lower --learning-rate")
        with averaged(averager):
            report = validate(model, data, split, normalise=not space)
        seconds = time.monotonic() - t0
        row = [
            epoch,
            n,
            round(seconds, 1),
            float(schedule(optimizer.iterations)),
            *(
                round(means.get(k, 0.0), 5)
                for k in ("loss", "triplet", "distill", "hint", "active", "d_ap", "d_an")
            ),
            round(report["accuracy_mean"], 4),
            round(report["tar_at_far"], 4),
            round(report["auc"], 4),
            round(report["tau"], 4),
        ]
        state = {
            "epoch": epoch,
            "seconds": state["seconds"] + seconds,
            "rng": rng.bit_generator.state,
            "last_validation": report,
            "log": [*state["log"], row],
        }
        ckpt.save(model, optimizer, state, averager)
        write_log(log_path, state["log"])
        logger.info(
            "epoch %d/%d: loss %.4f (triplet %.4f, distill %.4f, hint %.4f, %.0f%% active) | held-out "
            "pairs: accuracy %.2f%%, TAR@1e-3 %.2f%% | %.0f s",
            epoch,
            opts.epochs,
            means.get("loss", 0),
            means.get("triplet", 0),
            means.get("distill", 0),
            means.get("hint", 0),
            100 * means.get("active", 0),
            100 * report["accuracy_mean"],
            100 * report["tar_at_far"],
            seconds,
        )
    plot_log(log_path, out / "training.png")
    with averaged(averager):
        _save_encoder(model, out / ENCODER_FILE)
    meta = {
        "format": 1,
        "name": f"edge-face-student-{_short(opts)}-{mode}",
        "command": opts.command,
        "options": _options_record(opts),
        "loss": mode,
        "student": {**student_record, "embedding_size": int(model.output.shape[-1])},
        "macs": macs,
        "parameters": int(model.count_params()),
        "input": {
            "size": geometry.size,
            "color": "RGB",
            "range": "0-255",
            "normalisation": student_record.get("normalisation", NORMALISATION),
        },
        "alignment": {
            **geometry.alignment(),
            "note": f"similarity onto the {geometry.name} template, on the detector's five points",
        },
        "metric": "euclidean on raw embeddings"
        if space
        else "euclidean on L2-normalised embeddings",
        "l2_normalize": not space,
        "teacher": _teacher_record(opts.teacher) if mode != "triplet" else None,
        "data": {
            "root": str(opts.data),
            "people": people,
            "photos": len(data.labels),
            **{k: v for k, v in data.stats.items() if k != "cache"},
        },
        "validation": {
            "pairs_file": PAIRS_FILE,
            "split": split.how,
            "final": report,
            "model": _written(opts),
        },
        "epochs": opts.epochs,
        "training_seconds": round(state["seconds"], 1),
        "machine": _machine(),
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=1, default=str))
    return out


def averaged(averager: WeightAverage | None) -> contextlib.AbstractContextManager[None]:
    """The block runs on the averaged weights, when the run averages them."""
    return averager.applied() if averager is not None else contextlib.nullcontext()


def _written(opts: TrainOptions) -> str:
    if opts.average:
        return (
            f"the moving average of the weights over about the last {opts.average:g} epochs, "
            "at the last epoch (never selected on these pairs)"
        )
    return "the last epoch (never selected on these pairs)"


def write_log(path: Path, rows: list[list[Any]]) -> None:
    """The CSV log, rewritten whole from the checkpoint's rows (atomically)."""
    tmp = path.with_name("tmp." + path.name)
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(LOG_COLUMNS)
        writer.writerows(rows)
    tmp.replace(path)


def _short(opts: TrainOptions) -> str:
    if opts.init != "teacher":
        return f"w{opts.width:g}"
    keep = opts.keep if isinstance(opts.keep, float | int) else min(opts.keep.values())
    return f"cut{keep:g}"


def _teacher_source(opts: TrainOptions) -> Any:
    """The encoder the teacher bundle holds (its manifest names its source)."""
    from model_export.encoders import EncoderError, resolve_encoder

    assert opts.teacher is not None
    manifest = json.loads((opts.teacher / "manifest.json").read_text())
    source = manifest.get("provenance", {}).get("encoder_source")
    if not source:
        raise TrainError(
            f"--teacher {opts.teacher}: its manifest does not say which encoder it holds"
        )
    try:
        return resolve_encoder(source)
    except EncoderError as exc:
        raise TrainError(f"--init teacher: {exc}") from exc


CUT_PLAN_FACES = 128
CHAIN_DROP = ("conv_11", "conv_12")  # a chain's (SFace's) blocks left out by default


def check_cut(opts: TrainOptions, kind: str) -> None:
    """The options that shape the cut against the kind of encoder the teacher holds
    (``dlib``: ``model_export.resnet_cut``; else a chain: ``model_export.prune``), before
    any data is prepared."""
    if kind == "dlib":
        if opts.scale != 1 or opts.stem_stride != 1 or opts.drop_blocks is not None:
            raise TrainError(
                "--scale, --stem-stride and --drop-blocks cut SFace-style chains; a cut of "
                "dlib's ResNet takes --keep (its stream), --inner-keep and --stem-kernel"
            )
    elif opts.stem_kernel != 7:
        raise TrainError("--stem-kernel shapes a cut of dlib's ResNet (give a dlib --teacher)")
    elif opts.inner_keep != default("inner_keep"):
        raise TrainError("--inner-keep shapes a cut of dlib's ResNet (give a dlib --teacher)")


def student_from_teacher(
    opts: TrainOptions, source: Any, data: Prepared
) -> tuple[Any, dict[str, Any], Any, Any]:
    """The student cut out of the teacher bundle's own encoder (its float Keras model):
    dlib's ResNet by ``model_export.resnet_cut``, a chain (SFace) by
    ``model_export.prune``; what was kept; the teacher model; the cut's report."""
    from model_export.encoders import EncoderError
    from model_export.prune import PruneError, pruned_student

    try:
        teacher = source.keras_model()
    except EncoderError as exc:
        raise TrainError(f"--init teacher: {exc}") from exc
    if source.kind == "dlib":
        from model_export.resnet_cut import resnet_cut

        centre = data.centre
        pick = np.linspace(0, len(centre) - 1, min(CUT_PLAN_FACES, len(centre))).astype(int)
        try:
            model, cut = resnet_cut(
                teacher, opts.keep, opts.inner_keep, centre[pick], opts.stem_kernel
            )
        except ValueError as exc:
            raise TrainError(f"--init teacher: {exc}") from exc
        record = {
            "init": "teacher",
            "architecture": "dlib's ResNet, cut (model_export.resnet_cut)",
            "teacher_encoder": source.name,
            **cut.record(),
            "normalisation": "(pixel - mean) / 256, folded into the first convolution",
        }
        return model, record, teacher, cut
    try:
        model, report = pruned_student(
            teacher,
            opts.keep,
            CHAIN_DROP if opts.drop_blocks is None else opts.drop_blocks,
            stem_stride=opts.stem_stride,
            scale=opts.scale,
        )
    except PruneError as exc:
        raise TrainError(f"--init teacher: {exc}") from exc
    record = {
        "init": "teacher",
        "teacher_encoder": source.name,
        "keep": opts.keep,
        "stem_stride": opts.stem_stride,
        "scale": opts.scale,
        "dropped_blocks": report.dropped,
        "channels": report.kept,
        "prelu_replaced_by_relu": len(report.prelu_slopes),
    }
    return model, record, teacher, report


REFIT_FACES = 256
REFIT_FACES_RESNET = 1024  # its last maps are 3x3: 256 faces are learnt by heart


def refit_cut(model: Any, teacher: Any, cut: Any, data: Prepared) -> dict[str, Any]:
    """The cut refitted to the teacher layer by layer (``model_export.reconstruct``,
    ``model_export.resnet_cut.refit``): the convolutions on a few hundred training faces
    spread over the set, the last linear layer on every training face. Returns the
    per-layer errors (for train.json)."""
    from model_export.reconstruct import reconstruct
    from model_export.resnet_cut import ResnetCut
    from model_export.resnet_cut import refit as refit_resnet

    t0 = time.monotonic()
    centre = data.centre
    resnet = isinstance(cut, ResnetCut)
    n = REFIT_FACES_RESNET if resnet else REFIT_FACES
    pick = np.linspace(0, len(centre) - 1, min(n, len(centre))).astype(int)
    logger.info("refitting the cut to the teacher on %d faces (a few minutes)", len(pick))
    if resnet:
        result = refit_resnet(model, teacher, cut, centre[pick], dense_faces=centre)
    else:
        result = reconstruct(model, teacher, cut, centre[pick], dense_faces=centre)
    logger.info("refit done in %.0f s", time.monotonic() - t0)
    return {
        "faces": len(pick),
        "dense_faces": len(centre),
        "relative_error_before": {k: round(v, 4) for k, v in result.before.items()},
        "relative_error_after": {k: round(v, 4) for k, v in result.after.items()},
        "dense_ridge": result.dense_ridge,
        "seconds": round(time.monotonic() - t0, 1),
    }


def _save_encoder(model: Any, path: Path) -> None:
    tmp = path.with_name("tmp." + path.name)
    model.save(tmp)
    tmp.replace(path)


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


def _write_pairs(path: Path, split: Split, root: Path) -> None:
    """The validation pairs, relative to the data root (``model-export build`` reads them)."""
    rows = [
        [p.fold, str(p.left.relative_to(root)), str(p.right.relative_to(root)), p.same]
        for p in split.val_pairs
    ]
    path.write_text(json.dumps({"format": "edge-face pairs 1", "how": split.how, "pairs": rows}))


def _teacher_record(bundle: Path | None) -> dict[str, Any] | None:
    if bundle is None:
        return None
    manifest = json.loads((bundle / "manifest.json").read_text())
    return {
        "bundle": str(bundle),
        "name": manifest.get("name"),
        "encoder_id": manifest.get("encoder_id"),
    }


def _machine() -> dict[str, Any]:
    import platform

    import tensorflow as tf

    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
    }


def plot_log(log: Path, png: Path) -> None:
    """Loss and held-out accuracy per epoch, from the CSV log."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: %s not drawn (the CSV has the figures)", png)
        return
    with log.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [int(r["epoch"]) for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "triplet", "distill", "hint"):
        values = [float(r.get(key) or 0) for r in rows]  # older logs have no hint column
        if any(values):
            ax1.plot(epochs, values, marker=".", label=key)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training loss")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(
        epochs,
        [100 * float(r["val_accuracy"]) for r in rows],
        marker=".",
        label="accuracy (k-fold)",
    )
    ax2.plot(
        epochs,
        [100 * float(r["val_tar_at_far"]) for r in rows],
        marker=".",
        label="TAR at FAR 1e-3",
    )
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("held-out pairs, %")
    ax2.legend()
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    tmp = png.with_name("tmp." + png.name)
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    tmp.replace(png)


def copy_run(src: Path, dst: Path) -> None:
    """Copy a finished run's encoder and records (not its checkpoints) to ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in (ENCODER_FILE, META_FILE, LOG_FILE, PAIRS_FILE, "training.png", "train_people.txt"):
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
