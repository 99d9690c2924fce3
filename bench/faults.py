"""The fault suite (issue 29, ``make faults``): the faults a Pi at a door meets, each
injected into the real thing, each with a figure.

    .venv/bin/python bench/faults.py [--bundle build/bundle-sface] [--only KEY,KEY]
        [--out bench/results/faults.json] [--doc docs/RELIABILITY.md] [--workdir build/faults]

The real parts: a private mosquitto on a free port (tests/integration/broker.py), a real
paho subscriber at QoS 1, a real SQLite gallery (the Hamilton clip's three people and
seven more), the real bundle, and the real daemon (``edge-face run``) as a subprocess,
watching an MJPEG camera that plays the Hamilton clip in a loop
(bench/faults_lab.py). Each fault (bench/faults_net.py, faults_cam.py, faults_files.py)
is one row: how it is injected, the behaviour expected, events produced (the daemon's
log line of each event) / delivered (unique ``event_id`` at the subscriber) / lost /
duplicated, the time to recover, and every check with its verdict.

Writes ``--out`` (with the machine, versions, command and date) and renders
docs/RELIABILITY.md (bench/reliability_doc.py) from it and from bench/results/fuzz.json
and soak.json when they exist. Exit 1 when a fault did not behave as expected. About 7
minutes on 2 cores; needs root for the disk-full fault (a tmpfs).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faults_cam
import faults_files
import faults_lab
import faults_net
import reliability_doc
import report
from faults_lab import Lab, Row

logger = logging.getLogger("faults")
REPO = faults_lab.REPO
RESULT = REPO / "bench" / "results" / "faults.json"

Fault = Callable[[Lab], Row | tuple[Row, ...]]

#: key -> the fault's function; in the order they run (the row keys they give may differ)
FAULTS: dict[str, Fault] = {
    "broker_restarts": faults_net.broker_restarts,
    "partition": faults_net.partition,
    "power_cut_enroll": faults_files.enroll_power_cut,
    "power_cut_outbox": faults_net.outbox_power_cut,  # also the "stale" row
    "power_cut_outbox_writes": faults_files.outbox_storm,
    "clock_jumps": faults_cam.clock_jumps,
    "disk_full": faults_net.disk_full,
    "camera_stall": faults_cam.stall,
    "camera_garbage": faults_cam.garbage,
    "camera_absent": faults_cam.camera_absent,  # also the "camera_password" row
    "stop_start": faults_cam.stop_start,
    "tampered_model": faults_files.tampered_model,
    "edited_manifest": faults_files.edited_manifest,
    "damaged_gallery": faults_files.damaged_gallery,
}


def run_fault(key: str, fault: Fault, lab: Lab) -> list[Row]:
    logger.info("== %s", key)
    began = time.monotonic()
    try:
        got = fault(lab)
        rows = list(got) if isinstance(got, tuple) else [got]
    except Exception as exc:  # a fault that breaks the harness is a row that failed, not a crash
        logger.exception("%s: the fault's harness failed", key)
        rows = [Row(key, key, "-", "-", error=f"{type(exc).__name__}: {exc}")]
        rows[0].details.append(traceback.format_exc()[-1500:])
    finally:
        faults_lab.kill_leftovers()
    took = time.monotonic() - began
    for row in rows:
        row.seconds = took
        logger.info("== %s: %s (%.0f s)", row.key, "PASS" if row.passed else "FAIL", took)
    return rows


def sigterm_row(stops: list[dict[str, Any]]) -> Row:
    """Every SIGTERM the suite sent to a daemon, judged together (each fault ends with one)."""
    row = Row(
        "sigterm",
        "SIGTERM at the end of every daemon run",
        "each fault above that runs the daemon stops it with SIGTERM (as systemd does); "
        "some stops come right after a fault (a stalled camera, a reconnect)",
        "exit status 0 within 5 s every time (the unit allows 15 s; offline published, "
        "the outbox flushed)",
    )
    stops = [s for s in stops if s["fault"] != "stop-start"]  # that fault judges its own
    bad = [s for s in stops if s["status"] != 0 or s["seconds"] > 5]
    row.produced = None
    row.note(f"{len(stops)} stops: {len(stops) - len(bad)} clean, {len(bad)} not")
    for s in bad:
        row.note(f"{s['fault']} ({s['log']}): exit status {s['status']} after {s['seconds']} s")
    fatal = [s for s in bad if s.get("fatal")]
    if fatal:
        row.finding(
            f"{len(fatal)} of these stops ended in SIGABRT with glibc's 'FATAL: exception not "
            "rethrown' after 'stopped after N frames' was logged: the abort at exit of the "
            "stop-and-start row, met here at the end of an ordinary fault"
        )
    row.check(
        f"every stop clean: {len(stops) - len(bad)} of {len(stops)} exited 0 within 5 s",
        bool(stops) and not bad,
    )
    return row


def versions(bundle: Path) -> dict[str, Any]:
    manifest = json.loads((bundle / "manifest.json").read_text())
    return {
        **report.edge_versions(),
        "paho-mqtt": report.dist_version("paho-mqtt"),
        "mosquitto": faults_lab.mosquitto_version(),
        "bundle": manifest.get("name"),
    }


def table(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        return "-" if value is None else str(value)

    body = [
        [
            r["fault"],
            cell(r["produced"]),
            cell(r["delivered"]),
            cell(r["lost"]),
            cell(r["duplicated"]),
            cell(r["recover_s"]),
            "pass" if r["passed"] else "FAIL",
        ]
        for r in rows
    ]
    return report.render(
        ["fault", "produced", "delivered", "lost", "dup", "recover s", "result"], body
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "build" / "bundle-sface")
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="face data (default $EDGE_FACE_DATA or ../shared/faces)",
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated faults to run (of {', '.join(FAULTS)})"
    )
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument(
        "--doc", default=str(reliability_doc.DOC), help="the page to render ('': none)"
    )
    parser.add_argument("--workdir", type=Path, default=REPO / "build" / "faults")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("edge", "model_export", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    data = (
        args.data or Path(os.environ.get("EDGE_FACE_DATA", REPO.parent / "shared" / "faces"))
    ).resolve()
    if not (data / faults_lab.HAMILTON).is_file():
        sys.exit(f"face data not found at {data}: set EDGE_FACE_DATA (or --data)")
    bundle = args.bundle.resolve()
    if not (bundle / "manifest.json").is_file():
        sys.exit(f"no bundle at {bundle}: make bundle")
    chosen = [k for k in args.only.split(",") if k] or list(FAULTS)
    unknown = set(chosen) - set(FAULTS)
    if unknown:
        sys.exit(f"unknown faults {sorted(unknown)}; known: {', '.join(FAULTS)}")
    started, date = time.monotonic(), datetime.now(UTC).isoformat(timespec="seconds")
    lab = faults_lab.make_lab(args.workdir.resolve(), data, bundle)
    rows: list[Row] = []
    try:
        for key in chosen:
            rows += run_fault(key, FAULTS[key], lab)
    finally:
        faults_lab.kill_leftovers()
    if [s for s in faults_lab.STOPS if s["fault"] != "stop-start"]:
        rows.append(sigterm_row(faults_lab.STOPS))
        logger.info("== sigterm: %s", "PASS" if rows[-1].passed else "FAIL")
    result = {
        "benchmark": "faults",
        "date": date,
        "command": shlex.join([os.path.relpath(sys.executable, REPO), *sys.argv]),
        "duration_s": round(time.monotonic() - started, 1),
        "machine": report.machine(),
        "versions": versions(bundle),
        "settings": {
            "camera": f"Hamilton clip looped as MJPEG, {faults_lab.SERVE_FPS:.0f} fps, {len(lab.jpegs)} frames a loop",
            "gallery_people": len(lab.people),
            "keepalive_s": 5,
            "status_interval_s": 1,
            "cooldowns_s": 0,
            "bundle": str(os.path.relpath(bundle, REPO)),
        },
        "runnable": list(FAULTS),  # what --only takes
        "faults": [r.as_dict() for r in rows],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print()
    print(table(result["faults"]))
    failed = [r for r in result["faults"] if not r["passed"]]
    for r in failed:
        print(f"\nFAIL {r['fault']}:")
        for c in r["checks"]:
            if not c["ok"]:
                print(f"  - {c['check']}")
        if r["error"]:
            print(f"  - {r['error']}")
    print(
        f"\n{len(rows) - len(failed)} of {len(rows)} faults behaved as expected; "
        f"{result['duration_s']:.0f} s; wrote {args.out}"
    )
    if args.doc:
        reliability_doc.render(faults=args.out, doc=Path(args.doc))
        print(f"rendered {args.doc}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
