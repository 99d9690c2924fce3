"""What a benchmark records beside its figures (machine, versions), and the printed table."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "arch": platform.machine(),
        "system": platform.platform(),
        "python": platform.python_version(),
    }


def dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def edge_versions() -> dict[str, Any]:
    import cv2

    return {
        "edge-face": dist_version("edge-face"),
        "ai-edge-litert": dist_version("ai-edge-litert"),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
    }


def render(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def _pm(report: dict[str, Any]) -> str:
    return f"{100 * report['accuracy_mean']:.2f} ± {100 * report['accuracy_std']:.2f}"


def accuracy_table(rows: list[tuple[str, dict[str, Any], str, str]]) -> str:
    """rows: (name, verification_report, accuracy at 0.6 or '-', photos without a face)."""
    header = [
        "pipeline",
        "acc % (k-fold)",
        "tau",
        "TAR@FAR1e-3",
        "AUC",
        "acc@0.6",
        "no face",
        "pairs",
    ]
    body = [
        [
            name,
            _pm(r),
            f"{r['tau']:.3f}",
            f"{100 * r['tar_at_far']:.2f}%",
            f"{r['auc']:.4f}",
            at06,
            no_face,
            str(r["pairs"]),
        ]
        for name, r, at06, no_face in rows
    ]
    return render(header, body)


def _ms(s: dict[str, float]) -> str:
    return f"{s['median']:.2f} [{s['min']:.2f}-{s['max']:.2f}]"


def _x(s: dict[str, float]) -> str:
    return f"{s['median']:.1f}x [{s['min']:.1f}-{s['max']:.1f}]"


def speed_table(speed: dict[str, Any], mirror: bool) -> str:
    """Median of the round medians, [min-max of the round medians], one thread each."""
    ms, derived, ratio = speed["ms"], speed["ms_derived"], speed["ratio_dlib_over_edge"]
    vector = "vector (int8 x2, mirror)" if mirror else "vector (int8)"
    rows = [
        [
            "detect / photo",
            "HOG (upsample 1)",
            _ms(ms["dlib_detect_hog"]),
            "YuNet",
            _ms(ms["edge_detect_yunet"]),
            _x(ratio["detect"]),
        ],
        [
            "landmarks (+ chip)",
            "5-point landmarks",
            _ms(ms["dlib_landmarks_5pt"]),
            "align (lmk + chip)",
            _ms(ms["edge_align"]),
            "",
        ],
        [
            "encode / face",
            "face_encodings",
            _ms(ms["dlib_face_encodings"]),
            vector,
            _ms(ms["edge_vector"]),
            _x(ratio["encode"]),
        ],
        ["", "", "", "one int8 pass", _ms(ms["edge_int8_pass"]), ""],
        [
            "encode, CPU time",
            "face_encodings",
            _ms(ms["dlib_face_encodings_cpu"]),
            vector,
            _ms(ms["edge_vector_cpu"]),
            _x(ratio["encode_cpu"]),
        ],
        [
            "box -> vector / face",
            "face_encodings",
            _ms(ms["dlib_face_encodings"]),
            "align + vector",
            _ms(derived["edge_box_to_vector"]),
            _x(ratio["box_to_vector"]),
        ],
        [
            "photo -> vector",
            "HOG + encodings",
            _ms(derived["dlib_photo_to_vector"]),
            "YuNet + align + vector",
            _ms(derived["edge_photo_to_vector"]),
            _x(ratio["photo_to_vector"]),
        ],
    ]
    header = ["step", "dlib", "ms", "edge-face", "ms", "dlib / edge"]
    caption = (
        "ms per call (wall time unless marked CPU), one thread each: "
        "median of the round medians [min-max of the round medians]"
    )
    return caption + "\n" + render(header, rows)


def rounded(value: Any, digits: int = 5) -> Any:
    """The result with every float rounded (readable JSON; timings stay well below 1 us)."""
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    if isinstance(value, float | np.floating):
        return round(float(value), digits)
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_result(path: Path, result: dict[str, Any]) -> None:
    """A benchmark's JSON: the date it ran, then its figures (the folder made if need be)."""
    import datetime as dt
    import json

    stamped = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **result}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stamped, indent=1))
    print(f"wrote {path}")
