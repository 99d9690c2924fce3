"""Every photo of the people of one role, through a bundle's device path, as one table:
the largest face's embedding and its quality signals (box size, detector score,
sharpness, yaw and roll from the five landmarks). The open-set rule studies
(``research.openset_rules``) read these tables instead of running the encoder again.

  .venv/bin/python -m research.face_table --bundle build/bundle-sface --role select

Written to ``build/research/faces-<bundle name>-<model files' hash>-<role>.npz`` (kept while the
bundle is unchanged). Only people of ``--role`` are read (``model_export.splits``); the
report role is refused: it is for ``make bench`` alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from edge.bundle import load_bundle
from edge.engine import load_engine
from edge.quality import sharpness
from edge.quality import yaw as yaw_of
from edge.types import Detection
from model_export.data import data_root, read_photo
from model_export.splits import SOURCES, load, photos

logger = logging.getLogger("research.face_table")
OUT = Path(__file__).resolve().parent.parent / "build" / "research"


def pose(det: Detection) -> tuple[float, float]:
    """(yaw, roll) proxies from YuNet's five landmarks: yaw as the device measures it
    (``edge.quality.yaw``); roll the eye line's angle in degrees."""
    lm = np.asarray(det.landmarks, np.float64).reshape(5, 2)
    axis = lm[1] - lm[0]
    return yaw_of(det), float(np.degrees(np.arctan2(axis[1], axis[0])))


def table_path(bundle_dir: Path, role: str) -> Path:
    """Keyed by the hashes of the files that make a face's embedding (the cohort and the
    open-set table left out: refitting the rule keeps the table)."""
    files = json.loads((bundle_dir / "manifest.json").read_text())["files"]
    key = json.dumps({k: v for k, v in files.items() if k != "cohort.npy"}, sort_keys=True)
    tag = hashlib.sha256(key.encode()).hexdigest()[:10]
    return OUT / f"faces-{bundle_dir.name}-{tag}-{role}.npz"


def build_table(bundle_dir: Path, role: str, root: Path) -> Path:
    if role == "report":
        raise SystemExit("the report people are read by make bench alone")
    out = table_path(bundle_dir, role)
    if out.is_file():
        return out
    cv2.setNumThreads(1)
    bundle = load_bundle(bundle_dir)
    engine = load_engine(bundle, num_threads=1)
    splits = load()
    rows: dict[str, list] = {k: [] for k in
                             ("person", "source", "kind", "path", "found", "vector", "size",
                              "score", "sharp", "yaw", "roll")}  # fmt: skip
    todo = [
        (key, path)
        for source in SOURCES
        for key in splits.people(role, source)
        if (root / key).is_dir()
        for path in photos(root / key)
    ]
    dim = None
    start = time.perf_counter()
    for i, (key, path) in enumerate(todo):
        image = read_photo(path, root)
        dets = engine.detect(image)
        rows["person"].append(key)
        rows["source"].append(key.split("/", 1)[0])
        rows["kind"].append("profile" if path.name.startswith("profile_") else "frontal")
        rows["path"].append(str(path.relative_to(root)))
        rows["found"].append(bool(dets))
        if dets:
            det = max(dets, key=lambda d: d.box.area)
            face = engine.align(image, det)
            vec = engine.embed([face])[0].vector
            dim = len(vec)
            yaw, roll = pose(det)
            values = (vec, det.box.short_side, det.score, sharpness(face), yaw, roll)
        else:
            values = (None, np.nan, np.nan, np.nan, np.nan, np.nan)
        for name, v in zip(
            ("vector", "size", "score", "sharp", "yaw", "roll"), values, strict=True
        ):
            rows[name].append(v)
        if (i + 1) % 500 == 0:
            rate = (i + 1) / (time.perf_counter() - start)
            logger.info(
                "%s %s: %d/%d photos, %.0f/s", bundle_dir.name, role, i + 1, len(todo), rate
            )
    nan = np.full(dim or 1, np.nan, np.float32)
    rows["vector"] = [nan if v is None else v for v in rows["vector"]]
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **{k: np.asarray(v) for k, v in rows.items()},
             metric=bundle.manifest.encoder.metric)  # fmt: skip
    logger.info("wrote %s (%d photos)", out, len(todo))
    return out


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, action="append", required=True)
    p.add_argument("--role", action="append", choices=("train", "calibrate", "select"))
    p.add_argument("--data", type=Path, default=None)
    args = p.parse_args()
    root = args.data or data_root()
    for bundle in args.bundle:
        for role in args.role or ["calibrate", "select"]:
            build_table(bundle, role, root)


if __name__ == "__main__":
    main()
