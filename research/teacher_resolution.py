"""How much of a face's identity survives at low resolution, for the teacher (SFace).

Each held-out face (the training run's split: folds 4-5 of pairs_dev.txt, 1,200 pairs of
845 people, aligned by YuNet + the ArcFace 112x112 warp as `model-export train` does) is
shrunk to R x R pixels (area average) and scaled back to 112 (bilinear); SFace's float
model embeds it; k-fold accuracy and TAR at FAR 1e-3 on the pairs. If the teacher keeps
its accuracy at 56 px, a student whose maps are all at half resolution (a stride-2 stem)
starts with a quarter of the multiply-adds before any channel is cut (issue 6).

    .venv/bin/python -m research.teacher_resolution [--sizes 112,56,40,32]
        [--out research/results/teacher_resolution.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench import report

ROOT = Path(__file__).resolve().parents[1]


class Shrunk:
    """The teacher on faces that had only ``size`` x ``size`` pixels."""

    def __init__(self, model: Any, size: int) -> None:
        self.model, self.size = model, size

    def __call__(self, x: Any, training: bool = False) -> Any:
        faces = np.asarray(x)
        if self.size < faces.shape[1]:
            full = faces.shape[1]
            faces = np.stack(
                [
                    cv2.resize(
                        cv2.resize(f, (self.size, self.size), interpolation=cv2.INTER_AREA),
                        (full, full),
                        interpolation=cv2.INTER_LINEAR,
                    )
                    for f in faces
                ]
            )
        return self.model(faces.astype(np.float32), training=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="112,56,40,32")
    ap.add_argument("--out", type=Path, default=ROOT / "research/results/teacher_resolution.json")
    args = ap.parse_args()

    from model_export.data import data_root as default_data_root
    from model_export.encoders import resolve_encoder
    from model_export.train import validate
    from model_export.train_data import prepare, split_people

    data_root = default_data_root()
    pairs = data_root / "lfw_protocol" / "pairs_dev.txt"
    split = split_people(data_root / "lfw", pairs, (4, 5))
    data = prepare(split, None)
    teacher = resolve_encoder("sface").keras_model()
    rows = []
    print(f"{'face px':>8} {'accuracy %':>11} {'TAR@1e-3 %':>11}")
    for size in (int(s) for s in args.sizes.split(",")):
        measured = validate(Shrunk(teacher, size), data, split)
        row = {
            "size": size,
            "accuracy_mean": measured["accuracy_mean"],
            "accuracy_std": measured["accuracy_std"],
            "tar_at_far": measured["tar_at_far"],
        }
        rows.append(row)
        print(f"{size:>8} {100 * row['accuracy_mean']:>11.2f} {100 * row['tar_at_far']:>11.2f}")
    report.write_result(
        args.out,
        {"teacher": "sface (float Keras model)", "pairs": split.how, "rows": rows},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
