"""A bundle's open-set rule, fitted on calibrate people: the cohort it ships and the table
of taus (``model_export.impostors``) in that cohort's scores. The build fits it from the
encoder it has just quantized; ``model-export calibrate`` fits it again for a finished
bundle through the bundle's own encoder (a bundle whose training run is gone, or one
built before cohorts)."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.decision import DEFAULT_STRANGERS, OpenSetTable
from edge.errors import EdgeError
from edge.ports import Aligner, FaceDetector
from model_export.faces import crops_for
from model_export.impostors import COHORT_K, MIN_PEOPLE, open_set_table

logger = logging.getLogger(__name__)

COHORT_FILE = "cohort.npy"
DOMAIN_FILE = "cohort_domains.npy"  # each cohort face's domain, an index of cohort.domains


class OpenSetError(EdgeError):
    """Too few people to fit the rule on, or a bundle that cannot be refitted."""


def fit_into(
    staging: Path,
    manifest: dict[str, Any],
    first: NDArray[np.float32],
    second: NDArray[np.float32],
    metric: str,
    domains: NDArray[np.str_] | None = None,
    more: tuple[NDArray[np.float32], NDArray[np.intp]] | None = None,
) -> None:
    """Write the cohort (every face given: the first photo of each calibrate person, the
    second photos, the further ones; as float16, what the device reads) into ``staging``
    and the table, the cohort's entry and tau.identify into ``manifest``. ``second``:
    another face of the first people, in the same order; ``domains``: each first face's
    domain (``lfw``, ``cfp``), simulated apart (``model_export.impostors``); ``more``:
    further faces and the index of each one's person, searched as strangers too. With
    two domains or more, each cohort face's domain is written beside it (``DOMAIN_FILE``):
    the device mixes the domains' own taus by a probe's nearest cohort faces.

    Every photo goes into the cohort, not one per person (research/cohort_faces.py, on
    select people): with one face each, CFP's 87 people against LFW's 665 made a CFP
    probe's 50 nearest cohort faces most of CFP, its scale large and its scores small, so
    one table named too many CFP strangers and too few LFW ones."""
    if len(first) < MIN_PEOPLE:
        raise OpenSetError(
            f"only {len(first)} calibrate people are left to fit the open-set table on (at "
            f"least {MIN_PEOPLE} needed): the encoder was trained on the others. Train it on "
            "the train people of data/splits.json (model-export train's default), or give "
            "--calibration DIR"
        )
    none = (np.zeros((0, first.shape[1]), np.float32), np.zeros(0, np.intp))
    further = none if more is None else more
    # the first photos first: edge.manifest_checks reads the first faces as different people
    cohort = np.concatenate([first, second, further[0]]).astype(np.float16)
    owner = np.concatenate([np.arange(len(first)), np.arange(len(second)), further[1]])
    np.save(staging / COHORT_FILE, cohort, allow_pickle=False)
    table = open_set_table(first, second, metric, cohort=cohort.astype(np.float32),
                           domains=domains, more=more, cohort_owner=owner)  # fmt: skip
    names: list[str] = []
    if domains is not None and "tau_by_domain" in table:  # a face's domain is its person's
        names = sorted({str(d) for d in domains})
        label = np.searchsorted(names, np.asarray(domains).astype(str)[owner]).astype(np.uint8)
        np.save(staging / DOMAIN_FILE, label, allow_pickle=False)
    table["people_from"] = (
        f"{len(first)} calibrate people of data/splits.json (first and second photo; "
        f"{len(further[0])} further photos searched as strangers)"
    )
    manifest["identify"] = table
    manifest["cohort"] = {
        "file": COHORT_FILE,
        "k": COHORT_K,
        "faces": len(cohort),
        "people": len(first),
        "how": f"every photo of the {len(first)} calibrate people the table was fitted on "
        "(first, second and further near-frontal photos; float16): identification divides "
        f"a probe's distances by the mean of its {COHORT_K} nearest (edge.decision)",
        **({"domain_file": DOMAIN_FILE, "domains": names} if names else {}),
    }
    tau = OpenSetTable.from_json(table).tau_for(100, DEFAULT_STRANGERS)
    manifest["tau"]["identify"] = tau
    manifest["tau"]["identify_how"] = (
        f"a cohort score, for a gallery of size 100 at {DEFAULT_STRANGERS:.0%} strangers "
        f"accepted, with margin {table['margin']}; the device recomputes it for its own "
        "gallery size (edge.decision)"
    )


#: further photos of each calibrate person, at most, searched as strangers in the
#: simulation (research/OPENSET.md: CFP's 87 people alone left its 1% tau to a few faces)
MORE_PHOTOS = 8


@dataclass(frozen=True, slots=True)
class OpenSetFaces:
    """The calibrate people's chips for the open-set simulation: one photo of every person
    (those with a second photo first), the second photos in the same order, each first
    photo's domain (the key's first part: ``lfw/Name`` is ``lfw``), and further photos
    with the index of their person among the first."""

    first: np.ndarray
    second: np.ndarray
    domains: NDArray[np.str_]
    more: np.ndarray
    owner: NDArray[np.intp]

    def chips(self) -> np.ndarray:
        """Every chip, first, second and further photos, in that order (embed them, then
        :func:`fit_faces`)."""
        return np.concatenate([self.first, self.second, self.more])


def open_set_faces(
    people: dict[str, list[Path]],
    detector: FaceDetector,
    aligner: Aligner,
    more: int = MORE_PHOTOS,
) -> OpenSetFaces:
    """The chips of the calibrate people's first, second and up to ``more`` further
    photos (an unreadable first photo leaves its person out)."""
    keyed = sorted(
        ((k, v[: 2 + more]) for k, v in sorted(people.items())), key=lambda kv: -min(len(kv[1]), 2)
    )
    crops = crops_for([p for _, ps in keyed for p in ps], detector, aligner, "open-set faces")
    index = {p: i for i, p in enumerate(crops.paths)}
    usable = [(k, ps) for k, ps in keyed if ps[0] in index]
    both = [(k, ps) for k, ps in usable if len(ps) >= 2 and ps[1] in index]
    rest = [(k, ps) for k, ps in usable if not (len(ps) >= 2 and ps[1] in index)]
    ordered = both + rest
    further = [(j, p) for j, (_, ps) in enumerate(ordered) for p in ps[2:] if p in index]
    return OpenSetFaces(
        crops.chips[[index[ps[0]] for _, ps in ordered]],
        crops.chips[[index[ps[1]] for _, ps in both]],
        np.array([k.split("/", 1)[0] for k, _ in ordered]),
        crops.chips[[index[p] for _, p in further]],
        np.array([j for j, _ in further], np.intp),
    )


def fit_faces(
    staging: Path, manifest: dict[str, Any], faces: OpenSetFaces, vectors: np.ndarray, metric: str
) -> None:
    """:func:`fit_into` from the embeddings of ``faces.chips()``, in that order."""
    p, q = len(faces.first), len(faces.second)
    fit_into(staging, manifest, vectors[:p], vectors[p : p + q], metric, faces.domains,
             more=(vectors[p + q :], faces.owner))  # fmt: skip


def recalibrate(bundle_dir: Path, out: Path, data_root: Path) -> Path:
    """The bundle at ``bundle_dir`` with its open-set rule fitted again on the calibrate
    people of ``data_root`` (those a trained encoder learnt from, as its
    ``train_people.txt`` lists, left out), through its own encoder, written to ``out``
    (which may be ``bundle_dir``: replaced only when the new bundle verifies)."""
    from edge.bundle import MANIFEST, load_bundle
    from edge.engine import load_engine
    from model_export.bundle import finish_bundle
    from model_export.calibration import fitting_people
    from model_export.evaluate import embed_chips, postprocess

    bundle = load_bundle(bundle_dir)
    m = bundle.manifest
    engine = load_engine(bundle)
    people, _ = fitting_people(data_root, None, bundle_dir)
    logger.info("open-set faces of %d calibrate people through %s", len(people), m.encoder_id)
    faces = open_set_faces(people, engine.detector, engine.aligner)
    raw = embed_chips(engine.embedder, faces.chips(), "open-set faces")  # type: ignore[arg-type]
    vectors = postprocess(raw, m.encoder, m.encoder.mirror_average)
    manifest = {k: v for k, v in bundle.raw.items() if k not in ("format", "files", "encoder_id")}
    encoder_id = bundle.raw["encoder_id"]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it 0700: the service user must be able to read it
    try:
        for name in bundle.raw["files"]:
            if name not in (COHORT_FILE, DOMAIN_FILE):
                shutil.copy2(bundle_dir / name, staging / name)
        for extra in sorted(p for p in bundle_dir.iterdir() if p.is_file()):
            if extra.name not in bundle.raw["files"] and extra.name != MANIFEST:
                shutil.copy2(extra, staging / extra.name)  # e.g. a trained bundle's pairs
        fit_faces(staging, manifest, faces, vectors, m.encoder.metric)
        manifest["cohort"]["fitted_by"] = (
            f"model-export calibrate, {datetime.now(UTC):%Y-%m-%d}, through the bundle's "
            f"{m.encoder.quantization} encoder"
        )
        finish_bundle(staging, manifest, m.encoder.file)
        if json.loads((staging / MANIFEST).read_text())["encoder_id"] != encoder_id:
            raise OpenSetError(f"{bundle_dir}: the encoder's id changed while refitting")
        load_bundle(staging)
        if out.exists():
            shutil.rmtree(out)
        staging.replace(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out
