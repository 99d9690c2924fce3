"""Real time on one core (issue 23): the daemon with its encoder schedule, motion gate,
scaled detection and detection rate ("on"), the daemon with all four off ("off": every face of every frame
embedded, the detector on every full frame), and the peers' per-frame tutorial loops, side
by side in one run, on three clips (bench/clips.py): Hamilton, street and an idle scene.

    .venv/bin/python bench/daemon_fps.py [--bundle build/bundle-sface] [--peers sface,dlib]
        [--clips hamilton,street,idle] [--rounds 1] [--out bench/results/daemon_fps.json]

Every run is a worker process with one thread (bench/edge_worker.py, bench/peer_worker.py:
the same ``clip`` job as the suite's), fed decoded frames, against a gallery of the Hamilton
clip's three people and 60 LFW report people (one photo each). Per clip and system:

- **fps**: frames per second as fast as it goes (one thread; decoding not timed);
- **encoder and detector calls per frame**, faces per frame, peak RSS;
- **CPU s per video s**: the clip once more at its own frame rate, as a live camera delivers
  it (the newest frame each time, the rest dropped), CPU seconds of processing per second of
  video: what a Pi owner pays in heat and power;
- **events**: what the daemon published (the per-frame loops decide nothing);
- a **Pi estimate** of the daemon's frame time from these counts (``pi_frame``).

Prints a table and writes ``--out``; the issue's targets are checked and reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import clips
import numpy as np
import peers
import pi_estimate
import report
import suite_pi

from model_export import splits
from model_export.assets import YUNET, wheel_asset
from model_export.data import data_root

REPO = peers.REPO
RESULT = REPO / "bench" / "results" / "daemon_fps.json"
DISTRACTORS = 60
CLIPS = {"hamilton": clips.hamilton, "street": clips.street, "idle": clips.idle}
TARGETS = {  # issue 23's bars, daemon on over daemon off, SFace, one thread
    "hamilton_fps_ratio": 3.0,
    "hamilton_encoder_ratio": 4.0,
    "idle_fps_ratio": 10.0,
    "hamilton_cpu_ratio": 1 / 3,  # at most
    "pi4_hamilton_fps": 15.0,
}


def systems(bundle: Path, peer_names: list[str]) -> list[peers.System]:
    edge = peers.edge_system(bundle)
    out = [
        dataclasses.replace(
            edge,
            key=f"daemon-{mode}",
            label=f"edge-face daemon, schedule {mode}",
            options=edge.options | {"daemon": mode},
        )
        for mode in ("on", "off")
    ]
    makers = {"sface": peers.sface_system, "dlib": peers.dlib_system}
    return out + [makers[p]() for p in peer_names]


def run_one(system: peers.System, frames: Path, fps: float, gallery: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        out = Path(tmp) / "clip.json"
        system.run("clip", "--frames", str(frames), "--gallery", str(gallery), "--out", str(out),
                   "--pace", str(fps))  # fmt: skip
        result: dict[str, Any] = json.loads(out.read_text())
    n = result["frames"]
    result["encoder_per_frame"] = result["encoder_calls"] / n
    result["detector_per_frame"] = result["detector_calls"] / n
    result["faces_per_frame"] = result["faces"] / n
    return result


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One clip and system over the rounds: the medians of what varies, the rest as run."""
    first = dict(rounds[0])
    for key in ("fps", "ms_per_frame", "peak_rss_mb"):
        first[key] = statistics.median(r[key] for r in rounds)
        first[f"{key}_rounds"] = [r[key] for r in rounds]
    first["cpu_per_video_s"] = statistics.median(r["paced"]["cpu_per_video_s"] for r in rounds)
    return first


def pi_frame(on: dict[str, Any], off: dict[str, Any], info: dict[str, Any],
             size: tuple[int, int], scale: float) -> dict[str, Any]:  # fmt: skip
    """The daemon's frame time on one core of each board, ESTIMATED (bench/pi_estimate.py):
    YuNet at the scaled frame size and the encoder by their multiply-adds over the board's
    rate, times the calls per frame measured here; the rest of the frame (motion gate,
    alignment, quality, matching, tracking: what is left of this machine's frame time once
    YuNet's and the encoder's share are taken out) scaled by this machine's float rate over
    the board's. This machine's float rate is YuNet's on the full frame in the "off" run."""
    yunet = wheel_asset(YUNET)
    full = pi_estimate.onnx_macs(yunet, *size)
    small = pi_estimate.onnx_macs(yunet, round(size[0] * scale), round(size[1] * scale))
    if full is None or small is None:
        raise SystemExit("the Pi estimate needs the onnx package (the export extra)")
    x86_rate = full / (off["stage_ms_per_frame"]["detect"] / off["detector_per_frame"] / 1000)
    enc = {
        "precision": suite_pi.precision(str(info.get("quantization", "int8"))),
        "speedup": info.get("speedup_over_float32") or 1.0,
    }
    enc_macs = (info.get("macs") or 0) * info.get("passes", 1)
    enc_ms_here = on["stage_ms_per_frame"]["embed"] / max(on["encoder_per_frame"], 1e-9)
    yunet_ms_here = small / x86_rate * 1000
    rest_here = max(0.0, on["ms_per_frame"] - on["detector_per_frame"] * yunet_ms_here
                    - on["encoder_per_frame"] * enc_ms_here)  # fmt: skip
    boards: dict[str, Any] = {}
    for board, rate in pi_estimate.board_rates().items():
        detect = small / rate["fp32"] * 1000
        embed = enc_macs / pi_estimate.stage_rate(rate, enc) * 1000 if enc_macs else float("nan")
        rest = rest_here * x86_rate / rate["fp32"]
        frame = on["detector_per_frame"] * detect + on["encoder_per_frame"] * embed + rest
        boards[board] = {"detect_ms": detect, "embed_ms": embed, "rest_ms": rest,
                         "frame_ms": frame, "fps": 1000 / frame}  # fmt: skip
    return {
        "detect_size": [round(size[0] * scale), round(size[1] * scale)],
        "yunet_macs": small,
        "encoder_macs": enc_macs,
        "x86_fp32_gmacs": x86_rate / 1e9,
        "detector_per_frame": on["detector_per_frame"],
        "encoder_per_frame": on["encoder_per_frame"],
        "rest_ms_here": rest_here,
        "boards": boards,
        "how": "ESTIMATE, nothing ran on a Pi: bench/pi_estimate.py's rates with the counts "
        "measured here",
    }


def checks(results: dict[str, dict[str, Any]], pi: dict[str, Any] | None) -> dict[str, Any]:
    """The issue's bars, daemon on against daemon off in this run: on the Hamilton clip
    frames/s, encoder calls and CPU per video second; on the idle scene frames/s; the Pi 4
    estimate. The CPU ratio of every clip is reported too (``cpu_ratio_by_clip``)."""

    def ratio(clip: str, key: str, invert: bool = False) -> float | None:
        if clip not in results:
            return None
        on, off = results[clip]["daemon-on"][key], results[clip]["daemon-off"][key]
        return (off / on if on else float("inf")) if invert else on / off

    out: dict[str, Any] = {
        "hamilton_fps_ratio": ratio("hamilton", "fps"),
        "hamilton_encoder_ratio": ratio("hamilton", "encoder_calls", invert=True),
        "idle_fps_ratio": ratio("idle", "fps"),
        "hamilton_cpu_ratio": ratio("hamilton", "cpu_per_video_s"),
        "cpu_ratio_by_clip": {c: ratio(c, "cpu_per_video_s") for c in results},
        "pi4_hamilton_fps": pi["boards"]["pi4"]["fps"] if pi else None,
    }
    met = {
        name: (out[name] or 0) >= bar
        for name, bar in TARGETS.items()
        if name != "hamilton_cpu_ratio"
    }
    met["hamilton_cpu_ratio"] = (out["hamilton_cpu_ratio"] or 1.0) <= TARGETS["hamilton_cpu_ratio"]
    return {"figures": out, "targets": TARGETS, "met": met}


def events_text(events: list[list[str]] | None) -> str:
    if not events:
        return "-"
    named = [f"{p} (t{t})" for kind, p, t in events if kind == "recognized"]
    unknown = sum(1 for kind, _, _ in events if kind == "unknown")
    return ", ".join(named + ([f"{unknown} unknown"] if unknown else [])) or "-"


def table(result: dict[str, Any]) -> str:
    head = (f"{'clip':<9} {'system':<33} {'fps':>7} {'x off':>6} {'enc/fr':>7} {'det/fr':>7} "
            f"{'faces/fr':>8} {'RSS MB':>7} {'CPU s/s':>8}  events")  # fmt: skip
    lines = [head, "-" * len(head)]
    for clip, per in result["results"].items():
        off = per["daemon-off"]
        for key, r in per.items():
            events = events_text(r["events"]) if key.startswith("daemon") else "(decides nothing)"
            lines.append(
                f"{clip:<9} {r['label']:<33} {r['fps']:>7.1f} {r['fps'] / off['fps']:>6.2f} "
                f"{r['encoder_per_frame']:>7.2f} {r['detector_per_frame']:>7.2f} "
                f"{r['faces_per_frame']:>8.2f} {r['peak_rss_mb']:>7.0f} "
                f"{r['cpu_per_video_s']:>8.3f}  {events}"
            )
    pi = result.get("pi_frame")
    if pi:
        lines.append("")
        lines.append(
            "Pi estimate, Hamilton, daemon on, one core (ESTIMATE from these counts): "
            + ", ".join(f"{b} {v['fps']:.1f} fps" for b, v in pi["boards"].items())
        )
    lines.append("")
    for name, ok in result["checks"]["met"].items():
        bound = "at most" if name == "hamilton_cpu_ratio" else "at least"
        lines.append(f"  {'met    ' if ok else 'NOT MET'} {name}: "
                     f"{result['checks']['figures'][name]:.3g} ({bound} {TARGETS[name]:.3g})")  # fmt: skip
    return "\n".join(lines)


def measure(bundle: Path, peer_names: list[str], chosen: list[str], rounds: int) -> dict[str, Any]:
    """Every system on every chosen clip (``rounds`` interleaved rounds), the Pi estimate
    and the checks against the issue's targets: the result ``--out`` holds."""
    root, split = data_root(), splits.load()
    started = time.time()
    gallery = clips.gallery(root, split, DISTRACTORS)
    runs = systems(bundle, peer_names)
    results: dict[str, dict[str, Any]] = {}
    info: dict[str, Any] = {}
    for clip in chosen:
        frames, fps = CLIPS[clip](root)
        per: dict[str, list[dict[str, Any]]] = {s.key: [] for s in runs}
        for k in range(rounds):
            for s in runs:
                print(f"  [{time.time() - started:5.0f} s] {clip}: {s.label}, round {k + 1}",
                      flush=True)  # fmt: skip
                per[s.key].append(run_one(s, frames, fps, gallery))
        labels = {s.key: s.label for s in runs}
        results[clip] = {key: summarise(r) | {"label": labels[key]} for key, r in per.items()}
        first = next(iter(results[clip].values()))
        shape = np.load(frames, mmap_mode="r").shape
        info[clip] = {"frames": first["frames"], "fps": fps, "size": [shape[2], shape[1]],
                      "npy": os.path.relpath(frames, REPO)}  # fmt: skip
    edge = runs[0]
    from edge.config import Config
    from edge.pipeline import detection_scale

    scale = detection_scale(Config().camera.min_face)
    h, size = results["hamilton"], info["hamilton"]["size"]
    pi = pi_frame(h["daemon-on"], h["daemon-off"], edge.info, (size[0], size[1]), scale)
    result: dict[str, Any] = {
        "benchmark": "daemon_fps",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": report.machine() | {"loadavg_end": os.getloadavg()},
        "bundle": {k: edge.info[k] for k in ("bundle", "name", "encoder_id", "quantization")},
        "detect_scale": scale,
        "gallery": {
            "people": 3 + DISTRACTORS,
            "how": "the Hamilton clip's 3 people and 60 LFW report people "
            "(report_data.clip_distractors), one photo each",
        },
        "clips": info,
        "rounds": rounds,
        "results": results,
        "pi_frame": pi,
        "duration_s": round(time.time() - started),
    }
    result["checks"] = checks(results, pi)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "build" / "bundle-sface")
    parser.add_argument("--peers", default="sface,dlib", help="comma-separated: sface, dlib")
    parser.add_argument("--clips", default="hamilton,street,idle")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (medians)")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    chosen = [c for c in args.clips.split(",") if c]
    if set(chosen) - set(CLIPS) or "hamilton" not in chosen:
        parser.error(f"--clips: from {', '.join(CLIPS)}, with hamilton (the Pi estimate)")
    peer_names = [p for p in args.peers.split(",") if p]
    result = {"command": shlex.join([os.path.relpath(sys.executable, REPO), *sys.argv])}
    result |= measure(args.bundle, peer_names, chosen, args.rounds)
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report.rounded(result), indent=1) + "\n")
    print(f"wrote {os.path.relpath(args.out, REPO)}")


if __name__ == "__main__":
    main()
