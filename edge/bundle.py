"""The model bundle: a folder with the encoder, the detector, the alignment model and
``manifest.json``. Loading checks every file against its sha256, the manifest's decision
values for plausibility (edge.manifest_checks) and, when a public key is given, the
manifest's signature (edge.signing); it refuses a bundle that was changed or damaged.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from edge.boxmap import BoxMap
from edge.decision import Cohort, OpenSetTable
from edge.errors import EdgeError
from edge.manifest_checks import problems as implausible
from edge.signing import SignatureError, verify_bundle

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_LENIENT = ConfigDict(extra="ignore")  # newer writers may add fields; the format number guards


class BundleError(EdgeError):
    """The bundle is missing, damaged or of a format this version cannot read."""


@dataclass(frozen=True, config=_LENIENT)
class EncoderSpec:
    file: str
    input_size: int = Field(gt=0)
    embedding_size: int = Field(gt=0)
    metric: Literal["euclidean", "cosine"] = "euclidean"
    l2_normalize: bool = False  # normalise after dequantizing (never inside the int8 graph)
    mirror_average: bool = False  # average the embedding with the mirrored face's
    quantization: str = "int8"  # int8 | dynamic | float16 | float32
    macs: int | None = None
    runtimes: tuple[str, ...] = ()  # the TFLite runtimes that load it (empty: any)


@dataclass(frozen=True, config=_LENIENT)
class DetectorSpec:
    type: Literal["yunet"]
    file: str
    score_threshold: float = Field(default=0.7, gt=0, lt=1)
    nms_threshold: float = Field(default=0.3, gt=0, lt=1)
    max_side: int = Field(default=640, gt=0)
    min_side: int = Field(default=0, ge=0)


@dataclass(frozen=True, config=_LENIENT)
class AlignmentSpec:
    type: Literal["dlib-chip", "similarity"]
    size: int = Field(gt=0)
    padding: float = 0.0
    landmarks_file: str | None = None  # the dlib 5-point predictor as arrays ("dlib-chip")
    box_map: BoxMap | None = None  # detector box+landmarks -> landmark model's box
    template: list[list[float]] | None = None  # 5 points in the encoder's input frame


@dataclass(frozen=True, config=_LENIENT)
class Thresholds:
    verify: float = Field(gt=0)  # one-to-one: same person iff distance <= verify
    identify: float = Field(gt=0)  # one-to-many against a gallery (stricter)


@dataclass(frozen=True, config=_LENIENT)
class CohortSpec:
    """The background faces the open-set table's scores are relative to (edge.decision)."""

    file: str  # a .npy matrix: ``faces`` rows of the encoder's embedding size
    k: int = Field(gt=0)  # a probe is judged against its k nearest
    faces: int = Field(gt=0)
    domain_file: str | None = None  # a .npy of ``faces`` integers: each face's domain
    domains: list[str] | None = None  # what those integers index (``lfw``, ``cfp``)


def _open_set(value: Any) -> Any:
    """The manifest's ``identify`` object as the table it holds (its per-domain taus
    included), or as given for pydantic to reject."""
    if not isinstance(value, dict):
        return value
    try:
        return OpenSetTable.from_json(value)
    except KeyError as exc:
        raise ValueError(f"identify.{exc.args[0]}: a required field is missing") from exc
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"not an open-set table: {exc}") from exc


@dataclass(frozen=True, config=_LENIENT)
class Manifest:
    format: int
    name: str
    encoder_id: str
    encoder: EncoderSpec
    detector: DetectorSpec
    alignment: AlignmentSpec
    tau: Thresholds
    files: dict[str, str]  # file name -> sha256
    identify: Annotated[OpenSetTable | None, BeforeValidator(_open_set)] = None  # edge.decision
    cohort: CohortSpec | None = None  # when set, the table is in cohort scores


_ADAPTER = TypeAdapter(Manifest)


@dataclass(frozen=True, config=ConfigDict(arbitrary_types_allowed=True))
class Bundle:
    root: Path
    manifest: Manifest
    raw: dict[str, Any]  # the whole manifest.json, for display and evaluation figures
    cohort: Cohort | None = None  # loaded from manifest.cohort's file

    def path(self, name: str) -> Path:
        return self.root / name


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_bundle(
    root: Path, *, verify_hashes: bool = True, public_key: Path | None = None
) -> Bundle:
    """Read and check a bundle folder; raise :class:`BundleError` saying what to do.

    ``public_key`` (``[model] public_key``): the manifest must carry a valid signature by
    that key (checked first, on the bytes then parsed)."""
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(
            f"no model bundle at {root} ({MANIFEST} missing): build one with "
            "`model-export build --out DIR` and set [model] bundle to that folder"
        )
    try:
        data = manifest_path.read_bytes()
    except OSError as exc:
        raise BundleError(f"{manifest_path}: not a readable manifest: {exc}") from exc
    if public_key is not None:
        try:
            verify_bundle(root, data, public_key)
        except SignatureError as exc:
            raise BundleError(str(exc)) from exc
    try:
        raw = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, nested past the
        # stack, or a number of more than 4300 digits (int()'s limit)
        why = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise BundleError(f"{manifest_path}: not a readable manifest: {why}") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_VERSION:
        found = raw.get("format") if isinstance(raw, dict) else None
        raise BundleError(
            f"{manifest_path}: bundle format {found!r}, this edge-face reads format "
            f"{FORMAT_VERSION}: rebuild the bundle with this version's model-export"
        )
    try:
        manifest = _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise BundleError(f"{manifest_path}: invalid manifest: {exc}") from exc
    if verify_hashes:
        _check_hashes(root, manifest)
    cohort = _load_cohort(root, manifest)
    wrong = implausible(manifest, cohort)
    if wrong:
        raise BundleError(
            f"{manifest_path}: implausible decision values: {'; '.join(wrong)}. No build "
            "writes these: the manifest was edited or damaged; re-copy or rebuild the bundle"
        )
    logger.info("model bundle %s (%s, encoder %s)", root, manifest.name, manifest.encoder_id)
    return Bundle(root=root, manifest=manifest, raw=raw, cohort=cohort)


def _load_cohort(root: Path, manifest: Manifest) -> Cohort | None:
    spec = manifest.cohort
    if spec is None:
        return None
    if manifest.identify is None:
        raise BundleError(f"{root}: a cohort without an open-set table: rebuild the bundle")
    path = root / spec.file
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path}: not a readable cohort ({exc}): rebuild the bundle") from exc
    shape = (spec.faces, manifest.encoder.embedding_size)
    if vectors.shape != shape:
        raise BundleError(f"{path}: cohort of shape {vectors.shape}, the manifest says {shape}")
    label = None
    if spec.domain_file is not None:
        where = root / spec.domain_file
        try:
            label = np.load(where, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BundleError(f"{where}: not readable domain labels ({exc}): rebuild the bundle") from exc  # fmt: skip
    try:
        return Cohort(vectors.astype(np.float32), spec.k, label, tuple(spec.domains or ()))
    except ValueError as exc:
        raise BundleError(f"{path}: {exc}: rebuild the bundle") from exc


def _check_hashes(root: Path, manifest: Manifest) -> None:
    needed = {manifest.encoder.file, manifest.detector.file}
    if manifest.alignment.landmarks_file:
        needed.add(manifest.alignment.landmarks_file)
    if manifest.cohort is not None:
        needed.add(manifest.cohort.file)
        if manifest.cohort.domain_file:
            needed.add(manifest.cohort.domain_file)
    unlisted = needed - set(manifest.files)
    if unlisted:
        raise BundleError(f"{root}: the manifest lists no sha256 for {sorted(unlisted)}")
    for name, expected in manifest.files.items():
        path = root / name
        if not path.is_file():
            raise BundleError(f"{root}: {name} is missing: re-copy or rebuild the bundle")
        actual = sha256_file(path)
        if actual != expected:
            raise BundleError(
                f"{path}: sha256 {actual[:16]}... does not match the manifest's "
                f"{expected[:16]}...: the file was changed or damaged; re-copy or rebuild "
                "the bundle (edge-face never runs a model it cannot verify)"
            )
