"""edge-face side by side with face_recognition (dlib) and OpenCV's YuNet + SFace: one run,
the same photos and clip for every system, each with its own detector and threshold.

    .venv/bin/python bench/suite.py [--bundle build/bundle ...] [--limit-pairs N]
        [--people 200] [--strangers 500] [--rounds 5] [--clip-rounds 3] [--fresh]

Writes bench/results/benchmarks.json, the plots in docs/benchmarks/ and
docs/BENCHMARKS.md (``make bench``). See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import accuracy
import bench_doc
import numpy as np
import peers
import plots
import report
import suite_pi
import timing
from encoder_vs_dlib import limit_pairs

from edge.config import RecognitionConfig
from edge.matcher import Rule, identify_rule
from model_export.calibration import select
from model_export.data import data_root, read_pairs

REPO = peers.REPO
RESULT = REPO / "bench" / "results" / "benchmarks.json"
DOC = REPO / "docs" / "BENCHMARKS.md"
PLOTS = REPO / "docs" / "benchmarks"
CLIP = Path("videos") / "hamilton" / "short_hamilton_clip.mp4"
STARTED = time.time()


def step(message: str) -> None:
    print(f"[{time.time() - STARTED:6.0f} s] {message}", flush=True)


def shown(path: Path, root: Path) -> str:
    return f"$EDGE_FACE_DATA/{path.relative_to(root)}" if path.is_relative_to(root) else str(path)


def rules_for(system: peers.System) -> Any:
    """The rules each system is scored by, for a gallery of n embeddings."""
    if system.kind == "peer":
        return lambda n: {"documented threshold": Rule(system.threshold)}
    raw, config = system.info["raw"], RecognitionConfig()

    def edge_rules(n: int) -> dict[str, Rule]:
        default = identify_rule(
            raw.get("identify"),
            comparisons=n,
            strangers_accepted=config.strangers_accepted,
            fallback_tau=raw["tau"]["identify"],
            margin=config.margin,
            fixed_tau=config.tau,
        )
        return {"default rule": default, "bundle tau.verify": Rule(system.threshold)}

    return edge_rules


def decode_clip(root: Path) -> Path:
    """The clip's frames, decoded once (RGB), for every worker to read the same pixels."""
    import cv2

    out = peers.CACHE / "hamilton-rgb.npy"
    if out.is_file():
        return out
    capture = cv2.VideoCapture(str(root / CLIP))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    peers.CACHE.mkdir(parents=True, exist_ok=True)
    np.save(out.with_suffix(".part.npy"), np.stack(frames))
    out.with_suffix(".part.npy").replace(out)
    return out


def clip_gallery(root: Path, distractors: int) -> Path:
    refs = root / "videos" / "hamilton" / "reference"
    gallery = [
        ["Lin-Manuel Miranda", str(refs / "lin-manuel-miranda.png")],
        ["Alex Lacamoire", str(refs / "alex-lacamoire.png")],
        ["Barack Obama", str(refs / "obama.jpg")],
    ]
    gallery += [[f"lfw:{p.parent.name}", str(p)] for p in select(root / "lfw", set(), distractors)]
    out = peers.CACHE / f"clip-gallery-{distractors}.json"
    out.write_text(json.dumps(gallery))
    return out


def speed_photos(
    runs: dict[str, dict[str, Any]], pair_photos: list[Path], count: int
) -> list[Path]:
    """``count`` pair photos, spread evenly, where every system found a face."""
    ok = []
    for path in pair_photos:
        found = True
        for run in runs.values():
            i = run["index"][path]
            found = found and run["n_faces"][i] > 0
        if found:
            ok.append(path)
    picks = np.linspace(0, len(ok) - 1, min(count, len(ok))).round().astype(int)
    return [ok[i] for i in sorted(set(picks))]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--bundle",
        type=Path,
        action="append",
        help="an edge-face bundle (repeatable; default build/bundle)",
    )
    p.add_argument("--pairs", type=Path, help="default: $EDGE_FACE_DATA/lfw_protocol/pairs_dev.txt")
    p.add_argument("--limit-pairs", type=int, help="about N pairs, spread over the folds")
    p.add_argument("--people", type=int, default=200, help="open set: people enrolled")
    p.add_argument("--strangers", type=int, default=500, help="open set: people never enrolled")
    p.add_argument("--speed-faces", type=int, default=50, help="photos per speed round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved speed rounds")
    p.add_argument("--clip-rounds", type=int, default=3, help="interleaved rounds on the clip")
    p.add_argument("--clip-frames", type=int, help="at most N frames of the clip (quick runs)")
    p.add_argument("--distractors", type=int, default=60, help="LFW people in the clip's gallery")
    p.add_argument("--fresh", action="store_true", help="redo the cached photo passes")
    p.add_argument(
        "--estimate-only",
        action="store_true",
        help="measure nothing: re-derive the Pi estimate, the plots and the doc from --out",
    )
    p.add_argument("--out", type=Path, default=RESULT)
    p.add_argument("--doc", type=Path, default=DOC)
    p.add_argument("--plots", type=Path, default=PLOTS)
    return p.parse_args()


def systems_for(bundles: list[Path]) -> list[peers.System]:
    edges: list[peers.System] = []
    for b in bundles:
        s = peers.edge_system(b)
        if any(e.key == s.key for e in edges):  # two builds of one bundle name
            s = replace(s, key=f"{s.key}#{len(edges) + 1}", label=f"{s.label} [{b}]")
        edges.append(s)
    return [*edges, peers.dlib_system(), peers.sface_system()]


def estimate_only(args: argparse.Namespace) -> None:
    """Re-derive what is computed from the measurements (after a change to that code)."""
    result = json.loads(args.out.read_text())
    systems = systems_for(args.bundle or [REPO / "build" / "bundle"])
    if [s.key for s in systems] != [s["key"] for s in result["systems"]]:
        raise SystemExit(f"--bundle must name the bundles of {args.out}'s run, in its order")
    result["pi_estimate"] = suite_pi.pi_estimate_for(result, systems)
    result["plots"] = [os.path.relpath(p, REPO) for p in plots.draw_all(result, args.plots)]
    args.out.write_text(json.dumps(report.rounded(result), indent=1) + "\n")
    args.doc.write_text(bench_doc.render(result, args.doc, args.out))
    step(f"re-derived the Pi estimate, plots and {os.path.relpath(args.doc, REPO)}")


def main() -> None:
    args = parse_args()
    if args.estimate_only:
        estimate_only(args)
        return
    root = data_root()
    load_start = os.getloadavg()
    pairs_file = args.pairs or root / "lfw_protocol" / "pairs_dev.txt"
    pairs = limit_pairs(read_pairs(pairs_file, root / "lfw"), args.limit_pairs)
    pair_photos = sorted({p.left for p in pairs} | {p.right for p in pairs})
    plan = accuracy.openset_plan(root / "lfw", args.people, args.strangers)
    photos = sorted(set(pair_photos) | set(plan.photos()))
    step(
        f"{len(pairs)} pairs ({len(pair_photos)} photos); open set {len(plan.enrolled)} people "
        f"+ {len(plan.strangers)} strangers; {len(photos)} photos in all"
    )

    step("systems: the peers' venvs (created and measured on first use) and the bundles")
    systems = systems_for(args.bundle or [REPO / "build" / "bundle"])
    installs = {s.key: s.info.get("install") for s in systems if s.kind == "peer"}
    edge_install = peers.edge_install()
    for s in systems:
        if s.kind == "edge":
            files = Path(s.info["bundle"]).glob("*")
            installs[s.key] = edge_install | {"bundle_bytes": sum(f.stat().st_size for f in files)}
    installs["sface"] = (installs["sface"] or {}) | {
        "model_bytes": sum(
            Path(s.options[k]).stat().st_size
            for s in systems
            if s.key == "sface"
            for k in ("yunet", "sface")
        )
    }
    versions = {s.key: peers.versions(s) for s in systems}

    step("photo pass: every photo through every system (cached)")
    runs: dict[str, dict[str, Any]] = {}
    cached: dict[str, bool] = {}
    for s in systems:
        runs[s.key], cached[s.key] = peers.embed_photos(s, photos, args.fresh)
        runs[s.key]["index"] = {Path(p): i for i, p in enumerate(runs[s.key]["paths"])}

    step("accuracy: LFW pairs and the open set")
    pair_results = {
        s.key: accuracy.pair_figures(runs[s.key], pairs, s.metric, s.threshold) for s in systems
    }
    openset = {
        s.key: accuracy.openset_figures(runs[s.key], plan, s.metric, rules_for(s)) for s in systems
    }

    chosen = speed_photos(runs, pair_photos, args.speed_faces)
    step(f"speed: {len(chosen)} photos, {args.rounds} interleaved rounds")
    speed_rounds = timing.speed_rounds(systems, chosen, args.rounds)
    frames, gallery = decode_clip(root), clip_gallery(root, args.distractors)
    step(f"clip: {args.clip_rounds} interleaved rounds on {shown(root / CLIP, root)}")
    clip_rounds = timing.clip_rounds(systems, frames, gallery, args.clip_rounds, args.clip_frames)

    result: dict[str, Any] = {
        "benchmark": "peers",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([os.path.relpath(sys.executable, REPO), *sys.argv]),
        "machine": report.machine() | {"loadavg_start": load_start},
        "versions": versions,
        "systems": [
            {
                "key": s.key,
                "label": s.label,
                "kind": s.kind,
                "metric": s.metric,
                "threshold": s.threshold,
                "threshold_how": s.threshold_how,
                "pipeline": s.pipeline,
                "photo_pass_cached": cached[s.key],
            }
            for s in systems
        ],
        "install": installs,
        "data": {
            "pairs_file": shown(pairs_file, root),
            "pairs": len(pairs),
            "pair_photos": len(pair_photos),
            "folds": len({p.fold for p in pairs}),
            "limit_pairs": args.limit_pairs,
            "openset_people": len(plan.enrolled),
            "openset_strangers": len(plan.strangers),
            "photos": len(photos),
        },
        "pairs": pair_results,
        "openset": openset,
        "speed": {
            "photos": [shown(p, root) for p in chosen],
            "rounds": speed_rounds,
            "summary": timing.speed_summary(speed_rounds, systems),
            "ratios": timing.speed_ratios(speed_rounds, systems),
        },
        "clip": {
            "video": shown(root / CLIP, root),
            "distractors": args.distractors,
            "rounds": clip_rounds,
        }
        | timing.clip_summary(clip_rounds, systems),
    }
    step("Pi estimate, plots, docs/BENCHMARKS.md")
    result["pi_estimate"] = suite_pi.pi_estimate_for(result, systems)
    result["machine"]["loadavg_end"] = os.getloadavg()
    result["duration_s"] = round(time.time() - STARTED)
    result["plots"] = [os.path.relpath(p, REPO) for p in plots.draw_all(result, args.plots)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report.rounded(result), indent=1) + "\n")
    args.doc.write_text(bench_doc.render(result, args.doc, args.out))
    print("\n" + bench_doc.summary(result))
    step(
        f"wrote {os.path.relpath(args.out, REPO)}, {os.path.relpath(args.doc, REPO)} and "
        f"{len(result['plots'])} plots"
    )


if __name__ == "__main__":
    main()
