"""What a ``model-export train`` run writes beside its encoder: the options it was started
with (a resumed run must have the same), the held-out pairs and training people, the CSV
log and its plot, and ``train.json`` (what ``model-export build --encoder DIR`` reads)."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from model_export.train_data import Geometry, Split
from model_export.train_options import TrainOptions

logger = logging.getLogger(__name__)

ENCODER_FILE = "encoder.keras"
META_FILE = "train.json"
LOG_FILE = "log.csv"
NORMALISATION = "(pixel - 127.5) / 128, inside the graph"
PAIRS_FILE = "val_pairs.json"
PEOPLE_FILE = "train_people.txt"
OPTIONS_FILE = "options.json"  # in the checkpoints folder
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
LOSS_COLUMNS = ("loss", "triplet", "distill", "hint", "active", "d_ap", "d_an")


# ---------------------------------------------------------------- options and data


def options_record(opts: TrainOptions) -> dict[str, Any]:
    record = asdict(opts)
    record.pop("command")
    return json.loads(json.dumps(record, default=str))


def same_run(out: Path, opts: TrainOptions) -> bool:
    """Whether ``out`` holds a run with these options (so it may be resumed)."""
    meta = out / "checkpoints" / OPTIONS_FILE
    return meta.is_file() and json.loads(meta.read_text()) == options_record(opts)


def write_options(out: Path, opts: TrainOptions) -> None:
    (out / "checkpoints" / OPTIONS_FILE).write_text(json.dumps(options_record(opts)))


def write_pairs(path: Path, split: Split, root: Path) -> None:
    """The validation pairs, relative to the data root (``model-export build`` reads them)."""
    rows = [
        [p.fold, str(p.left.relative_to(root)), str(p.right.relative_to(root)), p.same]
        for p in split.val_pairs
    ]
    path.write_text(json.dumps({"format": "edge-face pairs 1", "how": split.how, "pairs": rows}))


def write_split(out: Path, split: Split, root: Path) -> None:
    """The held-out pairs and the training people's names."""
    write_pairs(out / PAIRS_FILE, split, root)
    (out / PEOPLE_FILE).write_text("".join(f"{n}\n" for n in sorted(split.train)))


# ---------------------------------------------------------------- the log


def log_row(
    epoch: int,
    steps: int,
    seconds: float,
    lr: float,
    means: dict[str, float],
    report: dict[str, Any],
) -> list[Any]:
    """One epoch's row of the CSV log (``LOG_COLUMNS``)."""
    return [
        epoch,
        steps,
        round(seconds, 1),
        lr,
        *(round(means.get(k, 0.0), 5) for k in LOSS_COLUMNS),
        round(report["accuracy_mean"], 4),
        round(report["tar_at_far"], 4),
        round(report["auc"], 4),
        round(report["tau"], 4),
    ]


def write_log(path: Path, rows: list[list[Any]] | tuple[tuple[Any, ...], ...]) -> None:
    """The CSV log, rewritten whole from the checkpoint's rows (atomically)."""
    tmp = path.with_name("tmp." + path.name)
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(LOG_COLUMNS)
        writer.writerows(rows)
    tmp.replace(path)


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


# ---------------------------------------------------------------- the encoder and train.json


def save_encoder(model: Any, path: Path) -> None:
    tmp = path.with_name("tmp." + path.name)
    model.save(tmp)
    tmp.replace(path)


def train_meta(
    opts: TrainOptions,
    model: Any,
    student: dict[str, Any],
    geometry: Geometry,
    data: dict[str, Any],
    split: str,
    final: dict[str, Any],
    training_seconds: float,
    macs: int,
) -> dict[str, Any]:
    """``train.json``: what was trained, on what, how well on the held-out pairs (the
    ``final`` report, ``split`` says how they were chosen), and how the build must feed
    and compare it."""
    mode = opts.resolved_loss()
    raw = opts.distill == "centred"  # the student's raw outputs are the embedding
    return {
        "format": 1,
        "name": f"edge-face-student-{_short(opts)}-{mode}",
        "command": opts.command,
        "options": options_record(opts),
        "loss": mode,
        "student": {**student, "embedding_size": int(model.output.shape[-1])},
        "macs": macs,
        "parameters": int(model.count_params()),
        "input": {
            "size": geometry.size,
            "color": "RGB",
            "range": "0-255",
            "normalisation": student.get("normalisation", NORMALISATION),
        },
        "alignment": {
            **geometry.alignment(),
            "note": f"similarity onto the {geometry.name} template, on the detector's five points",
        },
        "metric": "euclidean on raw embeddings" if raw else "euclidean on L2-normalised embeddings",
        "l2_normalize": not raw,
        "teacher": _teacher_record(opts.teacher) if mode != "triplet" else None,
        "data": {"root": str(opts.data), **data},
        "validation": {
            "pairs_file": PAIRS_FILE,
            "split": split,
            "final": final,
            "model": _written(opts),
        },
        "epochs": opts.epochs,
        "training_seconds": round(training_seconds, 1),
        "machine": _machine(),
    }


def write_meta(out: Path, meta: dict[str, Any]) -> None:
    (out / META_FILE).write_text(json.dumps(meta, indent=1, default=str))


def _written(opts: TrainOptions) -> str:
    if opts.average:
        return (
            f"the moving average of the weights over about the last {opts.average:g} epochs, "
            "at the last epoch (never selected on these pairs)"
        )
    return "the last epoch (never selected on these pairs)"


def _short(opts: TrainOptions) -> str:
    if opts.init != "teacher":
        return f"w{opts.width:g}"
    keep = opts.keep if isinstance(opts.keep, float | int) else min(opts.keep.values())
    return f"cut{keep:g}"


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


def copy_run(src: Path, dst: Path) -> None:
    """Copy a finished run's encoder and records (not its checkpoints) to ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in (ENCODER_FILE, META_FILE, LOG_FILE, PAIRS_FILE, "training.png", PEOPLE_FILE):
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
