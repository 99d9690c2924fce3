"""``model-export``: the export stage's CLI (a thin shell over model_export's functions).

TensorFlow is imported only inside the verbs that need it, so ``--help`` is instant.
Exit codes: 0 ok, 1 failure, 2 usage error.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from edge.errors import EdgeError
from model_export import __version__
from model_export.train_options import DISTILL, INITS, LOSSES, MINING
from model_export.train_options import default as train_default

PathArg = click.Path(path_type=Path)
ExistingDir = click.Path(path_type=Path, exists=True, file_okay=False)
ExistingFile = click.Path(path_type=Path, exists=True, dir_okay=False)


def _fail(exc: Exception) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


def _data_root(value: Path | None) -> Path:
    from model_export.data import data_root

    root = value or data_root()
    if not root.is_dir():
        raise click.UsageError(f"face data not found at {root}: give --data or set EDGE_FACE_DATA")
    return root


def _fractions(value: str, flag: str = "--keep") -> float | dict[int, float]:
    """--keep, --inner-keep: one fraction, or height:fraction entries."""
    try:
        if ":" not in value:
            table = {0: float(value)}
        else:
            table = {int(h): float(f) for h, f in (part.split(":") for part in value.split(","))}
    except ValueError:
        raise click.UsageError(
            f"{flag} {value}: expected a fraction (0.33) or height:fraction entries "
            "(56:0.25,14:0.5)"
        ) from None
    if not all(0.05 <= f <= 1 for f in table.values()):
        raise click.UsageError(f"{flag} {value}: each fraction must be within 0.05-1")
    return table[0] if ":" not in value else table


def _table(rows: list[tuple[str, Any]]) -> str:
    width = max(len(k) for k, _ in rows)
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join(f"  {k:<{width}}  {fmt(v)}" for k, v in rows)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Example: model-export build --out build/bundle-sface",
)
@click.version_option(__version__, "-V", "--version", prog_name="model-export")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
def main(quiet: bool) -> None:
    """model-export: build, verify and evaluate edge-face model bundles.

    Needs the export extra: pip install 'edge-face[export]'.
    """
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(levelname)s %(message)s",
        force=True,
    )
    for noisy in ("tensorflow", "absl", "h5py"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


@main.command()
@click.option("--out", type=PathArg, required=True, help="Folder to write the bundle to.")
@click.option(
    "--encoder",
    default="sface",
    show_default=True,
    help="'sface' (OpenCV zoo's SFace, the default), 'dlib', a dlib ResNet .dat or an ONNX "
    "face encoder (.onnx). docs/ENCODERS.md compares them.",
)
@click.option(
    "--quantization",
    type=click.Choice(["auto", "int8", "dynamic", "float16", "float32"]),
    default="auto",
    show_default=True,
    help="auto: convert to each, keep the fastest that follows the float model closely.",
)
@click.option(
    "--data", type=ExistingDir, default=None, help="Face data root (default $EDGE_FACE_DATA)."
)
@click.option(
    "--calibration",
    type=ExistingDir,
    default=None,
    help="Photos to calibrate on, one folder per person (default DATA/lfw).",
)
@click.option(
    "--pairs",
    type=ExistingFile,
    default=None,
    help="LFW-format pairs to evaluate on (default DATA/lfw_protocol/pairs_dev.txt).",
)
@click.option(
    "--images", type=ExistingDir, default=None, help="Root of the pairs' photos (default DATA/lfw)."
)
@click.option(
    "--no-evaluate",
    is_flag=True,
    help="Skip the LFW evaluation (tau = the encoder's documented threshold).",
)
@click.option("--force", is_flag=True, help="Rebuild even when the cache has this bundle.")
def build(out: Path, encoder: str, quantization: str, data: Path | None, calibration: Path | None,
          pairs: Path | None, images: Path | None, no_evaluate: bool, force: bool) -> None:  # fmt: skip
    """Build a quantized model bundle: encoder, detector, alignment, manifest.

    With no options: OpenCV zoo's SFace (imported from ONNX), converted to each
    quantization (full int8 calibrated on LFW people who are not in the evaluation pairs,
    dynamic range, float16, float32), the fastest accurate one kept, evaluated on
    lfw_protocol/pairs_dev.txt (which fixes tau). Takes 3-6 minutes on 2 cores; a second
    build with the same inputs reuses the cache. --encoder dlib: dlib's ResNet in full
    int8 (2.5x faster, loads in tflite-runtime 2.14 too; fewer correct names).

    \b
    Example:
      model-export build --out build/bundle-sface
      model-export build --out build/bundle --encoder dlib
      model-export build --out /tmp/b --encoder my_arcface.onnx --quantization float16
    """
    from model_export.build import BuildOptions
    from model_export.build import build as run_build

    opts = BuildOptions(out=out, data_root=_data_root(data), encoder=encoder, calibration_root=calibration,
                        pairs=pairs, images=images, evaluate=not no_evaluate, force=force,
                        quantization=quantization)  # fmt: skip
    try:
        path = run_build(opts)
    except EdgeError as exc:
        _fail(exc)
    manifest = json.loads((path / "manifest.json").read_text())
    ev, q = manifest.get("evaluation", {}), manifest["quantization_check"]
    enc = manifest["encoder"]
    rows = [("bundle", str(path)), ("encoder id", manifest["encoder_id"]),
            ("quantization (runtimes)", f"{enc['quantization']} ({', '.join(enc.get('runtimes', []))})"),
            ("tau verify / identify", f"{manifest['tau']['verify']:.4f} / {manifest['tau']['identify']:.4f}"),
            ("vs float: cosine mean / min", f"{q['cosine_mean']:.5f} / {q['cosine_min']:.5f}")]  # fmt: skip
    if ev:
        rows += [("LFW accuracy (k-fold)", f"{ev['accuracy_mean']:.4f} ± {ev['accuracy_std']:.4f} ({ev['model']})"),
                 ("TAR at FAR 1e-3", ev["tar_at_far"]), ("photos without a face", ev["no_face"])]  # fmt: skip
    click.echo(_table(rows))


@main.command()
@click.option(
    "--data",
    "data_dir",
    type=ExistingDir,
    default=None,
    help="Photos to train on, one folder per person (default DATA/lfw).",
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
    help="Pairs whose people are held out and measure the encoder (default for DATA/lfw: "
    "lfw_protocol/pairs_dev.txt; else a held-out fifth of the people).",
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

    DATA is one folder per person. The network is MobileFaceNet-shaped (ReLU, 112x112
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

    root = data_dir
    if root is None:
        root = _data_root(None) / "lfw"
        if val_pairs is None and (root.parent / "lfw_protocol" / "pairs_dev.txt").is_file():
            val_pairs = root.parent / "lfw_protocol" / "pairs_dev.txt"
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
        _fail(exc)
    meta = json.loads((path / "train.json").read_text())
    final = meta["validation"]["final"]
    click.echo(_table([
        ("encoder", str(path / "encoder.keras")), ("loss", meta["loss"]),
        ("multiply-adds per face", f"{meta['macs'] / 1e6:.1f} M"),
        ("held-out accuracy (float)", f"{final['accuracy_mean']:.4f} ± {final['accuracy_std']:.4f}"),
        ("TAR at FAR 1e-3", final["tar_at_far"]), ("validation", meta["validation"]["split"]),
        ("training time", f"{meta['training_seconds'] / 60:.1f} min"),
        ("next", f"model-export build --out BUNDLE --encoder {path}"),
    ]))  # fmt: skip


@main.command()
@click.option("--bundle", type=ExistingDir, required=True, help="The bundle folder.")
@click.option(
    "--pairs",
    type=ExistingFile,
    default=None,
    help="LFW-format pairs file (default DATA/lfw_protocol/pairs_dev.txt).",
)
@click.option(
    "--images", type=ExistingDir, default=None, help="Root of the photos (default DATA/lfw)."
)
@click.option(
    "--json", "json_out", type=PathArg, default=None, help="Also write the report as JSON here."
)
@click.option(
    "--float", "with_float", is_flag=True, help="Also evaluate the unquantized model the same way."
)
def evaluate(
    bundle: Path, pairs: Path | None, images: Path | None, json_out: Path | None, with_float: bool
) -> None:
    """Evaluate a bundle on the LFW protocol through the device code path.

    Accuracy is k-fold (tau chosen on the other folds); tau is chosen on all folds;
    TAR is read at FAR 1e-3.

    \b
    Example:
      model-export evaluate --bundle build/bundle --json build/eval.json --float
    """
    from edge.bundle import load_bundle
    from model_export.data import read_pairs
    from model_export.evaluate import evaluate_bundle

    root = None if pairs and images else _data_root(None)
    try:
        b = load_bundle(bundle)
        own = b.raw.get("evaluation", {}).get("pairs_file")  # a trained encoder's held-out pairs
        pairs_file = pairs or (bundle / own if own else root / "lfw_protocol" / "pairs_dev.txt")  # type: ignore[operator]
        if (bundle / "train_people.txt").is_file():
            from model_export.build import check_held_out

            check_held_out(bundle, read_pairs(pairs_file, images or root / "lfw"), pairs_file)  # type: ignore[operator]
        float_model = None
        if with_float:
            from model_export.build import float_model_path
            from model_export.encoders import resolve_encoder

            float_model = float_model_path(resolve_encoder(b.raw["provenance"]["encoder_source"]))
        report = evaluate_bundle(b, read_pairs(pairs_file, images or root / "lfw"), float_model)  # type: ignore[operator]
    except EdgeError as exc:
        _fail(exc)
    click.echo(f"{'model':<14} {'accuracy':>16} {'tau':>8} {'TAR@1e-3':>9} {'AUC':>7}")
    for name, v in report["variants"].items():
        click.echo(f"{name:<14} {v['accuracy_mean']:>9.4f} ± {v['accuracy_std']:.4f} {v['tau']:>8.4f} "
                   f"{v['tar_at_far']:>9.4f} {v['auc']:>7.4f}")  # fmt: skip
    click.echo(f"pairs: {report['pairs']}; photos without a face: {report['no_face']['count']} "
               f"({report['no_face']['handling']}); bundle's model: {report['model']}")  # fmt: skip
    if json_out:
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        click.echo(f"wrote {json_out}")


@main.command()
@click.option("--bundle", type=ExistingDir, required=True, help="The bundle folder.")
@click.option(
    "--data", type=ExistingDir, default=None, help="Face data root (default $EDGE_FACE_DATA)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify(bundle: Path, data: Path | None, as_json: bool) -> None:
    """Check a bundle: file hashes, int8 against float on the golden faces.

    Exit 0 when the bundle is intact and its int8 encoder agrees with the float model
    (per-face cosine, the golden distance matrix, decisions at tau), 1 otherwise.

    \b
    Example:
      model-export verify --bundle build/bundle
    """
    from model_export.verify import verify_bundle

    try:
        result = verify_bundle(bundle, _data_root(data))
    except EdgeError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        keys = ["hashes", "faces", "cosine_mean", "cosine_min", "distance_change_mean",
                "distance_change_max", "decision_flips", "tau"]  # fmt: skip
        click.echo(_table([(k, result[k]) for k in keys]))
        for line in result["problems"]:
            click.echo(f"FAIL: {line}", err=True)
        click.echo("OK" if result["ok"] else "FAILED")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":  # pragma: no cover
    main()
