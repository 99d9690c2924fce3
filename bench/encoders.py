"""Every encoder in every quantization, side by side: the table of docs/ENCODERS.md.

For each encoder (dlib's ResNet, OpenCV zoo's SFace imported from ONNX) and each
quantization (int8, dynamic range, float16, float32) a bundle is built with that
quantization forced (`model-export build --encoder E --quantization Q`, cached by its
inputs), then measured the same way:

- LFW pairs (pairs_dev, 5 folds, k-fold accuracy, TAR at FAR 1e-3): the build's own
  evaluation through the device path, with mirror averaging when the build kept it;
- open-set identification with the default rule: `bench/gallery_openset.py` on the
  bundle (200 people enrolled, their other photos, 500 strangers);
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
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import report

REPO = Path(__file__).resolve().parent.parent
BUNDLES = REPO / "build" / "bundles"
CACHE = REPO / "build" / "bench-cache"
RESULT = REPO / "bench" / "results" / "encoders.json"
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


def open_set(bundle: Path, key: str) -> dict[str, Any]:
    """The gallery benchmark's default-rule figures (cached by the bundle's encoder id)."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    out = CACHE / f"openset-{manifest['encoder_id']}.json"
    if not out.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"open-set identification with {key} ...", flush=True)
        cmd = [sys.executable, str(REPO / "bench" / "gallery_openset.py"), "--bundle", str(bundle)]
        subprocess.run([*cmd, "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


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


def row(key: str, bundle: Path, openset: dict[str, Any], speed: dict[str, float]) -> dict[str, Any]:
    m = json.loads((bundle / "manifest.json").read_text())
    ev, enc = m["evaluation"], m["encoder"]
    rule = openset["rules"]["default rule"]
    return {
        "key": key,
        "bundle": m["name"],
        "encoder_id": m["encoder_id"],
        "quantization": enc["quantization"],
        "mirror_average": enc["mirror_average"],
        "lfw_accuracy": ev["accuracy_mean"],
        "lfw_std": ev["accuracy_std"],
        "tar_at_far_1e-3": ev["tar_at_far"],
        "openset_correct": rule["correct"],
        "openset_wrong": rule["wrong"],
        "openset_strangers_accepted": rule["strangers_accepted"],
        "ms_per_face": speed["median_ms"],
        "ms_min": speed["min"],
        "ms_max": speed["max"],
        "macs": enc.get("macs"),
        "size_mb": (bundle / enc["file"]).stat().st_size / 1e6,
        "runtimes": enc.get("runtimes", []),
        "vs_float_cosine_min": m["quantization_check"]["cosine_min"],
        "auto_choice": m.get("quantization", {}).get("chosen") if not m.get("quantization", {}).get("forced") else None,
    }  # fmt: skip


def table(rows: list[dict[str, Any]], defaults: dict[str, str]) -> str:
    header = ["encoder", "quantization", "LFW acc", "TAR@1e-3", "correct", "wrong",
              "strangers acc.", "ms/face", "MB", "runtimes"]  # fmt: skip
    body = []
    for r in rows:
        enc = r["key"].split("-")[0]
        chosen = " (auto)" if defaults.get(enc) == r["quantization"] else ""
        body.append([
            enc, r["quantization"] + chosen + (" +mirror" if r["mirror_average"] else ""),
            f"{r['lfw_accuracy'] * 100:.2f} ± {r['lfw_std'] * 100:.2f}",
            f"{r['tar_at_far_1e-3'] * 100:.2f}", f"{r['openset_correct'] * 100:.2f}",
            f"{r['openset_wrong'] * 100:.2f}", f"{r['openset_strangers_accepted'] * 100:.2f}",
            f"{r['ms_per_face']:.2f}", f"{r['size_mb']:.1f}",
            ", ".join(x.replace("tflite-runtime 2.14", "tflite-rt 2.14") for x in r["runtimes"]),
        ])  # fmt: skip
    return report.render(header, body)


def markdown(rows: list[dict[str, Any]], defaults: dict[str, str], result: dict[str, Any]) -> str:
    lines = [
        "# Encoders and quantizations, side by side",
        "",
        "Generated by `.venv/bin/python bench/encoders.py` "
        f"({result['date']}, {result['machine']['cpu_model']}, {result['machine']['nproc']} cores); "
        "figures in `bench/results/encoders.json`. Do not edit by hand.",
        "",
        "- **LFW acc / TAR@1e-3**: `lfw_protocol/pairs_dev.txt` (5 folds, 3000 pairs), k-fold "
        "accuracy (tau chosen on the other folds) and the true-accept rate at a false-accept "
        "rate of 1e-3, through the device path (YuNet, the bundle's alignment, the TFLite "
        "encoder; mirror averaging when the build kept it).",
        "- **correct / wrong / strangers acc.**: open-set identification with the default rule "
        "(`bench/gallery_openset.py`: 200 LFW people enrolled with up to 3 photos each, their "
        "other photos as known probes, 500 people not enrolled as strangers): known faces "
        "named correctly, known faces given a wrong name, strangers given a name.",
        "- **ms/face**: the encoder as the bundle runs it (two passes with mirror averaging), "
        "one thread, all bundles timed in interleaved rounds on this machine, median.",
        "- **runtimes**: the TFLite runtimes that load the file (dynamic-range models need "
        "ai-edge-litert; tflite-runtime 2.14's FULLY_CONNECTED kernel is too old for them).",
        "- *(auto)*: what `model-export build` picks for that encoder by itself "
        "(`model_export/quantize.py`: the fastest candidate whose embeddings follow the float "
        "model, cosine mean >= 0.995 and min >= 0.98 on 200 held-out faces).",
        "",
        "| "
        + " | ".join(
            [
                "encoder",
                "quantization",
                "LFW acc %",
                "TAR@FAR1e-3 %",
                "correct %",
                "wrong %",
                "strangers accepted %",
                "ms/face (min-max)",
                "M MACs",
                "size MB",
                "runtimes",
            ]
        )
        + " |",
        "|" + "---|" * 11,
    ]
    for r in rows:
        enc = r["key"].split("-")[0]
        auto = " (auto)" if defaults.get(enc) == r["quantization"] else ""
        lines.append(
            f"| {enc} | {r['quantization']}{auto}{' + mirror' if r['mirror_average'] else ''} "
            f"| {r['lfw_accuracy'] * 100:.2f} ± {r['lfw_std'] * 100:.2f} "
            f"| {r['tar_at_far_1e-3'] * 100:.2f} | {r['openset_correct'] * 100:.2f} "
            f"| {r['openset_wrong'] * 100:.2f} | {r['openset_strangers_accepted'] * 100:.2f} "
            f"| {r['ms_per_face']:.2f} ({r['ms_min']:.2f}-{r['ms_max']:.2f}) "
            f"| {(r['macs'] or 0) / 1e6:.0f} | {r['size_mb']:.1f} | {', '.join(r['runtimes'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--encoders", default="dlib,sface")
    ap.add_argument("--quantizations", default="int8,dynamic,float16,float32")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=20)
    args = ap.parse_args()
    t0 = time.time()
    bundles = {
        f"{e}-{q}": build_bundle(e, q)
        for e in args.encoders.split(",")
        for q in args.quantizations.split(",")
    }
    defaults = {}
    for enc, path in DEFAULTS.items():
        manifest = REPO / path / "manifest.json"
        if manifest.is_file():
            defaults[enc] = json.loads(manifest.read_text())["encoder"]["quantization"]
    opensets = {k: open_set(p, k) for k, p in bundles.items()}
    speed = time_encoders(bundles, args.rounds, args.calls)
    rows = [row(k, p, opensets[k], speed[k]) for k, p in bundles.items()]
    print(table(rows, defaults))
    result = {
        "benchmark": "encoders",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python bench/encoders.py",
        "machine": report.machine(),
        "versions": report.edge_versions(),
        "rows": rows,
        "auto_choice": defaults,
        "seconds": time.time() - t0,
    }
    RESULT.write_text(json.dumps(report.rounded(result), indent=1) + "\n")
    DOC.write_text(markdown(rows, defaults, result))
    print(f"wrote {RESULT.relative_to(REPO)} and {DOC.relative_to(REPO)}")


if __name__ == "__main__":
    main()
