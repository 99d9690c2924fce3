"""Every encoder in every quantization, side by side: docs/ENCODERS.md.

For each encoder (dlib's ResNet, OpenCV zoo's SFace imported from ONNX) and each
quantization (int8, dynamic range, float16, float32) a bundle is built with that
quantization forced (`model-export build --encoder E --quantization Q`, cached by its
inputs); the quantization the build picks by itself is the default bundle `make bench`
measures (build/bundle-sface, build/bundle), taken as it is. Each is measured the way
`make bench` measures (bench/suite.py), on the same report people (data/splits.json),
with the same code and the same cached photo pass, so a bundle in both pages has the same
figures in both:

- LFW pairs (pairs_dev, 5 folds): k-fold accuracy and TAR at FAR 1e-3, Wilson intervals;
- the open set of each domain (LFW and CFP report people) at the bundle's default rule:
  DIR, wrong names and FPIR, intervals by a bootstrap by person (bench/openset.py);
- milliseconds per face for the encoder as the bundle runs it (mirror averaging = two
  passes), one thread, all bundles interleaved in rounds, median of the round medians;
- the model file's size and the runtimes that load it.

    .venv/bin/python bench/encoders.py [--encoders dlib,sface] [--quantizations ...]

Prints the table, writes bench/results/encoders.json and docs/ENCODERS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import accuracy
import intervals
import numpy as np
import openset
import peers
import report
import report_data
from encoder_vs_dlib import limit_pairs

REPO = Path(__file__).resolve().parent.parent
BUNDLES = REPO / "build" / "bundles"
CACHE = REPO / "build" / "bench-cache"
RESULT = REPO / "bench" / "results" / "encoders.json"
SCHEMA = 2  # report people, both domains, intervals (the docs check it)
DOC = REPO / "docs" / "ENCODERS.md"
DEFAULTS = {"dlib": "build/bundle", "sface": "build/bundle-sface"}


def build_bundle(encoder: str, quantization: str) -> Path:
    from model_export.build import BuildOptions, build
    from model_export.data import data_root

    out = BUNDLES / f"{encoder}-{quantization}"
    print(f"bundle {encoder} / {quantization} ...", flush=True)
    return build(
        BuildOptions(out=out, data_root=data_root(), encoder=encoder, quantization=quantization)
    )


def measure(bundles: dict[str, Path], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """bench/suite.py's accuracy figures for each bundle, on the same inputs."""
    from model_export import splits
    from model_export.data import data_root

    root, split = data_root(), splits.load()
    pairs = limit_pairs(splits.protocol_pairs(root), args.limit_pairs)
    inputs = report_data.prepare(
        root, split, pairs, CACHE, args.people, args.strangers, args.cfp_people, args.cfp_strangers
    )
    back, out = inputs.originals(), {}
    for key, bundle in bundles.items():
        system = peers.edge_system(bundle)
        run, _ = peers.embed_photos(system, inputs.worker_files(), fresh=False)
        run["paths"] = np.array([back[str(p)] for p in run["paths"]])
        out[key] = {
            "pairs": accuracy.pair_figures(run, inputs.pairs, system.metric, system.threshold),
            "openset": {
                d: openset.figures(run, plan, system.metric, openset.rules_for(system))
                for d, plan in inputs.plans.items()
            },
            "data": {d: plan.about for d, plan in inputs.plans.items()},
        }
    return out


def time_encoders(bundles: dict[str, Path], rounds: int, calls: int) -> dict[str, dict[str, float]]:
    """ms per face as each bundle embeds (incl. mirror averaging), interleaved rounds."""
    from edge.bundle import load_bundle
    from edge.embedder import TFLiteEmbedder
    from model_export.quantize import time_rounds

    rng = np.random.default_rng(0)
    embedders = {}
    for key, path in bundles.items():
        b = load_bundle(path)
        emb = TFLiteEmbedder(b.path(b.manifest.encoder.file), b.manifest.encoder, "bench", 1)
        chip = rng.integers(0, 256, (emb.spec.input_size,) * 2 + (3,), dtype=np.uint8)
        embedders[key] = (emb, chip)
    work = {key: functools.partial(emb.vector, chip) for key, (emb, chip) in embedders.items()}
    per_round = time_rounds(work, rounds, calls)
    return {
        k: {"median_ms": statistics.median(v), "min": min(v), "max": max(v)}
        for k, v in per_round.items()
    }


def row(key: str, bundle: Path, figures: dict[str, Any], speed: dict[str, float]) -> dict[str, Any]:
    m = json.loads((bundle / "manifest.json").read_text())
    enc, p = m["encoder"], figures["pairs"]
    opens = {}
    for d, o in figures["openset"].items():
        rule = o["rules"]["default rule"]
        at1 = next(a for a in o["at_fpir"] if a["target"] == 0.01 and a["margin"] == 0)
        opens[d] = {
            "dir": rule["dir"],
            "wrong": rule["wrong"],
            "fpir": rule["fpir"],
            "dir_at_fpir_1pct": at1["dir"],
            "about": figures["data"][d],
        }
    return {
        "key": key,
        "bundle": m["name"],
        "path": os.path.relpath(bundle.resolve(), REPO)
        if bundle.resolve().is_relative_to(REPO)
        else str(bundle),
        "encoder_id": m["encoder_id"],
        "quantization": enc["quantization"],
        "mirror_average": enc["mirror_average"],
        "lfw_accuracy": p["accuracy_ci"],
        "lfw_std": p["accuracy_std"],
        "lfw_tar_at_far_1e-3": p["tar_ci"],
        "openset": opens,
        "ms_per_face": speed["median_ms"],
        "ms_min": speed["min"],
        "ms_max": speed["max"],
        "macs": enc.get("macs"),
        "size_mb": (bundle / enc["file"]).stat().st_size / 1e6,
        "runtimes": enc.get("runtimes", []),
        "vs_float_cosine_min": m["quantization_check"]["cosine_min"],
        "forced": bool(m.get("quantization", {}).get("forced")),
    }


def markdown(result: dict[str, Any]) -> str:
    rows, auto = result["rows"], result["auto_choice"]
    domains = list(rows[0]["openset"]) if rows else []
    names = {"lfw": "LFW", "cfp": "CFP"}
    lines = [
        "<!-- figures: bench/results/encoders.json; generated whole by bench/encoders.py: do "
        "not edit, rerun -->",
        "",
        "# Encoders and quantizations, side by side",
        "",
        f"Generated by `.venv/bin/python bench/encoders.py` ({result['date']}, "
        f"{result['machine']['cpu_model']}, {result['machine']['nproc']} cores) from "
        "`bench/results/encoders.json`. Measured as `make bench` measures "
        "([BENCHMARKS.md](BENCHMARKS.md)): the same report people (`data/splits.json`: nothing "
        "was fitted or chosen on them), the same code; a bundle in both pages has the same "
        "figures in both. Each rate: the value, its 95% interval in brackets, its count.",
        "",
        "- **LFW acc / TAR@1e-3**: `lfw_protocol/pairs_dev.txt`, k-fold accuracy (tau chosen on "
        "the other folds) and the true-accept rate at a false-accept rate of 1e-3, through "
        "the device path (YuNet, the bundle's alignment, the TFLite encoder; mirror averaging "
        "when the build kept it); Wilson intervals over the pairs.",
        *[
            f"- **{names.get(d, d)} open set**: {rows[0]['openset'][d]['about']}; at the "
            "bundle's default rule: DIR (named correctly), wrong names, FPIR (strangers "
            "named); and DIR at FPIR 1% (tau set on these strangers). Intervals: a bootstrap "
            "by person, widened to Wilson."
            for d in domains
        ],
        "- **ms/face**: the encoder as the bundle runs it (two passes with mirror averaging), "
        "one thread, all bundles timed in interleaved rounds on this machine, median.",
        "- **runtimes**: the TFLite runtimes that load the file (dynamic-range models need "
        "ai-edge-litert; tflite-runtime's FULLY_CONNECTED kernel is too old for them).",
        "- *(auto)*: what `model-export build` picks for that encoder by itself "
        "(`model_export/quantize.py`); that row is the default bundle `make bench` measures.",
        "",
    ]
    enc_head = [
        "encoder",
        "quantization",
        "LFW acc",
        "TAR@FAR1e-3",
        "ms/face (min-max)",
        "M MACs",
        "size MB",
        "runtimes",
    ]
    body = []
    for r in rows:
        enc = r["key"].split("-")[0]
        q = r["quantization"] + (
            " (auto)" if auto.get(enc) == r["quantization"] and not r["forced"] else ""
        )
        q += " + mirror" if r["mirror_average"] else ""
        body.append(
            [
                enc,
                q,
                intervals.counted(r["lfw_accuracy"]),
                intervals.counted(r["lfw_tar_at_far_1e-3"]),
                f"{r['ms_per_face']:.2f} ({r['ms_min']:.2f}-{r['ms_max']:.2f})",
                f"{(r['macs'] or 0) / 1e6:.0f}",
                f"{r['size_mb']:.1f}",
                ", ".join(r["runtimes"]),
            ]
        )
    lines += [_table(enc_head, body), ""]
    for d in domains:
        body = [
            [
                r["key"].split("-")[0],
                r["quantization"] + (" + mirror" if r["mirror_average"] else ""),
                intervals.counted(r["openset"][d]["dir"]),
                intervals.counted(r["openset"][d]["wrong"]),
                intervals.counted(r["openset"][d]["fpir"]),
                intervals.counted(r["openset"][d]["dir_at_fpir_1pct"]),
            ]
            for r in rows
        ]
        lines += [
            f"**{names.get(d, d)} open set**, the default rule:",
            "",
            _table(
                ["encoder", "quantization", "DIR", "wrong name", "FPIR", "DIR at FPIR 1%"], body
            ),
            "",
        ]
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def bundles_for(
    encoders: list[str], quantizations: list[str]
) -> tuple[dict[str, Path], dict[str, str]]:
    """Each encoder in each quantization: the default bundle where its quantization is the
    one the build picks (auto), else a build with the quantization forced."""
    auto = {}
    for enc, path in DEFAULTS.items():
        manifest = REPO / path / "manifest.json"
        if manifest.is_file():
            auto[enc] = json.loads(manifest.read_text())["encoder"]["quantization"]
    bundles = {
        f"{e}-{q}": REPO / DEFAULTS[e] if auto.get(e) == q else build_bundle(e, q)
        for e in encoders
        for q in quantizations
    }
    return bundles, auto


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoders", default="dlib,sface")
    ap.add_argument("--quantizations", default="int8,dynamic,float16,float32")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--limit-pairs", type=int, help="about N pairs (quick runs)")
    ap.add_argument("--people", type=int, default=200)
    # as make bench (bench/suite.py): the same open set, so both pages agree on a bundle
    ap.add_argument("--strangers", type=int, default=1500)
    ap.add_argument("--cfp-people", type=int, default=60)
    ap.add_argument("--cfp-strangers", type=int, default=60)
    ap.add_argument("--out", type=Path, default=RESULT)
    ap.add_argument("--doc", type=Path, default=DOC)
    args = ap.parse_args()
    t0 = time.time()
    bundles, auto = bundles_for(args.encoders.split(","), args.quantizations.split(","))
    figures = measure(bundles, args)
    speed = time_encoders(bundles, args.rounds, args.calls)
    rows = [row(k, p, figures[k], speed[k]) for k, p in bundles.items()]
    result = {
        "benchmark": "encoders",
        "schema": SCHEMA,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", "bench/encoders.py", *sys.argv[1:]]),
        "machine": report.machine(),
        "versions": report.edge_versions(),
        "rows": rows,
        "auto_choice": auto,
        "seconds": time.time() - t0,
    }
    args.out.write_text(json.dumps(report.rounded(result), indent=1) + "\n")
    text = markdown(json.loads(args.out.read_text()))
    args.doc.write_text(text)
    print(text)
    print(f"wrote {args.out} and {args.doc}")


if __name__ == "__main__":
    main()
