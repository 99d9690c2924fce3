"""The suite's Pi estimate (bench/pi_estimate.py) from its own measurements: multiply-adds
per stage (the bundle's manifest for edge-face's encoder; YuNet and SFace counted from
their ONNX graphs), the times measured here, and the clip's faces per frame (every face of
every frame: the per-frame loop); the daemon as it runs, from the detector and encoder
calls per frame it made (``daemon``: bench/daemon_fps.py's ``pi_frame``)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pi_estimate
from peers import System

PHOTO = (250, 250)  # LFW
FRAME = (640, 360)  # the Hamilton clip


def _median(summary: dict[str, Any], key: str, stage: str) -> float:
    return float(summary[key][stage]["median"])


def pi_estimate_for(result: dict[str, Any], systems: list[System]) -> dict[str, Any]:
    speed, clip = result["speed"]["summary"], result["clip"]["systems"]
    sface = next(s for s in systems if s.key == "sface")
    yunet = Path(sface.options["yunet"])
    macs = {
        "yunet_photo": pi_estimate.onnx_macs(yunet, *PHOTO),
        "yunet_frame": pi_estimate.onnx_macs(yunet, *FRAME),
        "sface": pi_estimate.onnx_macs(Path(sface.options["sface"])),
    }
    if None in macs.values():
        raise SystemExit(
            "the Pi estimate counts multiply-adds with the onnx package, "
            "which the export extra installs: pip install -e '.[dev,export]'"
        )
    opencv = {
        "YuNet 250x250 (OpenCV)": {
            "macs": macs["yunet_photo"],
            "runtime": "opencv",
            "ms": _median(speed, "sface", "detect"),
        },
        "YuNet 640x360 (OpenCV)": {
            "macs": macs["yunet_frame"],
            "runtime": "opencv",
            "ms": clip["sface"]["stage_ms_per_frame"]["detect"]["median"],
        },
        "SFace 112x112 (OpenCV)": {
            "macs": macs["sface"],
            "runtime": "opencv",
            "ms": _median(speed, "sface", "embed"),
        },
    }
    cross = dict(opencv)
    x86_fp32 = statistics.median(s["macs"] / (s["ms"] / 1000) for s in opencv.values())
    per_system: dict[str, Any] = {}
    details: dict[str, Any] = {}
    speedups: dict[str, float] = {}
    for s in systems:
        stages = _stages(s, speed, clip, macs)
        if s.kind == "edge" and s.info.get("macs"):
            cross[f"{s.label} encoder (LiteRT)"] = {
                "macs": stages["embed"]["macs"],
                "ms": stages["embed"]["ms"],
                "runtime": "litert",
            }
        est = pi_estimate.estimate(stages, x86_fp32)
        details[s.key] = est["ms"]
        if stages["embed"].get("precision") == "dynamic":
            speedups[s.key] = stages["embed"].get("speedup", 1.0)
        faces = clip[s.key]["faces_per_frame"]
        per_system[s.key] = {}
        for board, ms in est["ms"].items():
            photo = ms["detect"]["ms"] + ms["align"]["ms"] + ms["embed"]["ms"]
            frame = ms["detect_frame"]["ms"] + faces * (ms["align"]["ms"] + ms["embed"]["ms"])
            per_system[s.key][board] = {
                "photo_to_vector": photo,
                "frame_ms": frame,
                "fps": 1000.0 / frame,
                **{k: v["ms"] for k, v in ms.items()},
            }
    base = pi_estimate.estimate({}, x86_fp32)
    return {
        "boards": base["boards"],
        "rates_gmacs": base["rates_gmacs"],
        "x86_fp32_gmacs": base["x86_fp32_gmacs"],
        "sources": base["sources"],
        "macs": macs,
        "cross_check": pi_estimate.cross_check(cross),
        "stages": details,
        "per_system": per_system,
        "dynamic_speedup_over_float32": speedups,
        # the daemon as it runs (schedule, motion gate, scaled detection, detect_fps): its
        # frame time from the calls per frame it made on the clip (bench/daemon_fps.py)
        "daemon": (result.get("realtime") or {}).get("pi_frame"),
    }


def _stages(
    s: System, speed: dict[str, Any], clip: dict[str, Any], macs: dict[str, int]
) -> dict[str, dict[str, Any]]:
    """Per stage: measured ms here, multiply-adds (None: not multiply-add bound), precision."""
    frame_detect = clip[s.key]["stage_ms_per_frame"]["detect"]["median"]
    measured = {st: _median(speed, s.key, st) for st in ("detect", "align", "embed")}
    if s.key == "dlib":
        return {
            "detect": {"ms": measured["detect"], "macs": None},
            "detect_frame": {"ms": frame_detect, "macs": None},
            "align": {"ms": measured["align"], "macs": None},
            "embed": {"ms": measured["embed"], "macs": None},
        }
    if s.key == "sface":
        embed = {"ms": measured["embed"], "macs": macs["sface"], "precision": "fp32"}
    else:
        quant = str(s.info.get("quantization", "int8"))
        n = (s.info.get("macs") or 0) * s.info.get("passes", 1)
        embed = {"ms": measured["embed"], "macs": n or None, "precision": precision(quant)}
        if quant == "dynamic":
            # int8 weights, float activations: no published Pi figure; the float rate times
            # the speed-up over float32 this bundle showed at build time (1 if unknown)
            embed["speedup"] = s.info.get("speedup_over_float32") or 1.0
    return {
        "detect": {"ms": measured["detect"], "macs": macs["yunet_photo"], "precision": "fp32"},
        "detect_frame": {"ms": frame_detect, "macs": macs["yunet_frame"], "precision": "fp32"},
        "align": {"ms": measured["align"], "macs": None},
        "embed": embed,
    }


def precision(quantization: str) -> str:
    """The board rate a quantization runs at: fp32, dynamic or int8."""
    if quantization in ("float32", "float16", "none"):
        return "fp32"
    return "dynamic" if quantization == "dynamic" else "int8"
