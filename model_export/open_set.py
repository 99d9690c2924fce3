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


class OpenSetError(EdgeError):
    """Too few people to fit the rule on, or a bundle that cannot be refitted."""


def fit_into(
    staging: Path,
    manifest: dict[str, Any],
    first: NDArray[np.float32],
    second: NDArray[np.float32],
    metric: str,
    domains: NDArray[np.str_] | None = None,
) -> None:
    """Write the cohort (``first``: one face per calibrate person, as float16, what the
    device reads) into ``staging`` and the table, the cohort's entry and tau.identify into
    ``manifest``. ``second``: another face of the first people, in the same order; ``domains``: each
    first face's domain (``lfw``, ``cfp``), simulated apart (``model_export.impostors``)."""
    if len(first) < MIN_PEOPLE:
        raise OpenSetError(
            f"only {len(first)} calibrate people are left to fit the open-set table on (at "
            f"least {MIN_PEOPLE} needed): the encoder was trained on the others. Train it on "
            "the train people of data/splits.json (model-export train's default), or give "
            "--calibration DIR"
        )
    cohort = first.astype(np.float16)
    np.save(staging / COHORT_FILE, cohort, allow_pickle=False)
    table = open_set_table(first, second, metric, cohort=cohort.astype(np.float32), domains=domains)
    table["people_from"] = (
        f"{len(first)} calibrate people of data/splits.json (first and second photo)"
    )
    manifest["identify"] = table
    manifest["cohort"] = {
        "file": COHORT_FILE,
        "k": COHORT_K,
        "faces": len(cohort),
        "how": "the first face of each calibrate person (float16): identification divides "
        f"a probe's distances by the mean of its {COHORT_K} nearest (edge.decision)",
    }
    tau = OpenSetTable.from_json(table).tau_for(100, DEFAULT_STRANGERS)
    manifest["tau"]["identify"] = tau
    manifest["tau"]["identify_how"] = (
        f"a cohort score, for a gallery of 100 embeddings at {DEFAULT_STRANGERS:.0%} strangers "
        f"accepted, with margin {table['margin']}; the device recomputes it for its own "
        "gallery size (edge.decision)"
    )


def open_set_faces(
    people: dict[str, list[Path]], detector: FaceDetector, aligner: Aligner
) -> tuple[np.ndarray, np.ndarray, NDArray[np.str_]]:
    """Chips of one photo of every person (those with a second photo first) and of the
    second photos, in the same order, for the open-set simulation; and each first photo's
    domain (the key's first part: ``lfw/Name`` is ``lfw``)."""
    keyed = sorted(((k, v[:2]) for k, v in sorted(people.items())), key=lambda kv: -len(kv[1]))
    crops = crops_for([p for _, two in keyed for p in two], detector, aligner, "open-set faces")
    index = {p: i for i, p in enumerate(crops.paths)}
    usable = [(k, two) for k, two in keyed if two[0] in index]  # an unreadable first photo: out
    both = [(k, two) for k, two in usable if len(two) == 2 and two[1] in index]
    rest = [(k, two) for k, two in usable if not (len(two) == 2 and two[1] in index)]
    firsts = [two[0] for _, two in both] + [two[0] for _, two in rest]
    seconds = [two[1] for _, two in both]
    domains = np.array([k.split("/", 1)[0] for k, _ in both + rest])
    return (
        crops.chips[[index[p] for p in firsts]],
        crops.chips[[index[p] for p in seconds]],
        domains,
    )


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
    first, second, domains = open_set_faces(people, engine.detector, engine.aligner)
    raw = embed_chips(engine.embedder, np.concatenate([first, second]), "open-set faces")  # type: ignore[arg-type]
    vectors = postprocess(raw, m.encoder, m.encoder.mirror_average)
    manifest = {k: v for k, v in bundle.raw.items() if k not in ("format", "files", "encoder_id")}
    encoder_id = bundle.raw["encoder_id"]
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name in bundle.raw["files"]:
            if name != COHORT_FILE:
                shutil.copy2(bundle_dir / name, staging / name)
        for extra in sorted(p for p in bundle_dir.iterdir() if p.is_file()):
            if extra.name not in bundle.raw["files"] and extra.name != MANIFEST:
                shutil.copy2(extra, staging / extra.name)  # e.g. a trained bundle's pairs
        fit_into(staging, manifest, vectors[: len(first)], vectors[len(first) :],
                 m.encoder.metric, domains)  # fmt: skip
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
