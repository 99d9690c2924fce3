"""Trained encoders against dlib's, int8 on the device path: the table issue 6 asks for.

For each folder written by `model-export train` (`encoder.keras` + `train.json`) an int8
bundle is built (`model_export.build.build`, quantization forced to int8, cached by its
inputs) into `build/bundles/student-<run name>`; the build evaluates it on the run's own
held-out LFW pairs (`val_pairs.json`) through the device path and decides mirror
averaging. The reference bundles (dlib's `build/bundle`, and `build/bundle-sface` when
present) are evaluated on the same held-out pairs (the first run's `val_pairs.json`), so
every row is scored on the same people. Then every encoder is timed in one loop:

- one pass of the encoder (`TFLiteEmbedder.raw`: quantize, invoke, dequantize) on a real
  aligned chip (the first held-out photo, aligned by the bundle's own aligner), one
  thread, LiteRT, all encoders interleaved round by round
  (`model_export.quantize.time_rounds`); the median of the round medians;
- per face = passes x per pass (mirror averaging runs the encoder twice);
- the ratios to dlib's encoder taken per round, then the median.

    .venv/bin/python -m research.train_table RUN_DIR [RUN_DIR ...] [--rounds 7] [--calls 20]
        [--out research/results/training.json] [--doc research/NOTEBOOK.md]

Prints the table, writes the JSON and replaces the generated section of the doc (between
`<!-- train_table: begin -->` and `<!-- train_table: end -->`; appended when absent).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench import report

REPO = Path(__file__).resolve().parent.parent
BUNDLES = REPO / "build" / "bundles"
CACHE = REPO / "build" / "bench-cache"
RESULT = REPO / "research" / "results" / "training.json"
DOC = REPO / "research" / "NOTEBOOK.md"
# dlib's encoder in full int8 (built here when build/bundle, which `make bundle` makes,
# shipped another quantization: on a CPU whose int8 kernels are slow the build picks
# float16 or dynamic range, and the issue compares int8 latencies); SFace as built
DLIB_INT8 = REPO / "build" / "bundle-int8"  # the same folder as make check-arm64 and the tests
REFERENCES = {"dlib": REPO / "build" / "bundle", "SFace": REPO / "build" / "bundle-sface"}
BEGIN, END = "<!-- train_table: begin -->", "<!-- train_table: end -->"
RUNTIME = "ai-edge-litert"
STARTED = time.time()


def step(message: str) -> None:
    print(f"[{time.time() - STARTED:6.0f} s] {message}", flush=True)


def shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One row to measure: a trained run's int8 bundle, or a reference bundle."""

    key: str
    kind: str  # "student" | "reference"
    bundle: Path
    evaluation: dict[str, Any]  # accuracy_mean, accuracy_std, tar_at_far, model, pairs, ...
    pairs_sha256: str
    train_dir: Path | None = None
    build_seconds: float | None = None


def read_run(folder: Path) -> dict[str, Any]:
    """train.json of a finished training run (or exit saying why not)."""
    meta_file = folder / "train.json"
    if not (meta_file.is_file() and (folder / "encoder.keras").is_file()):
        sys.exit(f"{folder}: not a finished training run (needs encoder.keras and train.json)")
    if not (folder / "val_pairs.json").is_file():
        sys.exit(f"{folder}: no val_pairs.json (the held-out pairs the table is scored on)")
    meta: dict[str, Any] = json.loads(meta_file.read_text())
    return meta


def build_student(folder: Path) -> tuple[Path, float]:
    """The run's int8 bundle (built, or copied from the build cache) and the seconds it took."""
    from model_export.build import BuildOptions, build
    from model_export.data import data_root

    t0 = time.time()
    out = build(
        BuildOptions(
            out=BUNDLES / f"student-{folder.name}",
            data_root=data_root(),
            encoder=str(folder),
            quantization="int8",
        )
    )
    return out, time.time() - t0


def bundle_evaluation(bundle: Path) -> dict[str, Any]:
    """The figures the build recorded (on the run's own held-out pairs)."""
    ev: dict[str, Any] = json.loads((bundle / "manifest.json").read_text())["evaluation"]
    return {k: v for k, v in ev.items() if k != "variants"}


def reference_evaluation(bundle: Path, pairs_file: Path) -> dict[str, Any]:
    """A reference bundle on the students' held-out pairs, through the device path
    (cached in build/bench-cache by encoder id, pairs and evaluation code)."""
    from edge.bundle import load_bundle
    from model_export.bundle import code_hash
    from model_export.data import data_root, read_pairs
    from model_export.evaluate import evaluate_bundle

    b = load_bundle(bundle)
    key = f"{b.manifest.encoder_id}-{sha256(pairs_file)[:12]}-{code_hash()[:8]}"
    cached = CACHE / f"train-table-{key}.json"
    if cached.is_file():
        step(f"  {shown(bundle)}: evaluation cached ({shown(cached)})")
        result: dict[str, Any] = json.loads(cached.read_text())
        return result
    step(f"  {shown(bundle)}: evaluating on {shown(pairs_file)} (device path) ...")
    ev = evaluate_bundle(b, read_pairs(pairs_file, data_root() / "lfw"))
    result = {k: v for k, v in ev.items() if k != "variants"}
    result["no_face"] = ev["no_face"]["count"]
    result["variants"] = {k: v["accuracy_mean"] for k, v in ev["variants"].items()}
    result["pairs_file"] = shown(pairs_file)
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(report.rounded(result), indent=1) + "\n")
    return result


def references() -> dict[str, Path]:
    """The reference bundles; dlib's in full int8 (see DLIB_INT8)."""
    refs = dict(REFERENCES)
    dlib = refs["dlib"]
    if (dlib / "manifest.json").is_file():
        q = json.loads((dlib / "manifest.json").read_text())["encoder"]["quantization"]
        if q != "int8":
            from model_export.build import BuildOptions, build
            from model_export.data import data_root

            step(f"{shown(dlib)} is {q}: dlib's int8 bundle -> {shown(DLIB_INT8)} ...")
            refs["dlib"] = build(
                BuildOptions(
                    out=DLIB_INT8, data_root=data_root(), encoder="dlib", quantization="int8"
                )
            )
    return refs


def timing_chip(bundle: Path, photo: Path, size: int) -> tuple[NDArray[np.uint8], str]:
    """A real face aligned by the bundle's own detector and aligner (a fixed random chip
    if no face can be cut from the photo)."""
    from edge.align import make_aligner
    from edge.bundle import load_bundle
    from edge.detect import make_detector
    from model_export.faces import crops_for

    b = load_bundle(bundle)
    detector = make_detector(b.manifest.detector, b.root)
    aligner = make_aligner(b.manifest.alignment, b.root)
    crops = crops_for([photo], detector, aligner, "timing chip")
    if len(crops.chips) and not crops.no_face:
        return np.ascontiguousarray(crops.chips[0]), shown(photo)
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "random uint8 (seed 0)"


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def time_encoders(
    entries: list[Entry], photo: Path, rounds: int, calls: int
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Per entry: ms per pass and per face and the ratios to dlib, all encoders
    interleaved round by round in one loop (one thread, LiteRT)."""
    from edge.bundle import load_bundle
    from edge.embedder import TFLiteEmbedder
    from model_export.quantize import time_rounds

    work = {}
    passes: dict[str, int] = {}
    chips: dict[str, str] = {}
    for e in entries:
        b = load_bundle(e.bundle)
        spec = b.manifest.encoder
        emb = TFLiteEmbedder(b.path(spec.file), spec, b.manifest.encoder_id, 1, RUNTIME)
        chip, chips[e.key] = timing_chip(e.bundle, photo, spec.input_size)
        emb.raw(chip)  # fails here, not in the loop, on a wrong chip
        work[e.key] = functools.partial(emb.raw, chip)
        passes[e.key] = 2 if spec.mirror_average else 1
    step(f"timing {len(work)} encoders: {rounds} interleaved rounds of {calls} passes each")
    per_round = time_rounds(work, rounds, calls)
    ref = per_round["dlib"]
    ref_face = [ms * passes["dlib"] for ms in ref]
    out: dict[str, dict[str, Any]] = {}
    for key, ms in per_round.items():
        face = [m * passes[key] for m in ms]
        out[key] = {
            "passes": passes[key],
            "ms_per_pass": spread(ms),
            "ms_per_face": spread(face),
            "ratio_pass_vs_dlib": spread([a / b for a, b in zip(ms, ref, strict=True)]),
            "ratio_face_vs_dlib": spread([a / b for a, b in zip(face, ref_face, strict=True)]),
            "rounds_ms_per_pass": ms,
        }
    return out, chips


def training_record(meta: dict[str, Any]) -> dict[str, Any]:
    student = meta.get("student") or {}
    teacher = meta.get("teacher") or {}
    final = (meta.get("validation") or {}).get("final") or {}
    options = meta.get("options") or {}
    loss = str(meta.get("loss"))
    if loss != "triplet" and options.get("distill", "embedding") != "embedding":
        loss += f" (distill {options['distill']})"
    if student.get("hinted") and options.get("hints"):
        loss += f" + hints x{options['hints']:g} (teacher in the loop)"
    if options.get("mixup"):
        loss += f" + mixup {options['mixup']:g}"
    if options.get("average"):
        loss += f"; weights averaged over {options['average']:g} epochs"
    return {
        "name": meta.get("name"),
        "loss": loss,
        # runs from before train.json recorded `init` were trained from scratch (the default)
        "init": student.get("init") or (meta.get("options") or {}).get("init") or "scratch",
        "student": student,
        "parameters": meta.get("parameters"),
        "macs": meta.get("macs"),
        "teacher": teacher.get("name"),
        "teacher_encoder_id": teacher.get("encoder_id"),
        "epochs": meta.get("epochs"),
        "training_seconds": meta.get("training_seconds"),
        "float_accuracy": final.get("accuracy_mean"),
        "float_tar_at_far": final.get("tar_at_far"),
        "data": {k: (meta.get("data") or {}).get(k) for k in ("people", "photos", "split")},
        "command": meta.get("command"),
        "options": meta.get("options"),
        "machine": meta.get("machine"),
    }


def check_record(manifest: dict[str, Any]) -> dict[str, Any]:
    """How closely the shipped model follows the float one (the build's check), and
    whether the build's rule calls that accurate."""
    check = manifest.get("quantization_check") or {}
    q = manifest["encoder"]["quantization"]
    candidate = (manifest.get("quantization") or {}).get("candidates", {}).get(q, {})
    return {
        "cosine_mean": check.get("cosine_mean"),
        "cosine_min": check.get("cosine_min"),
        "decision_flips": check.get("decision_flips"),
        "accurate_by_build_rule": candidate.get("accurate"),
    }


def row(e: Entry, speed: dict[str, Any], chip: str) -> dict[str, Any]:
    m = json.loads((e.bundle / "manifest.json").read_text())
    enc = m["encoder"]
    macs = enc.get("macs")
    passes = speed["passes"]
    r: dict[str, Any] = {
        "key": e.key,
        "kind": e.kind,
        "bundle": shown(e.bundle),
        "encoder_id": m["encoder_id"],
        "quantization": enc["quantization"],
        "mirror_average": enc["mirror_average"],
        "passes": passes,
        "lfw_accuracy": e.evaluation["accuracy_mean"],
        "lfw_std": e.evaluation["accuracy_std"],
        "tar_at_far_1e-3": e.evaluation["tar_at_far"],
        "auc": e.evaluation.get("auc"),
        "pairs": e.evaluation.get("pairs"),
        "evaluated_model": e.evaluation.get("model"),
        "no_face": e.evaluation.get("no_face"),
        "pairs_sha256": e.pairs_sha256,
        "macs_per_pass": macs,
        "macs_per_face": macs * passes if macs else None,
        "size_bytes": (e.bundle / enc["file"]).stat().st_size,
        "int8_check": check_record(m),
        "timing_chip": chip,
        **{k: v for k, v in speed.items() if k != "passes"},
    }
    if e.train_dir is not None:
        r["train_dir"] = str(e.train_dir)
        r["build_seconds"] = e.build_seconds
        r["training"] = training_record(json.loads((e.train_dir / "train.json").read_text()))
    return r


def _fraction(f: float | dict[str, float]) -> str:
    """0.5, or per stage height: 35:0.25,17:0.625 (as --keep takes it)."""
    return ",".join(f"{h}:{v:g}" for h, v in f.items()) if isinstance(f, dict) else f"{f:g}"


def _init(t: dict[str, Any]) -> str:
    """How the student started: a cut of dlib's ResNet says its fractions and stem."""
    student, options = t.get("student") or {}, t.get("options") or {}
    text = str(t.get("init", "-"))
    if "stream_keep" in student:
        text = (
            f"dlib cut {_fraction(student['stream_keep'])}/{_fraction(student['inner_keep'])}, "
            f"stem {student.get('stem_kernel', 7)}"
        )
    return text + (" + refit" if options.get("refit") else "")


def cells(r: dict[str, Any]) -> dict[str, str]:
    t = r.get("training") or {}
    secs = t.get("training_seconds")
    return {
        "row": r["key"],
        "init": _init(t),
        "loss": str(t.get("loss", "-")),
        "teacher": str(t.get("teacher") or "-"),
        "epochs": str(t.get("epochs", "-")),
        "train": f"{secs / 60:.0f} min" if secs is not None else "-",
        "quant": r["quantization"],
        "acc": f"{r['lfw_accuracy'] * 100:.2f} ± {r['lfw_std'] * 100:.2f}",
        "tar": f"{r['tar_at_far_1e-3'] * 100:.2f}",
        "macs": f"{r['macs_per_pass'] / 1e6:.1f}" if r["macs_per_pass"] else "-",
        "passes": str(r["passes"]),
        "macs_face": f"{r['macs_per_face'] / 1e6:.1f}" if r["macs_per_face"] else "-",
        "pass": f"{r['ms_per_pass']['median']:.2f}",
        "face": f"{r['ms_per_face']['median']:.2f}",
        "xpass": f"{r['ratio_pass_vs_dlib']['median']:.2f}",
        "xface": f"{r['ratio_face_vs_dlib']['median']:.2f}",
        "mb": f"{r['size_bytes'] / 1e6:.2f}",
    }


COLUMNS = [
    ("row", "run", "run"),
    ("init", "init", "init"),
    ("loss", "loss", "loss"),
    ("teacher", "teacher", "teacher"),
    ("epochs", "epochs", "epochs"),
    ("train", "train time", "training time"),
    ("quant", "quant.", "quantization"),
    ("acc", "LFW acc %", "held-out acc %"),
    ("tar", "TAR@1e-3 %", "TAR@FAR1e-3 %"),
    ("macs", "M MACs/pass", "M MACs / pass"),
    ("passes", "passes", "passes"),
    ("macs_face", "M MACs/face", "M MACs / face"),
    ("pass", "ms/pass", "ms / pass"),
    ("face", "ms/face", "ms / face"),
    ("xpass", "pass/dlib", "pass vs dlib"),
    ("xface", "face/dlib", "face vs dlib"),
    ("mb", "MB", "size MB"),
]


def table(rows: list[dict[str, Any]]) -> str:
    body = [[c[k] for k, _, _ in COLUMNS] for c in map(cells, rows)]
    return report.render([h for _, h, _ in COLUMNS], body)


def markdown(rows: list[dict[str, Any]], result: dict[str, Any]) -> str:
    from model_export.quantize import MIN_COSINE_MEAN, MIN_COSINE_MIN

    t = result["timing"]
    machine = result["machine"]
    lines = [
        "## Trained encoders against dlib's (int8, device path)",
        "",
        f"Generated by `{result['command']}` ({result['date']}, {machine['cpu_model']}, "
        f"{machine['nproc']} cores); figures in `{result['out']}`. Do not edit by hand "
        "between the markers.",
        "",
        f"- **held-out acc / TAR@FAR1e-3**: the int8 bundle of each run "
        f"(`model-export build --encoder RUN --quantization int8`) on the run's own held-out "
        f"pairs (`{result['pairs']['file']}`: {result['pairs']['description']}), k-fold accuracy (tau chosen on the "
        "other folds) and the true-accept rate at a false-accept rate of 1e-3, through the "
        "device path (YuNet, the bundle's alignment, the TFLite encoder, mirror averaging "
        "when the build kept it). The reference bundles are evaluated on the same pairs. "
        f"With {result['pairs']['different']} different-person pairs, FAR 1e-3 allows no "
        "false accept at all.",
        "- **M MACs / face** = multiply-adds per pass (the bundle's `encoder.macs`) x passes "
        "(2 with mirror averaging).",
        f"- **ms / pass**: one encoder pass (quantize, invoke, dequantize) on a real aligned "
        f"face, one thread, {RUNTIME}, every encoder in one loop of {t['rounds']} interleaved "
        f"rounds of {t['calls']} passes; the median of the round medians. **ms / face** = "
        "passes x ms / pass. **vs dlib**: the ratio to dlib's encoder taken per round, median "
        "(below 1: faster than dlib).",
        "- **training time**: `train.json` `training_seconds`, on the machine that trained "
        "it (its `machine` and `options.threads` are in the JSON).",
        "",
        "| " + " | ".join(d for _, _, d in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for c in map(cells, rows):
        lines.append("| " + " | ".join(c[k] for k, _, _ in COLUMNS) + " |")
    notes = [
        f"- {r['key']}: its {r['quantization']} embeddings follow the float model less "
        "closely than `model-export build`'s rule asks (cosine to float mean "
        f"{r['int8_check']['cosine_mean']:.4f}, min {r['int8_check']['cosine_min']:.4f} on "
        f"the build's check faces; the rule: mean >= {MIN_COSINE_MEAN}, min >= {MIN_COSINE_MIN})."
        for r in rows
        if r["int8_check"]["accurate_by_build_rule"] is False
    ]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def write_section(doc: Path, section: str) -> None:
    """Replace the text between the markers (append them when absent); nothing else."""
    text = doc.read_text() if doc.is_file() else ""
    block = f"{BEGIN}\n{section}{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        if END not in rest:
            sys.exit(f"{doc}: {END} comes before {BEGIN}: fix the markers by hand")
        tail = rest.split(END, 1)[1]
        doc.write_text(head + block + tail)
    elif BEGIN in text or END in text:
        sys.exit(f"{doc}: only one of {BEGIN} / {END} is there: fix the markers by hand")
    else:
        sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        doc.write_text(text + sep + block + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=20, help="passes per encoder per round")
    ap.add_argument("--out", type=Path, default=RESULT)
    ap.add_argument("--doc", type=Path, default=DOC)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow is imported by the build
    logging.basicConfig(level=logging.WARNING, format="    %(message)s", stream=sys.stdout)
    logging.getLogger("model_export").setLevel(logging.INFO)

    runs = [p.resolve() for p in args.runs]
    names = [p.name for p in runs]
    if len(set(names)) != len(names):
        sys.exit(f"run folders must have different names (their bundles are student-NAME): {names}")
    metas = {p: read_run(p) for p in runs}
    pairs_file = runs[0] / "val_pairs.json"
    pairs_sha = sha256(pairs_file)
    load_start = os.getloadavg()

    entries: list[Entry] = []
    for key, path in references().items():
        if not (path / "manifest.json").is_file():
            if key == "dlib":
                sys.exit(f"{shown(path)}: no dlib bundle (make bundle): it is the reference")
            step(f"{shown(path)}: absent, no {key} row")
            continue
        step(f"reference {key}: {shown(path)}")
        ev = reference_evaluation(path, pairs_file)
        entries.append(Entry(key, "reference", path, ev, pairs_sha))
    for folder in runs:
        step(f"run {folder.name}: int8 bundle -> {shown(BUNDLES / f'student-{folder.name}')} ...")
        bundle, seconds = build_student(folder)
        step(f"run {folder.name}: bundle ready ({seconds:.0f} s)")
        own = bundle / "eval_pairs.json"
        own_sha = sha256(own) if own.is_file() else ""
        if own_sha != pairs_sha:
            step(
                f"WARNING: {folder.name} was evaluated on other pairs than the references' "
                f"({shown(pairs_file)}): its row is not like for like"
            )
        entries.append(
            Entry(
                folder.name, "student", bundle, bundle_evaluation(bundle), own_sha, folder, seconds
            )
        )

    from model_export.data import data_root, read_pairs

    pairs = read_pairs(pairs_file, data_root() / "lfw")
    speed, chips = time_encoders(entries, pairs[0].left, args.rounds, args.calls)
    rows = [row(e, speed[e.key], chips[e.key]) for e in entries]
    print(table(rows), flush=True)

    out: Path = args.out.resolve()
    result: dict[str, Any] = {
        "benchmark": "training",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(
            [os.path.relpath(sys.executable, REPO), "-m", "research.train_table", *sys.argv[1:]]
        ),
        "out": shown(out),
        "machine": report.machine() | {"loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "versions": report.edge_versions(),
        "pairs": {
            "file": shown(pairs_file),
            "sha256": pairs_sha,
            "pairs": len(pairs),
            "same": sum(p.same for p in pairs),
            "different": sum(not p.same for p in pairs),
            "folds": len({p.fold for p in pairs}),
            "description": str(metas[runs[0]].get("validation", {}).get("split", "held out")),
        },
        "timing": {
            "rounds": args.rounds,
            "calls": args.calls,
            "threads": 1,
            "runtime": RUNTIME,
            "what": "TFLiteEmbedder.raw (quantize, invoke, dequantize): one encoder pass; "
            "per face = passes x per pass; ratios to dlib per round, median",
        },
        "rows": rows,
        "seconds": time.time() - STARTED,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.rounded(result), indent=1) + "\n")
    write_section(args.doc, markdown(rows, result))
    step(f"wrote {shown(out)} and the {BEGIN} section of {shown(args.doc)}")


if __name__ == "__main__":
    main()
