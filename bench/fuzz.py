"""The fuzz run of the four input parsers (issue 29): each target's hypothesis property
(tests/fuzz_strategies.py, also run briefly by tests/unit/test_fuzz_inputs.py) driven for
a fixed time, counting every call of the parser and every failure.

    .venv/bin/python bench/fuzz.py [--seconds-per-target 120] [--targets image,config,...]
        [--seed N] [--hang-s 60] [--verbose] [--out bench/results/fuzz.json]

Every input is checked and the run goes on past a failure: a failure is either uncaught
(the parser raised something other than its own error type: ImageError, ConfigError,
BundleError, or ValueError for a payload strict JSON cannot hold) or a broken property
(it returned a wrong value: more pixels than MAX_PIXELS, a relative path, a bundle whose
files do not match their sha256, JSON that does not read back to the values given). The
results count the inputs of each kind and keep the first input of each distinct failure
(type, place, message), unshrunk: the unit test shrinks. An input that runs longer than
``--hang-s`` is a hang: the run stops with every thread's traceback on stderr. Prints a
table and writes bench/results/fuzz.json (rewritten after each target). Exit status 1
when anything failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import faulthandler
import json
import os
import random
import re
import resource
import shlex
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import hypothesis
import report
from hypothesis import HealthCheck, Phase, Verbosity, given, settings

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
import fuzz_strategies as fz  # noqa: E402  (tests/ holds the strategies the unit tests use)

RESULT = REPO / "bench" / "results" / "fuzz.json"
BATCH = 200  # examples per hypothesis run; runs repeat, each with its own seed, until time is up


def _where(exc: BaseException) -> str:
    """The innermost frame of the project (edge/, then tests/) the exception went through."""
    frames = traceback.extract_tb(exc.__traceback__)
    for part in ("/edge/", "/tests/"):
        mine = [f for f in frames if part in f.filename]
        if mine:
            f = mine[-1]
            return f"{os.path.relpath(f.filename, REPO)}:{f.lineno} ({f.name})"
    return "?"


def _signature(kind: str, exc: BaseException) -> tuple[str, str, str, str]:
    """One failure however many inputs hit it: its kind, type, place and message (digits
    left out: the same fault at other sizes)."""
    return kind, type(exc).__name__, _where(exc), re.sub(r"\d+", "N", str(exc))[:80]


def fuzz(
    target: fz.Target, seconds: float, workdir: Path, seed: int, hang_s: float, stderr: int
) -> dict[str, Any]:
    """Generate inputs for ``seconds`` and check each; a failing input is counted and the
    first of each kind kept (not shrunk: the unit test shrinks), and the run goes on."""
    target.prepare(workdir)
    calls, slowest = 0, 0.0
    outcomes = {"value": 0, "error": 0, "uncaught": 0, "property": 0, "harness": 0}
    failures: dict[tuple[str, str, str, str], dict[str, Any]] = {}

    def body(example: Any) -> None:
        nonlocal calls, slowest
        calls += 1
        faulthandler.dump_traceback_later(hang_s, exit=True, file=stderr)
        began = time.perf_counter()
        try:
            outcomes[target.check(example, workdir)] += 1
        except Exception as exc:
            kind = "property" if isinstance(exc, AssertionError) else "uncaught"
            outcomes[kind] += 1
            key = _signature(kind, exc)
            if key in failures:
                failures[key]["inputs"] += 1
                return
            failures[key] = {
                "kind": kind,
                "exception": key[1],
                "where": key[2],
                "message": str(exc)[:300],
                "inputs": 1,
                "example": repr(example)[:1500],
            }
            print(f"  {target.name}: {kind} {key[1]} at {key[2]}: {str(exc)[:120]}", flush=True)
        finally:
            faulthandler.cancel_dump_traceback_later()
            slowest = max(slowest, time.perf_counter() - began)

    run = settings(
        max_examples=BATCH,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )(given(target.strategy)(body))
    began, runs = time.monotonic(), 0
    while time.monotonic() - began < seconds:
        runs += 1
        try:
            hypothesis.seed(seed * 1_000_003 + runs)(run)()
        except Exception as exc:  # out of the strategy itself, or hypothesis: a harness bug
            outcomes["harness"] += 1
            key = _signature("harness", exc)
            failures.setdefault(
                key,
                {
                    "kind": "harness",
                    "exception": key[1],
                    "where": key[2],
                    "message": str(exc)[:300],
                    "inputs": 0,
                    "example": "",
                },
            )
            failures[key]["inputs"] += 1
            print(f"  {target.name}: harness {key[1]} at {key[2]}: {str(exc)[:120]}", flush=True)
    return {
        "name": target.name,
        "module": target.module,
        "entry": target.entry,
        "iterations": calls,
        "seconds": round(time.monotonic() - began, 1),
        "uncaught": outcomes["uncaught"],  # inputs that raised anything but the parser's error
        "property_failures": outcomes["property"],  # inputs that gave a wrong value
        "harness_errors": outcomes["harness"],  # runs a bug of the fuzzer's own stopped
        "outcomes": outcomes,  # value: the parser returned one; error: its own clear error
        "failures": list(failures.values()),
        "hypothesis_runs": runs,
        "slowest_example_s": round(slowest, 3),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def table(result: dict[str, Any]) -> str:
    rows = [
        [
            t["name"],
            t["module"],
            str(t["iterations"]),
            f"{t['seconds']:.0f}",
            f"{t['iterations'] / max(t['seconds'], 1e-9):.0f}",
            f"{t['outcomes']['value'] / max(t['iterations'], 1):.0%}",
            str(t["uncaught"]),
            str(t["property_failures"]),
            f"{t['slowest_example_s']:.2f}",
        ]
        for t in result["targets"]
    ]
    header = [
        "target",
        "module",
        "iterations",
        "s",
        "per s",
        "valid",
        "uncaught",
        "property",
        "slowest s",
    ]
    return report.render(header, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds-per-target", type=float, default=120.0)
    parser.add_argument("--targets", default=",".join(fz.BY_NAME), help="comma-separated")
    parser.add_argument("--seed", type=int, default=None, help="default: a random one, recorded")
    parser.add_argument(
        "--hang-s", type=float, default=60.0, help="one input longer than this: a hang"
    )
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--verbose", action="store_true", help="keep the decoders' warnings")
    args = parser.parse_args()
    names = [n for n in args.targets.split(",") if n]
    if unknown := set(names) - set(fz.BY_NAME):
        parser.error(f"--targets: unknown {sorted(unknown)}; known: {', '.join(fz.BY_NAME)}")
    seed = random.randrange(2**31) if args.seed is None else args.seed
    result: dict[str, Any] = {
        "benchmark": "fuzz",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([os.path.relpath(sys.executable, REPO), *sys.argv]),
        "python": sys.version.split()[0],
        "hypothesis": hypothesis.__version__,
        "machine": report.machine(),
        "versions": report.edge_versions() | {"pydantic": report.dist_version("pydantic")},
        "seconds_per_target": args.seconds_per_target,
        "seed": seed,
        "targets": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    stderr = os.dup(2)  # the hang watchdog's; the decoders' warnings on damaged files go away
    if not args.verbose:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    with tempfile.TemporaryDirectory(prefix="edge-face-fuzz-") as tmp:
        for name in names:
            print(f"fuzzing {name} for {args.seconds_per_target:.0f} s", flush=True)
            target = fz.BY_NAME[name]
            workdir = Path(tmp) / name
            result["targets"].append(
                fuzz(target, args.seconds_per_target, workdir, seed, args.hang_s, stderr)
            )
            result["iterations_total"] = sum(t["iterations"] for t in result["targets"])
            result["uncaught_total"] = sum(t["uncaught"] for t in result["targets"])
            for total in ("property_failures", "harness_errors"):
                result[f"{total}_total"] = sum(t[total] for t in result["targets"])
            args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(table(result))
    print(f"wrote {os.path.relpath(args.out.resolve(), REPO)}")
    failed = ("uncaught_total", "property_failures_total", "harness_errors_total")
    return 1 if any(result[k] for k in failed) else 0


if __name__ == "__main__":
    sys.exit(main())
