"""What ``model-export train`` learns from and is measured on.

- ``split_people``: the training people and the validation pairs, disjoint in people.
  On the shared faces (the default ``--data``: a folder holding ``lfw/`` and ``cfp/``),
  the frozen splits decide (``model_export.splits``): the ``train`` people are learnt
  from, pairs of the ``select`` people measure the student (and choose among runs); the
  ``calibrate`` people (the bundle's thresholds) and the ``report`` people (the
  benchmarks) are never seen. CFP contributes its near-frontal photos. With a pairs file,
  the pairs of the chosen folds measure the student and every person in them is kept out
  of training; for another folder, a fraction of the people (a stable, hash-ordered
  choice) is held out and pairs are drawn from them.
- ``prepare``: every photo once through the device's detector (YuNet) and a similarity
  warp onto the student's template (``Geometry``: the ArcFace 112x112 one, or a 150x150
  dlib-chip one for a cut of dlib's ResNet) with a border (``pad`` pixels each side, so
  shifted and scaled crops stay inside real pixels), and, with a teacher bundle, the teacher's own
  embedding of each photo and of its mirror image, through the teacher's own device path,
  centred on the training photos' mean and at unit length (``centred_unit``).
  The result is cached by the hash of its inputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from edge.align import ARCFACE_112, SimilarityAligner, make_aligner
from edge.bundle import load_bundle
from edge.detect.yunet import YuNetDetector
from edge.embedder import TFLiteEmbedder
from model_export.assets import YUNET, cache_dir, wheel_asset
from model_export.build import DETECTOR
from model_export.calibration import CFP_PHOTOS
from model_export.data import (
    IMAGE_SUFFIXES,
    DataError,
    Pair,
    generate_pairs,
    pair_people,
    read_pairs,
)
from model_export.evaluate import embed_chips, postprocess
from model_export.faces import crops_for
from model_export.splits import SPLITS_FILE
from model_export.splits import load as load_splits

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Geometry:
    """The student's input: a ``size`` x ``size`` similarity warp of the detector's five
    landmarks onto ``template``; training crops keep ``pad`` more pixels each side."""

    name: str
    size: int
    template: tuple[tuple[float, float], ...]
    pad: int

    @property
    def wide(self) -> int:
        return self.size + 2 * self.pad

    def wide_template(self) -> list[list[float]]:
        return [[x + self.pad, y + self.pad] for x, y in self.template]

    def alignment(self) -> dict[str, object]:
        """The manifest's alignment block for this input."""
        return {
            "type": "similarity",
            "size": self.size,
            "template": [list(p) for p in self.template],
        }


ARCFACE = Geometry("ArcFace 112x112", 112, tuple((float(x), float(y)) for x, y in ARCFACE_112), 16)
# dlib's 150x150 chip (padding 0.25) on the detector's five points instead of dlib's own
# landmark model: the mean position of YuNet's five landmarks inside dlib's chips of 244
# LFW training faces, made mirror-symmetric about the chip's middle column (x = 74.5).
# dlib's float encoder on such chips: 98.50% on the held-out pairs (98.83% with mirror
# averaging), as on its own chips.
DLIB_CHIP = Geometry(
    "dlib chip 150x150",
    150,
    ((46.4, 44.9), (102.6, 44.9), (74.5, 77.0), (50.45, 102.2), (98.55, 102.2)),
    20,
)


@dataclass(frozen=True, slots=True)
class Split:
    train: dict[str, list[Path]]  # person -> photos
    val_pairs: list[Pair]
    how: str

    @property
    def val_images(self) -> list[Path]:
        return sorted({p.left for p in self.val_pairs} | {p.right for p in self.val_pairs})


def _photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _people(root: Path) -> dict[str, list[Path]]:
    if not root.is_dir():
        raise DataError(f"--data {root}: not a folder (expected one folder per person)")
    people = {d.name: _photos(d) for d in sorted(root.iterdir()) if d.is_dir()}
    people = {k: v for k, v in people.items() if v}
    if not people:
        raise DataError(f"--data {root}: no person folders with photos in it")
    return people


def split_people(
    root: Path,
    pairs_file: Path | None = None,
    folds: tuple[int, ...] = (4, 5),
    val_fraction: float = 0.2,
    seed: int = 0,
) -> Split:
    """Training people and validation pairs (see the module doc). ``folds`` are 1-based."""
    if pairs_file is None and is_shared_root(root):
        return _by_splits(root, seed)
    people = _people(root)
    if pairs_file is not None:
        pairs = [p for p in read_pairs(pairs_file, root) if p.fold + 1 in folds]
        if not pairs:
            raise DataError(f"{pairs_file}: no pairs in folds {folds}")
        held = pair_people(pairs)
        missing = [p for p in pairs if not (p.left.is_file() and p.right.is_file())]
        if missing:
            raise DataError(f"{pairs_file}: {len(missing)} pair photos missing under {root}")
        train = {k: v for k, v in people.items() if k not in held}
        how = (
            f"pairs of folds {','.join(map(str, folds))} of {pairs_file.name} "
            f"({len(pairs)} pairs, {len(held)} people, all kept out of training)"
        )
        return Split(train, pairs, how)
    order = sorted(people, key=lambda n: hashlib.sha1(n.encode()).hexdigest())
    multi = [n for n in order if len(people[n]) >= 2]
    n_held = max(2, round(len(multi) * val_fraction))
    if len(multi) < n_held + 2:
        raise DataError(
            f"--data {root}: too few people with two or more photos ({len(multi)}) to hold "
            "some out for validation: add photos, or give --val-pairs"
        )
    held = multi[:n_held]
    pairs = generate_pairs({n: people[n] for n in held}, seed=seed)
    train = {k: v for k, v in people.items() if k not in set(held)}
    how = (
        f"{len(held)} people ({val_fraction:.0%} of those with 2+ photos, hash-ordered) held "
        f"out; {len(pairs)} pairs drawn from them"
    )
    return Split(train, pairs, how)


def is_shared_root(root: Path) -> bool:
    """Is ``root`` the shared faces (``lfw/``, ``lfw_protocol/``, ``cfp/``: the folders
    data/splits.json's keys name)?"""
    return (root / "lfw").is_dir() and (root / "lfw_protocol").is_dir() and SPLITS_FILE.is_file()


def _by_splits(root: Path, seed: int) -> Split:
    splits = load_splits()
    people: dict[str, dict[str, list[Path]]] = {}
    for role in ("train", "select"):
        found = {}
        for key in splits.people(role):
            folder = root / key
            photos = _photos(folder) if folder.is_dir() else []
            if key.startswith("cfp/"):
                photos = [p for p in photos if p.name.startswith(CFP_PHOTOS)]
            if photos:
                found[key] = photos
        people[role] = found
    if not people["train"]:
        raise DataError(f"--data {root}: none of the train people of {SPLITS_FILE} is there")
    held = {k: v for k, v in people["select"].items() if len(v) >= 2}
    pairs = generate_pairs(held, seed=seed)
    how = (
        f"data/splits.json: {len(people['train'])} train people learnt from; {len(pairs)} pairs"
        f" of {len(held)} select people measure (calibrate and report people never seen)"
    )
    return Split(people["train"], pairs, how)


@dataclass(slots=True)
class Prepared:
    wide: NDArray[np.uint8]  # (N, WIDE, WIDE, 3) training faces
    labels: NDArray[np.int32]  # (N,) person index
    names: list[str]  # person index -> name
    teacher: NDArray[np.float32] | None  # (N, D) teacher embedding, centred, unit length
    teacher_flip: NDArray[np.float32] | None  # of the mirror image
    val: NDArray[np.uint8]  # (M, size, size, 3) validation faces
    val_paths: list[Path]
    geometry: Geometry = ARCFACE
    stats: dict[str, object] = field(default_factory=dict)

    @property
    def centre(self) -> NDArray[np.uint8]:
        """The training faces as the aligner cuts them, (N, size, size, 3): the middle of
        ``wide`` (a view, no copy)."""
        p, n = self.geometry.pad, self.geometry.size
        return self.wide[:, p : p + n, p : p + n]


def _key(split: Split, teacher: Path | None, geometry: Geometry) -> str:
    digest = hashlib.sha256()
    for name in sorted(split.train):
        for p in split.train[name]:
            digest.update(f"{p}:{p.stat().st_size}\n".encode())
    for p in split.val_images:
        digest.update(f"v{p}\n".encode())
    if teacher is not None:
        digest.update((teacher / "manifest.json").read_bytes())
    if geometry != ARCFACE:
        digest.update(repr(geometry).encode())
    for source in chip_sources():
        digest.update(source.read_bytes())
    digest.update(repr(sorted(DETECTOR.items())).encode())
    return digest.hexdigest()[:24]


def chip_sources() -> list[Path]:
    """The code that turns a photo into the cached chips (reading and bordering, detecting,
    aligning), so that a change to any of it prepares the faces again: the key once hashed
    this module only, and black borders (model_export.data) reused replicated-border chips."""
    import edge.align
    import edge.detect.yunet
    import edge.images
    import model_export.data
    import model_export.faces

    modules = (edge.align, edge.detect.yunet, edge.images, model_export.data, model_export.faces)
    return [Path(__file__), *(Path(str(m.__file__)) for m in modules)]


def prepare(
    split: Split, teacher: Path | None = None, use_cache: bool = True, geometry: Geometry = ARCFACE
) -> Prepared:
    """Aligned faces (and teacher embeddings) for a split; cached by its inputs' hash."""
    path = cache_dir() / "train" / f"{_key(split, teacher, geometry)}.npz"
    if use_cache and path.is_file():
        logger.info("prepared faces: reusing %s", path)
        return _load(path, split, geometry)
    detector = YuNetDetector(wheel_asset(YUNET), **DETECTOR)
    names = sorted(split.train)
    photos = [p for n in names for p in split.train[n]]
    label_of = {p: i for i, n in enumerate(names) for p in split.train[n]}
    logger.info("aligning %d training photos of %d people", len(photos), len(names))
    g = geometry
    crops = crops_for(
        photos, detector, SimilarityAligner(g.wide, g.wide_template()), "training faces"
    )
    labels = np.array([label_of[p] for p in crops.paths], np.int32)
    logger.info("aligning %d validation photos", len(split.val_images))
    centred = SimilarityAligner(g.size, [list(p) for p in g.template])
    val = crops_for(split.val_images, detector, centred, "validation faces")
    teacher_vecs = teacher_flip = None
    stats: dict[str, object] = {
        "train_photos": len(crops.paths),
        "train_no_face": len(crops.no_face),
        "unreadable": [str(p) for p in crops.unreadable + val.unreadable],
        "val_photos": len(val.paths),
        "val_no_face": len(val.no_face),
    }
    if teacher is not None:
        plain, flip = teacher_embeddings(teacher, crops.paths, detector)
        teacher_vecs, teacher_flip, mean = centred_unit(plain, flip)
        stats["teacher_mean_norm"] = round(float(np.linalg.norm(mean)), 4)
    arrays = {
        "wide": crops.chips,
        "labels": labels,
        "val": val.chips,
        "train_paths": np.array([str(p) for p in crops.paths]),
        "val_paths": np.array([str(p) for p in val.paths]),
        "names": np.array(names),
        "stats": np.array(json.dumps(stats)),
    }
    if teacher_vecs is not None and teacher_flip is not None:
        arrays |= {"teacher": teacher_vecs, "teacher_flip": teacher_flip}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return _load(path, split, geometry)


def teacher_embeddings(
    bundle_dir: Path, paths: list[Path], detector: YuNetDetector
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The teacher bundle's embeddings of each photo and of its mirror image, through its
    own aligner and encoder, post-processed as its manifest says (a teacher that averages
    mirrors gives both the same)."""
    bundle = load_bundle(bundle_dir)
    m = bundle.manifest
    aligner = make_aligner(m.alignment, bundle.root)
    embedder = TFLiteEmbedder(bundle.path(m.encoder.file), m.encoder, m.encoder_id)
    crops = crops_for(paths, detector, aligner, "teacher faces")
    if crops.paths != list(paths):
        raise DataError("the teacher could not read every training photo the student reads")
    raw = embed_chips(embedder, crops.chips, f"teacher {m.name}")
    spec = m.encoder
    if spec.mirror_average:
        both = postprocess(raw, spec, True)
        plain, flip = both, both
    else:
        plain = postprocess(raw, spec, False)
        flip = postprocess({"plain": raw["mirror"], "mirror": raw["plain"]}, spec, False)
    return plain.astype(np.float32), flip.astype(np.float32)


def centre_and_spread(
    plain: NDArray[np.floating], flip: NDArray[np.floating]
) -> tuple[NDArray[np.float64], float]:
    """The mean of the teacher's embeddings of the training photos and of their mirror
    images, and the root mean square length of an embedding minus it (the scale of the
    targets of ``--distill centred``, ``live_teacher.space_targets``)."""
    both = np.concatenate([plain, flip]).astype(np.float64)
    mean = both.mean(axis=0)
    return mean, float(np.sqrt(np.mean(np.sum((both - mean) ** 2, axis=1))))


def centred_unit(
    plain: NDArray[np.float32], flip: NDArray[np.float32]
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Teacher embeddings minus their mean over the training photos, at unit length; and
    that mean. Centring keeps what tells people apart: dlib's unit vectors share a large
    common part (cosine 0.84 between different people, 0.96 within one), so a student
    copying them as they are learns that common part and little else; centred, different
    people sit near cosine 0 (distances, the teacher's Euclidean metric, are unchanged by
    the shift)."""
    mean, _ = centre_and_spread(plain, flip)
    out = []
    for v in (plain - mean, flip - mean):
        out.append(
            (v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)).astype(np.float32)
        )
    return out[0], out[1], mean.astype(np.float32)


def _load(path: Path, split: Split, geometry: Geometry) -> Prepared:
    data = np.load(path)
    return Prepared(
        wide=data["wide"],
        labels=data["labels"],
        names=[str(n) for n in data["names"]],
        teacher=data.get("teacher", None),
        teacher_flip=data.get("teacher_flip", None),
        val=data["val"],
        val_paths=[Path(str(p)) for p in data["val_paths"]],
        geometry=geometry,
        stats={"cache": str(path), "split": split.how, **_stats(data)},
    )


def _stats(data: np.lib.npyio.NpzFile) -> dict[str, object]:
    value = json.loads(str(data["stats"]))
    return value if isinstance(value, dict) else {}
