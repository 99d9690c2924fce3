"""docs/RELIABILITY.md from the results: bench/results/faults.json (``make faults``,
bench/faults.py), fuzz.json (the fuzz run) and soak.json (``make soak``, bench/soak.py).
Whatever of them exists is rendered; the others are "not run yet". Every figure on the
page comes from those files.

    .venv/bin/python bench/reliability_doc.py [--faults F] [--fuzz F] [--soak F] [--doc F]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "RELIABILITY.md"
FAULTS, FUZZ, SOAK = RESULTS / "faults.json", RESULTS / "fuzz.json", RESULTS / "soak.json"


def harness(settings: dict[str, Any]) -> str:
    """How the faults are run (the figures from the run's ``settings``)."""
    people = settings.get("gallery_people")
    others = (
        f"and {people - 3} others from the photo sets" if isinstance(people, int) else "and others"
    )
    camera = settings.get("camera", "the Hamilton clip looped as MJPEG")
    return f"""\
Everything is real: a private mosquitto started on a free port
(`tests/integration/broker.py`), a paho subscriber at QoS 1 that stamps every message
on arrival, an SQLite gallery enrolled through `edge.enroll` (the Hamilton clip's three
people {others}), the bundle `{settings.get("bundle", "build/bundle-sface")}`, and the
daemon itself, `edge-face run`, as a subprocess configured through its `EDGE_FACE_*`
variables. Its camera is an MJPEG-over-HTTP server (`tests/integration/mjpeg.py`'s
`MjpegCamera`, which can `stall()` and `resume()`) that plays the clip in a loop on one
shared timeline (bench/faults_lab.py; {camera}), so events keep coming: the daemon runs
with `cooldown_s = 0` and `unknown_cooldown_s = 0`, which makes every encounter of the
loop an event (Lin-Manuel Miranda recognized, the other faces unknown), a status every
{settings.get("status_interval_s", "?")} s and a keep-alive of {settings.get("keepalive_s", "?")} s.

**Counting.** *Produced*: the events the daemon made, one `INFO edge.tracker:
recognized|unknown ...` log line each (over every start of the daemon in that fault).
*Delivered*: distinct `event_id`s the subscriber received. *Lost*: produced events with
no delivery (matched by type, person, track and frame count). *Duplicated*: deliveries
beyond the first of an `event_id` (QoS 1 is at least once; consumers drop them by
`event_id`). *Time to recover*: seconds from the end of the fault to the first event
delivered after it, or to the status's `camera_ok` true again, as each row says."""


LIMITS = """\
- `kill -9` kills the process, not the machine: what the kernel has in its page cache
  survives it. The suite shows that every write the daemon, `enroll` and the outbox made
  is one transaction (nothing half-written is ever seen) and that the file is sound after
  a kill; it cannot show that `synchronous = FULL`'s fsyncs reach an SD card before a
  real power loss.
- The clock is moved inside the daemon only, by a `sitecustomize.py` on its
  `PYTHONPATH` that adds an offset read from a file to `time.time()` and
  `time.time_ns()`; `time.monotonic()` is left alone, as an NTP step leaves it. The
  machine's clock is not touched (other processes run on it). libfaketime 0.9.10
  (Debian bookworm) was tried first: with `FAKETIME_DONT_FAKE_MONOTONIC=1`, Python
  3.11's `time.sleep` fails with `EINVAL`, and faking the monotonic clock as well is not
  what a clock step does.
- The network partition is a relay that drops what the daemon sends (a dead link); the
  broker restarts are SIGKILLs of mosquitto with its persistence on, so that the
  subscriber's session survives and only the daemon's delivery is measured.
- The disk-full fault needs root (a tmpfs of its own for the gallery and the outbox)."""


def _load(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _cell(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}{unit}"
    return f"{value}{unit}"


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _machine(result: dict[str, Any]) -> str:
    m = result.get("machine") or {}
    v = result.get("versions") or {}
    parts = [
        f"{m.get('cpu_model', '?')} ({m.get('nproc', '?')} cores)",
        f"Python {m.get('python', '?')}",
    ]
    parts += [f"{k} {val}" for k, val in v.items() if val]
    return ", ".join(parts)


def faults_section(result: dict[str, Any] | None) -> list[str]:
    out = ["## The faults", ""]
    if result is None:
        return [*out, "Not run yet: `make faults` writes bench/results/faults.json.", ""]
    rows = result.get("faults") or []
    passed = sum(bool(r.get("passed")) for r in rows)
    out += [
        f"`{result.get('command', '?')}` of {result.get('date', '?')}, "
        f"{_cell(result.get('duration_s'))} s, on {_machine(result)}. "
        f"**{passed} of {len(rows)} faults behaved as expected.**",
        "",
        "| fault | expected behaviour | events produced | delivered | lost | duplicated | time to recover | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        recover = r.get("recover_s")
        what = r.get("recover_what") or ""
        recover_text = (
            f"{recover:.2f} s ({what})"
            if isinstance(recover, int | float)
            else ("not recovered" if what and r.get("produced") is not None else "-")
        )
        verdict = "pass" if r.get("passed") else "**FAIL**"
        out.append(
            f"| [{_md(r.get('fault'))}](#{r.get('key', '').replace('_', '-')}) | {_md(r.get('expected', ''))} | "
            f"{_cell(r.get('produced'))} | {_cell(r.get('delivered'))} | {_cell(r.get('lost'))} | "
            f"{_cell(r.get('duplicated'))} | {recover_text} | {verdict} |"
        )
    out.append("")
    failed = [r for r in rows if not r.get("passed")]
    if failed:
        out += ["### What did not behave as expected", ""]
        for r in failed:
            bad = [c["check"] for c in r.get("checks", []) if not c.get("ok")]
            if r.get("error"):
                bad.append(str(r["error"]))
            out.append(f"- **{r.get('fault')}**: failed: " + "; ".join(bad) + ".")
            out += [f"  - {f}." for f in r.get("findings") or []]
        out.append("")
    out += ["### Each fault", ""]
    for r in rows:
        out += [
            f'<a id="{r.get("key", "").replace("_", "-")}"></a>',
            f"#### {r.get('fault')}: {'pass' if r.get('passed') else 'FAIL'}",
            "",
            f"- **Injected:** {r.get('injection', '')}",
            f"- **Expected:** {r.get('expected', '')}",
        ]
        if r.get("error"):
            out.append(f"- **Harness error:** {r['error']}")
        checks = r.get("checks") or []
        if checks:
            out.append("- **Checks:**")
            out += [
                f"  - {'✓' if c.get('ok') else '✗ **failed:**'} {c.get('check')}" for c in checks
            ]
        findings = r.get("findings") or []
        if findings:
            out.append("- **What it shows:**")
            out += [f"  - {f}." for f in findings]
        details = [d for d in r.get("details") or [] if len(d) < 600]
        if details:
            out.append("- **Measured:** " + "; ".join(d.rstrip(".") for d in details) + ".")
        out.append(f"- {_cell(r.get('seconds'))} s of the run.")
        out.append("")
    return out


def fuzz_section(result: dict[str, Any] | None) -> list[str]:
    out = ["## Fuzzing", ""]
    if result is None:
        return [*out, "Not run yet (the fuzz run writes bench/results/fuzz.json).", ""]
    targets = result.get("targets") or []
    out += [
        f"`{result.get('command', '?')}` of {result.get('date', '?')}.",
        "",
        "| target | module | iterations | seconds | uncaught exceptions | failures |",
        "|---|---|---|---|---|---|",
    ]
    for t in targets:
        failures = t.get("failures")
        shown = len(failures) if isinstance(failures, list) else failures
        out.append(
            f"| {_md(t.get('name', '?'))} | `{_md(t.get('module', '?'))}` | {_cell(t.get('iterations'))} | "
            f"{_cell(t.get('seconds'))} | {_cell(t.get('uncaught'))} | {_cell(shown)} |"
        )
    total = sum(int(t.get("iterations") or 0) for t in targets)
    uncaught = sum(int(t.get("uncaught") or 0) for t in targets)
    out += [
        "",
        f"{total:,} inputs over {len(targets)} targets; {uncaught} uncaught exceptions.",
        "",
    ]
    listed = [
        (t.get("name"), f)
        for t in targets
        for f in (t.get("failures") if isinstance(t.get("failures"), list) else [])
    ]
    if listed:
        out += ["Failures:", ""] + [f"- {_md(n)}: {_md(f)[:300]}" for n, f in listed[:20]] + [""]
    return out


def _series(samples: list[dict[str, Any]], key: str) -> list[float]:
    return [float(s[key]) for s in samples if isinstance(s.get(key), int | float)]


def soak_section(result: dict[str, Any] | None) -> list[str]:
    out = ["## Soak", ""]
    if result is None:
        return [*out, "Not run yet: `make soak` (an hour) writes bench/results/soak.json.", ""]
    minutes = result.get("duration_s")
    out += [
        f"`{result.get('command', '?')}` of {result.get('date', '?')}: "
        f"{_cell(minutes / 60 if isinstance(minutes, int | float) else None)} minutes on the looped clip, "
        f"{_cell(result.get('broker_restarts'))} broker restarts.",
        "",
    ]
    out += [
        "| events published | received | lost | duplicated | most events waiting in the outbox |",
        "|---|---|---|---|---|",
        f"| {_cell(result.get('events_published'))} | {_cell(result.get('events_received'))} | "
        f"{_cell(result.get('lost'))} | {_cell(result.get('duplicated'))} | {_cell(result.get('max_outbox_rows'))} |",
        "",
    ]
    samples = [s for s in result.get("samples") or [] if isinstance(s, dict)]
    if samples:
        out += [
            f"{len(samples)} samples of the daemon's process:",
            "",
            "| measure | first | last | min | max | median of the first quarter | median of the last quarter |",
            "|---|---|---|---|---|---|---|",
        ]
        for key, label in (
            ("rss_mb", "RSS (MB)"),
            ("threads", "threads"),
            ("fds", "open files"),
            ("outbox_rows", "outbox rows"),
        ):
            values = _series(samples, key)
            if not values:
                continue
            q = max(1, len(values) // 4)
            cells = [
                values[0],
                values[-1],
                min(values),
                max(values),
                statistics.median(values[:q]),
                statistics.median(values[-q:]),
            ]
            out.append(
                f"| {label} | "
                + " | ".join(f"{c:g}" if c == int(c) else f"{c:.1f}" for c in cells)
                + " |"
            )
        out.append("")
    return out


def render(faults: Path = FAULTS, fuzz: Path = FUZZ, soak: Path = SOAK, doc: Path = DOC) -> str:
    f, z, s = _load(faults), _load(fuzz), _load(soak)
    lines = [
        "<!-- generated by bench/reliability_doc.py from bench/results/faults.json, fuzz.json "
        "and soak.json: `make faults` and `make soak` render it again; do not edit by hand -->",
        "# Reliability: faults, fuzzing, soak",
        "",
        "What a Pi at a door meets (issue 29), each fault injected into the real daemon, "
        "broker, gallery and bundle, each with its figures: events produced, delivered, lost "
        "and duplicated, and the time to recover. Then the fuzz run over the input parsers "
        "and the hour-long soak.",
        "",
        "## Reproduce",
        "",
        "```sh",
        "make faults   # bench/faults.py: every fault below, then this page (bench/results/faults.json)",
        "make soak     # bench/soak.py --minutes 60 --restart-every 180, then this page (bench/results/soak.json)",
        "```",
        "",
        f"The fault run below took {_cell(f.get('duration_s') if f else None)} s; "
        "one fault alone: `.venv/bin/python bench/faults.py --only partition` (the keys: "
        + ", ".join(f"`{k}`" for k in (f or {}).get("runnable", []))
        + "). The fuzz run's command is in its section.",
        "",
        "## How the faults are run",
        "",
        harness((f or {}).get("settings") or {}),
        "",
        *faults_section(f),
        *fuzz_section(z),
        *soak_section(s),
        "## Limits of these checks",
        "",
        LIMITS,
        "",
    ]
    text = "\n".join(lines).replace(f"{REPO}/", "")  # no local paths on the page
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render docs/RELIABILITY.md from the results.")
    parser.add_argument("--faults", type=Path, default=FAULTS)
    parser.add_argument("--fuzz", type=Path, default=FUZZ)
    parser.add_argument("--soak", type=Path, default=SOAK)
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    render(args.faults, args.fuzz, args.soak, args.doc)
    print(f"rendered {args.doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
