"""The performance sections of docs/BENCHMARKS.md (speed and memory, install size, the Pi
estimate), from the suite's JSON alone."""

from __future__ import annotations

from typing import Any

from doc_common import MB, labels, ms, table, times

_labels = labels


def speed_section(result: dict[str, Any]) -> str:
    labels, summ = _labels(result), result["speed"]["summary"]
    rows = []
    for key, s in summ.items():
        enc = ms(s["face_encodings"]) if "face_encodings" in s else "-"
        rows.append(
            [
                labels[key],
                ms(s["detect"]),
                ms(s["align"], 2),
                ms(s["embed"]),
                ms(s["photo_to_vector"]),
                enc,
                ms(s["embed_cpu"]),
            ]
        )
    ratio_rows = []
    for e, per in result["speed"]["ratios"].items():
        for p, r in per.items():
            c = result["clip"]["ratios"][e][p]
            ratio_rows.append(
                [
                    f"{labels[e]} vs {labels[p]}",
                    times(r["detect"]),
                    times(r["embed"]),
                    times(r["box_to_vector"]),
                    times(r["photo_to_vector"]),
                    times(c["fps"]),
                    times(c["peak_rss"]),
                ]
            )
    clip_rows = []
    for key, c in result["clip"]["systems"].items():
        clip_rows.append(
            [
                labels[key],
                ms(c["fps"]),
                ms(c["ms_per_frame"]),
                f"{c['faces_per_frame']:.2f}",
                ms(c["peak_rss_mb"], 0),
            ]
        )
    n, rounds = len(result["speed"]["photos"]), len(result["speed"]["rounds"])
    clip0 = next(iter(result["clip"]["systems"].values()))
    return "\n".join(
        [
            "## Speed and memory",
            "",
            f"Milliseconds per call on {n} LFW photos (250x250, one face each, found by every "
            f"system), one thread, {rounds} interleaved rounds: each round runs every system "
            "once, each in its own process, after a warm-up. Median of the round medians "
            "[min-max of the round medians]. Detection is per photo, align and embed per face; "
            "for dlib, align is the 5-point landmarks and the 150x150 chip, embed the ResNet "
            "on the chip (together: what `face_encodings` does, timed too); for edge-face, "
            "embed includes mirror averaging when the bundle uses it (two encoder passes).",
            "",
            table(
                [
                    "system",
                    "detect",
                    "align",
                    "embed",
                    "photo -> vector",
                    "face_encodings",
                    "embed, CPU time",
                ],
                rows,
            ),
            "",
            f"The Hamilton clip ({clip0['frames']} frames, 640x360) end to end: every face of "
            "every frame detected, aligned, embedded and matched (nearest neighbour) against a "
            f"gallery of {clip0['gallery']} people (the clip's 3 and {result['clip']['distractors']}"
            " LFW people); frames decoded beforehand and not timed; "
            f"{len(result['clip']['rounds'])} interleaved rounds, one process each. Peak memory "
            "is the worker process's peak resident set (`VmHWM`), models and gallery included. "
            "Each system finds faces with its own detector and settings, so the faces per frame "
            "differ: the fps compare what each does with the same frames, not the same faces.",
            "",
            table(
                ["system", "frames/s", "ms per frame", "faces per frame", "peak RSS (MB)"],
                clip_rows,
            ),
            "",
            "**edge-face against each peer**, ratios taken per round (how many times faster, "
            "the peer's time over edge-face's; for fps edge-face's over the peer's; for memory "
            "the peer's over edge-face's), median [min-max]:",
            "",
            table(
                [
                    "pair",
                    "detect",
                    "embed",
                    "box -> vector",
                    "photo -> vector",
                    "clip fps",
                    "peak memory",
                ],
                ratio_rows,
            ),
            "",
            "![Time per stage and frames per second](benchmarks/latency.png)",
        ]
    )


def _events(events: list[list[str]] | None, daemon: bool) -> str:
    if not daemon:
        return "(decides nothing)"
    named = [
        f"{person} (track {track})" for kind, person, track in events or [] if kind == "recognized"
    ]
    unknown = sum(1 for kind, _, _ in events or [] if kind == "unknown")
    return ", ".join(named + ([f"{unknown} unknown"] if unknown else [])) or "none"


def realtime_section(result: dict[str, Any]) -> str:
    """The daemon with its schedule on and off, and the peers' per-frame loops, on three
    clips (bench/daemon_fps.py, run by make bench)."""
    rt = result.get("realtime")
    if not rt:
        return "## Real time on one core\n\nNot in this run (`--no-realtime`, or a run before bench/daemon_fps.py)."
    rows = []
    for clip, per in rt["results"].items():
        c = rt["clips"][clip]
        off = per["daemon-off"]
        for key, r in per.items():
            rows.append(
                [
                    f"{clip} ({c['size'][0]}x{c['size'][1]}, {c['frames']} frames, {c['fps']:.2f} fps)",
                    r["label"],
                    f"{r['fps']:.1f}",
                    f"{r['fps'] / off['fps']:.2f}x",
                    f"{r['encoder_per_frame']:.3f}",
                    f"{r['detector_per_frame']:.3f}",
                    f"{r['peak_rss_mb']:.0f} MB",
                    f"{r['cpu_per_video_s']:.3f}",
                    _events(r.get("events"), key.startswith("daemon")),
                ]
            )
    pi = rt["pi_frame"]
    boards = result.get("pi_estimate", {}).get("boards") or {}
    estimate = ", ".join(
        f"{boards.get(b, b)} {v['fps']:.1f} frames/s ({v['frame_ms']:.0f} ms a frame)"
        for b, v in pi["boards"].items()
    )
    return "\n".join(
        [
            "## Real time on one core",
            "",
            f"`{rt['command']}` ({rt['date']}), bundle `{rt['bundle']['name']}`, one thread, "
            f"a gallery of {rt['gallery']['people']} people ({rt['gallery']['how']}). "
            "*schedule on*: the daemon as configured by default (`[pipeline]`: the encoder "
            "schedule, the motion gate, detection at most `detect_fps` times a second on a "
            f"frame scaled by {rt['detect_scale']:.2f} from `[camera] min_face`); *schedule off*: "
            "the same daemon embedding every face of every frame, the detector on every full "
            "frame. The peers run their tutorials' loop (every face of every frame). fps: as "
            "fast as it goes, decoding not timed; CPU s/s: CPU seconds per second of video "
            "with the clip played at its own frame rate (the newest frame each time, as a "
            "live camera gives it). The idle clip is the street clip's empty background "
            "with fresh sensor noise on every frame (bench/clips.py).",
            "",
            table(
                [
                    "clip",
                    "system",
                    "fps",
                    "x off",
                    "encoder calls / frame",
                    "detector calls / frame",
                    "peak RSS",
                    "CPU s/s",
                    "events",
                ],
                rows,
            ),
            "",
            f"Pi estimate of the daemon on the Hamilton clip, one core (**an estimate**, see "
            f"below): {estimate}; from {pi['detector_per_frame']:.3f} detector and "
            f"{pi['encoder_per_frame']:.3f} encoder calls a frame, YuNet at "
            f"{pi['detect_size'][0]}x{pi['detect_size'][1]}.",
        ]
    )


def install_section(result: dict[str, Any]) -> str:
    labels, rows = _labels(result), []
    for key, rec in result["install"].items():
        if not rec:
            rows.append([labels[key], "-", "-", "-"])
            continue
        extra = rec.get("bundle_bytes") or rec.get("model_bytes")
        models = f"{extra / MB:.1f} MB" if extra else "in the packages"
        rows.append(
            [
                labels[key],
                f"{rec['added_bytes'] / MB:.0f} MB",
                f"{rec['pip_seconds']:.0f} s",
                models,
            ]
        )
    return "\n".join(
        [
            "## Install size and time",
            "",
            "What `pip install` adds to a fresh venv (`du` of the venv minus a bare one) and "
            "how long it took (download + install, pip's cache off, this machine's package "
            "source). edge-face: `pip install .` without extras (numpy, OpenCV, LiteRT, "
            "paho-mqtt, click, pydantic); its model bundle is copied beside it. "
            "face_recognition: with `--no-deps` on the prebuilt `dlib-bin` (a source build of "
            "dlib takes far longer), `face_recognition_models` holds its models. OpenCV: "
            "`opencv-python-headless`; the YuNet and SFace files come separately.",
            "",
            table(["system", "packages", "install time", "model files"], rows),
        ]
    )


def _speedups(result: dict[str, Any]) -> str:
    labels = _labels(result)
    found = result["pi_estimate"].get("dynamic_speedup_over_float32") or {}
    return "".join(f" ({labels[k]}: x{v:.2f})" for k, v in found.items())


def pi_section(result: dict[str, Any]) -> str:
    pi, labels = result["pi_estimate"], _labels(result)
    boards = pi["boards"]
    rows = []
    for key, per in pi["per_system"].items():
        rows.append(
            [labels[key]]
            + [f"{per[b]['photo_to_vector']:.0f} ms, {per[b]['fps']:.1f} fps" for b in boards]
        )
    daemon = pi.get("daemon")
    if daemon:
        key = result["default_bundle"]
        rows.append(
            [f"{labels[key]}, the daemon (schedule on), a Hamilton frame"]
            + [
                f"{daemon['boards'][b]['frame_ms']:.0f} ms, {daemon['boards'][b]['fps']:.1f} fps"
                for b in boards
            ]
        )
    rate_rows = [
        [boards[b], f"{r['int8']:.1f}", f"{r['fp32']:.1f}"] for b, r in pi["rates_gmacs"].items()
    ]
    cc = pi["cross_check"]
    checks = ", ".join(f"{k} {v:.2f}" for k, v in cc["pairs"].items())
    rates_here = ", ".join(f"{k} {v:.1f}" for k, v in cc["rates_gmacs"].items())
    macs = {k: v or 0 for k, v in pi["macs"].items()}
    return "\n".join(
        [
            "## Raspberry Pi: an ESTIMATE, not a measurement",
            "",
            "**Nothing here ran on a Pi.** Until someone measures on a real board, this "
            "estimates one core of each from multiply-adds per stage and published single-"
            "thread throughput. Network stages: multiply-adds / the board's sustained rate "
            "for the precision (edge-face's encoder in LiteRT: an int8 one at the int8 rate; "
            "a dynamic-range one (int8 weights, float activations: no published Pi figure) at "
            "the float rate times the speed-up over float32 it showed at build time"
            f"{_speedups(result)}; YuNet and SFace: their weights are int8 block-quantized but "
            "OpenCV computes in float). Counted: "
            f"YuNet {macs['yunet_photo'] / 1e6:.0f} M multiply-adds on a 250x250 photo, "
            f"{macs['yunet_frame'] / 1e6:.0f} M on a 640x360 frame; SFace "
            f"{macs['sface'] / 1e6:.0f} M; edge-face's encoder from its manifest (times two "
            "with mirror averaging). Not multiply-add bound (dlib's HOG and its ResNet code, "
            "landmarks and chips, alignCrop): the time measured here, scaled by this machine's "
            f"float rate ({pi['x86_fp32_gmacs']:.1f} G/s, OpenCV's networks) over the board's: "
            "a rough per-core ratio. Clip fps: detection on a frame plus the measured faces "
            "per frame times align + embed (every face of every frame). The daemon's row: its "
            "own detector and encoder calls per frame on the clip (Real time on one core), "
            "YuNet at the scaled size, and the rest of its frame time here scaled like the "
            "stages above.",
            "",
            table(["system"] + [boards[b] for b in boards], rows),
            "",
            "Sustained multiply-adds per second of one core (G/s), derived from the sources:",
            "",
            table(["board", "int8", "float32"], rate_rows),
            "",
            "- Pi 4: SSDLite MobileNet v2 300x300 (0.8 G multiply-adds) one thread, TFLite 2.5: "
            "168.15 ms int8, 210.46 ms float; times TFLite 2.5 -> 2.18's gain on the same Pi 4 "
            "(EfficientDet-Lite0: int8 344.03 -> 197.75 ms, float 354.84 -> 328.65 ms). "
            "1.8 GHz boards: scaled by clock.",
            "- Pi 5: the Pi 4 rate times Pi 4 / Pi 5 on EfficientDet-Lite0, TFLite 2.18 (int8 "
            "197.75 / 44.20 ms, float 328.65 / 104.01 ms). The A76 has the Armv8.2 dot-product "
            "instructions (SDOT/UDOT); the A72 and A53 do not: int8 gains more than float.",
            "- Zero 2 W: the Pi 3's Cortex-A53 (SSDLite int8 395.84 ms at 1.2 GHz, float 349.29 ms "
            "at 1.4 GHz), scaled by clock to 1.0 GHz, with the Pi 4's TFLite 2.5 -> 2.18 gain "
            "assumed.",
            "",
            "Sources: " + "; ".join(pi["sources"].values()) + ".",
            "",
            "Cross-check on this machine: the same model (time = multiply-adds / rate) with "
            f"the rate of one network predicting another of the same runtime: measured / predicted "
            f"= {checks} (1.00 would be exact). Rates here (G/s): {rates_here}. Expect the "
            "estimate to be off by a factor up to about 2 either way; dlib's scaled rows less "
            "certain still.",
            "",
            "![Pi estimate](benchmarks/pi_estimate.png)",
        ]
    )
