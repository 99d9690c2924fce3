"""edge-face side by side with face_recognition (dlib) and OpenCV's YuNet + SFace: one run,
the same photos and clip for every system, each with its own detector and threshold, on
``report`` people only (data/splits.json: nothing was fitted or chosen on them).

    .venv/bin/python bench/suite.py [--bundle build/bundle-sface ...] [--limit-pairs N]
        [--people 200] [--strangers 1500] [--cfp-people 60] [--cfp-strangers 60]
        [--rounds 5] [--clip-rounds 3] [--no-encounters] [--fresh]

Writes bench/results/benchmarks.json, the plots in docs/benchmarks/, docs/BENCHMARKS.md
and the generated blocks of README.md and docs/ (``make bench``). See bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
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
import clips
import daemon_fps
import doc_blocks
import encounters
import intervals
import numpy as np
import openset
import peers
import plots
import report
import report_data
import suite_pi
import timing
from encoder_vs_dlib import limit_pairs

from model_export import splits
from model_export.data import data_root

REPO = peers.REPO
RESULT = REPO / "bench" / "results" / "benchmarks.json"
DOC = REPO / "docs" / "BENCHMARKS.md"
PLOTS = REPO / "docs" / "benchmarks"
CLIP = Path("videos") / "hamilton" / "short_hamilton_clip.mp4"
STARTED = time.time()
SCHEMA = 2  # 2: report people only, per-domain open set, intervals (docs check it)
DEFAULT_BUNDLES = [REPO / "build" / "bundle-sface"]


def step(message: str) -> None:
    print(f"[{time.time() - STARTED:6.0f} s] {message}", flush=True)


def shown(path: Path, root: Path) -> str:
    return f"$EDGE_FACE_DATA/{path.relative_to(root)}" if path.is_relative_to(root) else str(path)


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
        help="an edge-face bundle (repeatable; the first is the default bundle the docs "
        "quote; default build/bundle-sface)",
    )
    p.add_argument("--pairs", type=Path, help="default: $EDGE_FACE_DATA/lfw_protocol/pairs_dev.txt")
    p.add_argument("--limit-pairs", type=int, help="about N pairs, spread over the folds")
    p.add_argument("--people", type=int, default=200, help="open set: people enrolled")
    p.add_argument(
        "--strangers", type=int, default=1500, help="open set: LFW people never enrolled"
    )
    p.add_argument("--cfp-people", type=int, default=60, help="CFP open set: people enrolled")
    p.add_argument("--cfp-strangers", type=int, default=60, help="CFP open set: strangers")
    p.add_argument("--speed-faces", type=int, default=50, help="photos per speed round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved speed rounds")
    p.add_argument("--clip-rounds", type=int, default=3, help="interleaved rounds on the clip")
    p.add_argument("--no-encounters", dest="encounters", action="store_false",
                   help="skip the encounter-level measurement (bench/encounters.py)")  # fmt: skip
    p.add_argument("--no-realtime", dest="realtime", action="store_false",
                   help="skip the real-time comparison (bench/daemon_fps.py)")  # fmt: skip
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
    systems = systems_for(args.bundle or DEFAULT_BUNDLES)
    if [s.key for s in systems] != [s["key"] for s in result["systems"]]:
        raise SystemExit(f"--bundle must name the bundles of {args.out}'s run, in its order")
    result["pi_estimate"] = suite_pi.pi_estimate_for(result, systems)
    result["plots"] = [os.path.relpath(p, REPO) for p in plots.draw_all(result, args.plots)]
    args.out.write_text(json.dumps(report.rounded(result), indent=1) + "\n")
    write_docs(json.loads(args.out.read_text()), args)
    step(f"re-derived the Pi estimate, plots and {os.path.relpath(args.doc, REPO)}")


def write_docs(result: dict[str, Any], args: argparse.Namespace) -> None:
    """docs/BENCHMARKS.md, and the generated blocks of the other docs when the run wrote
    the committed results (a run to --out elsewhere leaves the docs alone)."""
    args.doc.write_text(bench_doc.render(result, args.doc, args.out))
    if args.out.resolve() == RESULT.resolve():
        for path in doc_blocks.update_all(result):
            step(f"updated the generated blocks of {os.path.relpath(path, REPO)}")


def held_out_notes(bundle: Path, s: splits.Splits) -> dict[str, str]:
    """The domains whose report people a bundle's encoder saw while it was made: a trained
    bundle lists its training people (LFW folder names) in train_people.txt."""
    listing, manifest = (
        bundle / "train_people.txt",
        json.loads((bundle / "manifest.json").read_text()),
    )
    if not listing.is_file():
        return (
            {"lfw": "trained by model-export train on people it does not list"}
            if "training" in manifest
            else {}
        )
    trained = set(listing.read_text().split())
    notes = {}
    for source in splits.SOURCES:
        report_people = s.names(report_data.ROLE, source)
        if seen := trained & report_people:
            chosen = (
                " and chosen on LFW pairs of them (its eval_pairs.json)"
                if (bundle / "eval_pairs.json").is_file() and source == "lfw"
                else ""
            )
            notes[source] = (
                f"its encoder was trained on {len(seen)} of the {len(report_people)} "
                f"{source.upper()} report people (its train_people.txt){chosen}: not held out"
            )
    if "cfp" in notes:
        notes["cfp-profile"] = notes["cfp"]  # the same people, searched with profiles
    return notes


def with_intervals(evaluation: dict[str, Any] | None) -> dict[str, Any] | None:
    """A bundle's own evaluation with Wilson intervals on its variants' figures (its
    pairs are half genuine, as LFW's and the build's generated pairs are)."""
    if not evaluation:
        return evaluation
    out = dict(evaluation)
    out["variants"] = {}
    for name, v in (evaluation.get("variants") or {}).items():
        n = int(v.get("pairs") or evaluation.get("pairs") or 0)
        out["variants"][name] = v | {
            "accuracy_ci": intervals.rate(round(v["accuracy_mean"] * n), n),
            "tar_ci": intervals.rate(round(v["tar_at_far"] * (n // 2)), n // 2),
        }
    return out


def bundle_records(systems: list[peers.System]) -> dict[str, Any]:
    """What the docs quote from each bundle's manifest (thresholds, the open-set table,
    the quantization candidates, the build's own evaluation), as this run found them."""
    keep = ("name", "encoder_id", "created", "encoder", "tau", "identify", "quantization")
    keep += ("quantization_check", "evaluation", "calibration_pairs")
    out = {}
    for s in systems:
        if s.kind == "edge":
            manifest = json.loads((Path(s.info["bundle"]) / "manifest.json").read_text())
            source = (manifest.get("provenance") or {}).get("encoder_source")
            out[s.key] = {k: manifest.get(k) for k in keep} | {
                "path": os.path.relpath(Path(s.info["bundle"]).resolve(), REPO)
                if Path(s.info["bundle"]).resolve().is_relative_to(REPO)
                else s.info["bundle"],
                "encoder_source": source,
                "evaluation": with_intervals(manifest.get("evaluation")),
                "calibration_pairs": with_intervals(manifest.get("calibration_pairs")),
            }
    return out


def plan_record(plan: report_data.OpenSetPlan) -> dict[str, Any]:
    return {
        "about": plan.about,
        "enrolled_people": len(plan.enrolled),
        "enrollment_photos": sum(min(len(p), report_data.ENROLL) for p in plan.enrolled.values()),
        "mated_photos": plan.probes(),
        "stranger_people": len(plan.strangers),
        "stranger_photos": plan.stranger_photos(),
    }


def main() -> None:
    args = parse_args()
    if args.estimate_only:
        estimate_only(args)
        return
    root, split = data_root(), splits.load()
    load_start = os.getloadavg()
    pairs_file, every = report_data.verification_pairs(root, args.pairs)
    pairs = limit_pairs(every, args.limit_pairs)
    inputs = report_data.prepare(
        root,
        split,
        pairs,
        peers.CACHE,
        args.people,
        args.strangers,
        args.cfp_people,
        args.cfp_strangers,
    )
    pairs, pair_photos, plans = inputs.pairs, inputs.pair_photos, inputs.plans
    photos, back = sorted(inputs.copies), inputs.originals()
    step(
        f"{len(pairs)} pairs ({len(pair_photos)} photos); open set "
        + "; ".join(
            f"{d}: {len(p.enrolled)} people + {len(p.strangers)} strangers"
            for d, p in plans.items()
        )
        + f"; {len(photos)} photos in all, every one of a report person"
    )

    step("systems: the peers' venvs (created and measured on first use) and the bundles")
    systems = systems_for(args.bundle or DEFAULT_BUNDLES)
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
        runs[s.key], cached[s.key] = peers.embed_photos(s, inputs.worker_files(), args.fresh)
        runs[s.key]["paths"] = np.array([back[str(p)] for p in runs[s.key]["paths"]])
        runs[s.key]["index"] = {Path(p): i for i, p in enumerate(runs[s.key]["paths"])}

    step("accuracy: LFW pairs and the open set of each domain")
    pair_results = {
        s.key: accuracy.pair_figures(runs[s.key], pairs, s.metric, s.threshold) for s in systems
    }
    open_results = {
        s.key: {
            d: openset.figures(runs[s.key], plan, s.metric, openset.rules_for(s))
            for d, plan in plans.items()
        }
        for s in systems
    }

    encounter = None
    if args.encounters:
        default = next(s for s in systems if s.kind == "edge")
        step(
            "encounters: the daemon's k of n on clips made of the open sets' photos, the street clip"
        )
        encounter = encounters.measure(Path(default.info["bundle"]), plans, inputs.copies, root,
                                       progress=step)  # fmt: skip
        print(encounters.table(encounter), flush=True)

    chosen = speed_photos(runs, pair_photos, args.speed_faces)
    step(f"speed: {len(chosen)} photos, {args.rounds} interleaved rounds")
    speed_rounds = timing.speed_rounds(systems, chosen, args.rounds)
    frames, gallery = clips.hamilton(root)[0], clips.gallery(root, split, args.distractors)
    step(f"clip: {args.clip_rounds} interleaved rounds on {shown(root / CLIP, root)}")
    clip_rounds = timing.clip_rounds(systems, frames, gallery, args.clip_rounds, args.clip_frames)

    realtime = None
    if args.realtime:
        default = next(s for s in systems if s.kind == "edge")
        step("real time: the daemon's schedule on and off and the peers' loops, three clips")
        realtime = daemon_fps.measure(Path(default.info["bundle"]), ["sface", "dlib"],
                                      list(daemon_fps.CLIPS), 1)  # fmt: skip
        realtime["command"] = "make bench (bench/suite.py)"
        print(daemon_fps.table(realtime), flush=True)
        daemon_fps.RESULT.write_text(json.dumps(report.rounded(realtime), indent=1) + "\n")

    held_out = {
        s.key: held_out_notes(Path(s.info["bundle"]), split) for s in systems if s.kind == "edge"
    }
    result: dict[str, Any] = {
        "benchmark": "peers",
        "schema": SCHEMA,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([os.path.relpath(sys.executable, REPO), *sys.argv]),
        "machine": report.machine() | {"loadavg_start": load_start},
        "versions": versions,
        "default_bundle": next(s.key for s in systems if s.kind == "edge"),
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
                "not_held_out": held_out.get(s.key, {}),
            }
            for s in systems
        ],
        "bundles": bundle_records(systems),
        "install": installs,
        "data": {
            "role": report_data.ROLE,
            "splits": {
                "file": os.path.relpath(splits.SPLITS_FILE, REPO),
                "sha256": hashlib.sha256(splits.SPLITS_FILE.read_bytes()).hexdigest()[:16],
            },
            "pairs_file": shown(pairs_file, root),
            "pairs": len(pairs),
            "pair_photos": len(pair_photos),
            "folds": len({p.fold for p in pairs}),
            "fold_numbers": sorted({p.fold + 1 for p in pairs}),
            "limit_pairs": args.limit_pairs,
            "openset": {d: plan_record(p) for d, p in plans.items()},
            "photos": len(photos),
        },
        "pairs": pair_results,
        "openset": open_results,
        **({"encounters": encounter} if encounter else {}),
        **({"realtime": realtime} if realtime else {}),
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
    step("Pi estimate, plots, docs")
    result["pi_estimate"] = suite_pi.pi_estimate_for(result, systems)
    result["machine"]["loadavg_end"] = os.getloadavg()
    result["duration_s"] = round(time.time() - STARTED)
    result["plots"] = [os.path.relpath(p, REPO) for p in plots.draw_all(result, args.plots)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report.rounded(result), indent=1) + "\n")
    write_docs(json.loads(args.out.read_text()), args)
    print("\n" + bench_doc.summary(result))
    step(
        f"wrote {os.path.relpath(args.out, REPO)}, {os.path.relpath(args.doc, REPO)} and "
        f"{len(result['plots'])} plots"
    )


if __name__ == "__main__":
    main()
