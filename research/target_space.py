"""How good is the teacher in the space a student is taught in? (dlib, issue 6)

A student distilled from dlib's encoder learns targets made from dlib's embedding; it can
only be as good as dlib is *in that space*. This measures dlib's float model on the
held-out pairs (the training run's split: folds 4-5 of pairs_dev.txt, 1,200 pairs of 845
people, each face a 150x150 dlib chip warped from YuNet's five points, as
`model-export train` prepares them) in four spaces:

- raw: dlib's own metric (Euclidean on the 128-d descriptor, threshold about 0.6);
- unit: the descriptor at unit length;
- unit - mean: the unit descriptor minus its mean over the training faces and their
  mirror images (as the teacher in the loop computes it), not re-normalised: the targets
  of `--distill centred` (distances are the unit ones);
- re-normalised: that difference at unit length again: the targets of `--distill
  embedding` (`live_teacher.centred_targets`, `train_data.centred_unit`).

k-fold accuracy (tau chosen on the other fold), errors in 1,200 pairs, TAR at FAR 1e-3;
one pass and mirror averaging (the two embeddings of a face and its mirror image
averaged before anything else, as the device does).

    .venv/bin/python -m research.target_space [--out research/results/target_space.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from bench import report

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = 1000  # training faces for the mean, as live_teacher.live_teacher takes them


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "research/results/target_space.json")
    args = ap.parse_args()

    from model_export.data import data_root as default_data_root
    from model_export.encoders import resolve_encoder
    from model_export.evaluate import pair_distances
    from model_export.live_teacher import TeacherRunner
    from model_export.metrics import verification_report
    from model_export.train_data import DLIB_CHIP, centre_and_spread, prepare, split_people

    root = default_data_root()
    split = split_people(root / "lfw", root / "lfw_protocol" / "pairs_dev.txt", (4, 5))
    data = prepare(split, None, geometry=DLIB_CHIP)
    teacher = TeacherRunner(resolve_encoder("dlib").keras_model())

    def embed(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        plain, mirror = [], []
        for i in range(0, len(faces), 64):
            chunk = faces[i : i + 64]
            plain.append(teacher(chunk)[0])
            mirror.append(teacher(np.ascontiguousarray(chunk[:, :, ::-1]))[0])
        return np.concatenate(plain).astype(np.float64), np.concatenate(mirror).astype(np.float64)

    pick = data.centre[
        np.linspace(0, len(data.centre) - 1, min(SAMPLE, len(data.centre))).astype(int)
    ]
    train_plain, train_mirror = embed(pick)
    mean, spread = centre_and_spread(_unit(train_plain), _unit(train_mirror))
    val_plain, val_mirror = embed(data.val)

    index = {p: i for i, p in enumerate(data.val_paths)}
    pairs = [p for p in split.val_pairs if p.left in index and p.right in index]
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    spaces = {
        "raw": lambda v: v,
        "unit": _unit,
        "unit - mean": lambda v: _unit(v) - mean,
        "re-normalised": lambda v: _unit(_unit(v) - mean),
    }
    rows: list[dict[str, Any]] = []
    print(f"{'space':<14} {'one pass %':>10} {'mirrored %':>10} {'errors':>6} {'TAR@1e-3 %':>10}")
    for name, space in spaces.items():
        row: dict[str, Any] = {"space": name}
        for key, v in (("one_pass", val_plain), ("mirrored", (val_plain + val_mirror) / 2)):
            measured = verification_report(
                pair_distances(space(v).astype(np.float32), index, pairs, "euclidean"), same, folds
            )
            row[key] = {
                "accuracy_mean": measured["accuracy_mean"],
                "accuracy_std": measured["accuracy_std"],
                "errors": round((1 - measured["accuracy_mean"]) * len(pairs)),
                "tar_at_far": measured["tar_at_far"],
            }
        rows.append(row)
        m = row["mirrored"]
        print(
            f"{name:<14} {100 * row['one_pass']['accuracy_mean']:>10.2f} "
            f"{100 * m['accuracy_mean']:>10.2f} {m['errors']:>6} {100 * m['tar_at_far']:>10.2f}"
        )
    print(f"training mean of the unit descriptor: length {np.linalg.norm(mean):.3f}; "
          f"a face's remainder about it: {spread:.3f} (root mean square)")  # fmt: skip
    report.write_result(
        args.out,
        {
            "teacher": "dlib_face_recognition_resnet_model_v1 (float, TFLite)",
            "pairs": split.how,
            "mean_length": float(np.linalg.norm(mean)),
            "spread": spread,
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
