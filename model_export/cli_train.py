"""``model-export train``: the verb and its flags (their defaults are
``model_export.train_options``'s); the loop is ``model_export.train``, imported when the
verb runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from edge.errors import EdgeError
from model_export.cli_common import ExistingDir, ExistingFile, PathArg, face_data, fail, table
from model_export.train_options import DISTILL, INITS, LOSSES, MINING
from model_export.train_options import default as train_default


def _fractions(value: str, flag: str = "--keep") -> float | dict[int, float]:
    """--keep, --inner-keep: one fraction, or height:fraction entries."""
    try:
        if ":" not in value:
            parts = {0: float(value)}
        else:
            parts = {int(h): float(f) for h, f in (part.split(":") for part in value.split(","))}
    except ValueError:
        raise click.UsageError(
            f"{flag} {value}: expected a fraction (0.33) or height:fraction entries "
            "(56:0.25,14:0.5)"
        ) from None
    if not all(0.05 <= f <= 1 for f in parts.values()):
        raise click.UsageError(f"{flag} {value}: each fraction must be within 0.05-1")
    return parts[0] if ":" not in value else parts


@click.command()
@click.option(
    "--data",
    "data_dir",
    type=ExistingDir,
    default=None,
    help="Photos to train on, one folder per person (default: the train people of the shared "
    "faces, data/splits.json).",
)
@click.option(
    "--out",
    type=PathArg,
    required=True,
    help="Folder for the trained encoder, its log and checkpoints (resumed if there).",
)
@click.option(
    "--teacher",
    type=ExistingDir,
    default=None,
    help="A model bundle to distil from (e.g. build/bundle, the dlib one).",
)
@click.option(
    "--loss",
    type=click.Choice(LOSSES),
    default=train_default("loss"),
    show_default=True,
    help="auto: both with --teacher, triplet without.",
)
@click.option(
    "--epochs", type=click.IntRange(1), default=train_default("epochs"), show_default=True
)
@click.option(
    "--mining",
    type=click.Choice(MINING),
    default=train_default("mining"),
    show_default=True,
    help="How triplets are chosen in each batch.",
)
@click.option(
    "--margin",
    type=click.FloatRange(0, 2),
    default=train_default("margin"),
    show_default=True,
    help="The triplet loss margin g (on unit-length embeddings).",
)
@click.option(
    "--distill",
    type=click.Choice(DISTILL),
    default=train_default("distill"),
    show_default=True,
    help="Learn the teacher's embeddings (unit length, centred), its distances, or "
    "(centred, with --teacher-in-loop) its unit embeddings minus their mean as they are: "
    "the teacher's own metric space, the student's raw output compared without "
    "normalisation.",
)
@click.option(
    "--distill-weight",
    type=click.FloatRange(0),
    default=train_default("distill_weight"),
    show_default=True,
)
@click.option(
    "--people-per-batch",
    "people",
    type=click.IntRange(2),
    default=train_default("people_per_batch"),
    show_default=True,
)
@click.option(
    "--images-per-person",
    "per_person",
    type=click.IntRange(2),
    default=train_default("images_per_person"),
    show_default=True,
)
@click.option(
    "--learning-rate",
    type=click.FloatRange(0, min_open=True),
    default=train_default("learning_rate"),
    show_default=True,
)
@click.option(
    "--weight-decay",
    type=click.FloatRange(0),
    default=train_default("weight_decay"),
    show_default=True,
    help="AdamW's decoupled weight decay (each step shrinks the weights by learning rate x this).",
)
@click.option(
    "--width",
    type=click.FloatRange(0.125, 2),
    default=train_default("width"),
    show_default=True,
    help="Width multiplier of the network (0.5: about 59 M multiply-adds per face).",
)
@click.option(
    "--init",
    type=click.Choice(INITS),
    default=train_default("init"),
    show_default=True,
    help="teacher: cut the student out of the teacher's encoder (dlib's ResNet, or a "
    "plain chain as SFace) instead of starting from random weights.",
)
@click.option(
    "--keep",
    default=str(train_default("keep")),
    show_default=True,
    help="With --init teacher: the fraction of each layer's channels kept (of dlib's "
    "ResNet: of its residual stream); or one per resolution, by the height of the "
    "layer's maps: 56:0.25,28:0.35,14:0.5,7:0.75 for a chain (a layer takes the entry of "
    "the smallest height at or above its own); dlib's stages are 35, 17, 8, 4 and 1 "
    "rows high.",
)
@click.option(
    "--inner-keep",
    default=str(train_default("inner_keep")),
    show_default=True,
    help="With --init teacher and dlib's ResNet as the teacher: the fraction of the "
    "channels kept inside each residual block; or one per stage, as --keep: "
    "35:0.25,17:0.625,8:0.5,4:0.25,1:0.5.",
)
@click.option(
    "--stem-kernel",
    type=click.Choice(["3", "5", "7"]),
    default=str(train_default("stem_kernel")),
    show_default=True,
    help="With --init teacher and dlib's ResNet as the teacher: the first convolution's "
    "kernel (the middle taps of dlib's 7x7, refitted with --refit; int8 runs a 3x3 one in "
    "half the time).",
)
@click.option(
    "--stem-stride",
    type=click.Choice(["1", "2"]),
    default=str(train_default("stem_stride")),
    show_default=True,
    help="With --init teacher: 2 runs the first convolution at stride 2 (and the first "
    "downsampling one at stride 1): the same maps after them, a quarter of their cost.",
)
@click.option(
    "--scale",
    type=click.Choice(["1", "2"]),
    default=str(train_default("scale")),
    show_default=True,
    help="With --init teacher: 2 runs the whole cut at half resolution (the face averaged "
    "to 56x56, every map half the teacher's size: a quarter of the multiply-adds).",
)
@click.option(
    "--refit",
    is_flag=True,
    help="With --init teacher: before training, refit each layer of the cut to the "
    "teacher's maps by least squares on real faces (a few minutes).",
)
@click.option(
    "--teacher-in-loop",
    is_flag=True,
    help="With --init teacher: the teacher's float model labels every augmented crop as "
    "the student sees it and also teaches its maps (--hints); an epoch takes about 1.7x as "
    "long for a cut of dlib, 5x for a cut of SFace (default: its embeddings of each photo, "
    "computed once).",
)
@click.option(
    "--hints",
    type=click.FloatRange(0),
    default=train_default("hints"),
    show_default=True,
    help="With --teacher-in-loop: weight of the teacher's own maps as targets (0: its "
    "embeddings only).",
)
@click.option(
    "--mixup",
    type=click.FloatRange(0, 1),
    default=train_default("mixup"),
    show_default=True,
    help="With --teacher-in-loop: fraction of each batch replaced by blends of two people's "
    "faces, labelled by the teacher (and left out of the triplet loss).",
)
@click.option(
    "--average",
    type=click.FloatRange(0),
    default=train_default("average"),
    show_default=True,
    help="Write (and validate) the moving average of the weights over about this many "
    "epochs instead of the last epoch's weights (0: off).",
)
@click.option(
    "--max-people",
    type=click.IntRange(2),
    default=None,
    help="Train on this many people only (those with the most photos first).",
)
@click.option(
    "--drop-blocks",
    default=None,
    help="With --init teacher and a chain (SFace) as the teacher: its blocks to leave out "
    "(comma-separated; '' none).  [default: conv_11,conv_12]",
)
@click.option(
    "--val-pairs",
    type=ExistingFile,
    default=None,
    help="Pairs whose people are held out and measure the encoder (default for the shared "
    "faces: pairs of the select people of data/splits.json; for another DATA: a held-out "
    "fifth of its people).",
)
@click.option(
    "--val-folds",
    default=",".join(map(str, train_default("val_folds"))),
    show_default=True,
    help="Folds of --val-pairs to use.",
)
@click.option("--seed", type=int, default=train_default("seed"), show_default=True)
@click.option(
    "--quick",
    is_flag=True,
    help="A smoke test of the whole loop: 4 epochs on 600 people, one validation fold.",
)
def train(data_dir: Path | None, out: Path, teacher: Path | None, loss: str, epochs: int,
          mining: str, margin: float, distill: str, distill_weight: float, people: int,
          per_person: int, learning_rate: float, weight_decay: float, width: float, init: str, keep: str,
          inner_keep: str, stem_kernel: str, stem_stride: str, scale: str, refit: bool, teacher_in_loop: bool, hints: float, mixup: float,
          average: float, max_people: int | None, drop_blocks: str | None,
          val_pairs: Path | None, val_folds: str, seed: int, quick: bool) -> None:  # fmt: skip
    """Train a small face encoder with the triplet loss (and distillation from a teacher).

    By default it learns from the train people of the shared faces and is measured on
    pairs of the select people (data/splits.json: the people the bundle's thresholds
    are fitted on and those the benchmarks report on are never seen); --data DIR is one
    folder per person of your own. The network is MobileFaceNet-shaped (ReLU, 112x112
    faces aligned on the detector's five points, 128-d); batches of P people x K photos;
    online triplet mining; validation on people kept out of training, every epoch. Writes
    OUT/encoder.keras, train.json, log.csv and training.png; then
    `model-export build --encoder OUT` makes the bundle. Rerun the same command to resume.

    \b
    Example:
      model-export train --out build/student --teacher build/bundle --epochs 40
      model-export build --out build/bundle-student --encoder build/student --quantization int8
    """
    from model_export.train import train as run_train
    from model_export.train_options import TrainOptions, quick_options

    root = data_dir or face_data(None)  # the shared faces: the frozen splits decide who is seen
    try:
        folds = tuple(int(f) for f in val_folds.split(","))
    except ValueError:
        raise click.UsageError(f"--val-folds {val_folds}: expected numbers like 4,5") from None
    opts = TrainOptions(data=root.resolve(), out=out, teacher=teacher, loss=loss, epochs=epochs,
                        people_per_batch=people, images_per_person=per_person, mining=mining,
                        margin=margin, distill=distill, distill_weight=distill_weight,
                        learning_rate=learning_rate, weight_decay=weight_decay, width=width, init=init,
                        keep=_fractions(keep), inner_keep=_fractions(inner_keep, "--inner-keep"),
                        stem_kernel=int(stem_kernel), stem_stride=int(stem_stride), scale=int(scale), refit=refit,
                        teacher_in_loop=teacher_in_loop, hints=hints, mixup=mixup,
                        average=average, max_people=max_people,
                        drop_blocks=None if drop_blocks is None else tuple(b for b in drop_blocks.split(",") if b),
                        val_pairs=val_pairs,
                        val_folds=folds, seed=seed, command=["model-export", *sys.argv[1:]])  # fmt: skip
    if quick:
        opts = quick_options(opts)
    try:
        path = run_train(opts)
    except EdgeError as exc:
        fail(exc)
    meta = json.loads((path / "train.json").read_text())
    final = meta["validation"]["final"]
    click.echo(table([
        ("encoder", str(path / "encoder.keras")), ("loss", meta["loss"]),
        ("multiply-adds per face", f"{meta['macs'] / 1e6:.1f} M"),
        ("held-out accuracy (float)", f"{final['accuracy_mean']:.4f} ± {final['accuracy_std']:.4f}"),
        ("TAR at FAR 1e-3", final["tar_at_far"]), ("validation", meta["validation"]["split"]),
        ("training time", f"{meta['training_seconds'] / 60:.1f} min"),
        ("next", f"model-export build --out BUNDLE --encoder {path}"),
    ]))  # fmt: skip
