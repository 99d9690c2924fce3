"""Speed, measured in interleaved rounds: every round runs every system once, in turn, in
its own process (one thread), so that a noisy, shared machine slows them all alike.
Figures are the median of the round medians with their min-max; ratios are taken per
round (the peer's time over edge-face's, or edge-face's fps over the peer's) and then
summarised the same way.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from peers import System

STAGES = ("detect", "align", "embed")


def spread(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "rounds": values,
    }


def speed_rounds(systems: list[System], photos: list[Path], rounds: int) -> list[dict[str, Any]]:
    """Per round and system: the median ms of every stage over the photos."""
    out: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        listing = Path(tmp) / "photos.txt"
        listing.write_text("\n".join(str(p) for p in photos))
        for k in range(rounds):
            load = os.getloadavg()[0]
            row: dict[str, Any] = {"round": k + 1, "loadavg_1min": load, "systems": {}}
            for s in systems:
                result = Path(tmp) / "round.json"
                s.run("speed", "--images", str(listing), "--out", str(result))
                t = json.loads(result.read_text())
                row["systems"][s.key] = {
                    key.removesuffix("_ms"): statistics.median(v) for key, v in t.items()
                }
            out.append(row)
            cells = ", ".join(f"{s.key} {row['systems'][s.key]['embed']:.1f}" for s in systems)
            print(
                f"  speed round {k + 1}/{rounds} (embed ms: {cells}; load {load:.2f})", flush=True
            )
    return out


def clip_rounds(
    systems: list[System], frames: Path, gallery: Path, rounds: int, limit: int | None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    extra = ["--limit", str(limit)] if limit else []
    with tempfile.TemporaryDirectory(prefix="bench-clip-") as tmp:
        for k in range(rounds):
            load = os.getloadavg()[0]
            row: dict[str, Any] = {"round": k + 1, "loadavg_1min": load, "systems": {}}
            for s in systems:
                result = Path(tmp) / "clip.json"
                s.run(
                    "clip",
                    "--frames",
                    str(frames),
                    "--gallery",
                    str(gallery),
                    "--out",
                    str(result),
                    *extra,
                )
                row["systems"][s.key] = json.loads(result.read_text())
            out.append(row)
            cells = ", ".join(f"{s.key} {row['systems'][s.key]['fps']:.1f}" for s in systems)
            print(f"  clip round {k + 1}/{rounds} (fps: {cells}; load {load:.2f})", flush=True)
    return out


def _per_round(rounds: list[dict[str, Any]], key: str, field: str) -> list[float]:
    return [float(r["systems"][key][field]) for r in rounds]


def speed_summary(rounds: list[dict[str, Any]], systems: list[System]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for s in systems:
        per = {st: _per_round(rounds, s.key, st) for st in STAGES}
        per_cpu = {st: _per_round(rounds, s.key, f"{st}_cpu") for st in STAGES}
        total = [sum(v) for v in zip(*per.values(), strict=True)]
        box = [a + e for a, e in zip(per["align"], per["embed"], strict=True)]
        row = {st: spread(v) for st, v in per.items()}
        row |= {f"{st}_cpu": spread(v) for st, v in per_cpu.items()}
        row["box_to_vector"] = spread(box)
        row["photo_to_vector"] = spread(total)
        if "combined" in rounds[0]["systems"][s.key]:
            row["face_encodings"] = spread(_per_round(rounds, s.key, "combined"))
        row["cpu_per_wall"] = spread(_per_round(rounds, s.key, "cpu_per_wall"))
        summary[s.key] = row
    return summary


def speed_ratios(rounds: list[dict[str, Any]], systems: list[System]) -> dict[str, Any]:
    """Per edge-face system and peer: peer ms / edge-face ms per round (x times faster)."""
    fields = {
        "detect": ("detect",),
        "embed": ("embed",),
        "box_to_vector": ("align", "embed"),
        "photo_to_vector": STAGES,
        "embed_cpu": ("embed_cpu",),
    }
    out: dict[str, Any] = {}
    for e in (s for s in systems if s.kind == "edge"):
        for p in (s for s in systems if s.kind == "peer"):
            ratios = {}
            for name, parts in fields.items():
                per_round = []
                for r in rounds:
                    pe = sum(r["systems"][p.key][f] for f in parts)
                    ed = sum(r["systems"][e.key][f] for f in parts)
                    per_round.append(pe / ed)
                ratios[name] = spread(per_round)
            out.setdefault(e.key, {})[p.key] = ratios
    return out


def clip_summary(rounds: list[dict[str, Any]], systems: list[System]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for s in systems:
        first = rounds[0]["systems"][s.key]
        stages = {
            st: spread([r["systems"][s.key]["stage_ms_per_frame"][st] for r in rounds])
            for st in first["stage_ms_per_frame"]
        }
        summary[s.key] = {
            "fps": spread(_per_round(rounds, s.key, "fps")),
            "ms_per_frame": spread(_per_round(rounds, s.key, "ms_per_frame")),
            "peak_rss_mb": spread(_per_round(rounds, s.key, "peak_rss_mb")),
            "stage_ms_per_frame": stages,
            "frames": first["frames"],
            "faces": first["faces"],
            "faces_per_frame": first["faces"] / first["frames"],
            "gallery": first["gallery"],
        }
    ratios: dict[str, Any] = {}
    for e in (s for s in systems if s.kind == "edge"):
        for p in (s for s in systems if s.kind == "peer"):
            fps = [r["systems"][e.key]["fps"] / r["systems"][p.key]["fps"] for r in rounds]
            rss = [
                r["systems"][p.key]["peak_rss_mb"] / r["systems"][e.key]["peak_rss_mb"]
                for r in rounds
            ]
            ratios.setdefault(e.key, {})[p.key] = {"fps": spread(fps), "peak_rss": spread(rss)}
    return {"systems": summary, "ratios": ratios}
