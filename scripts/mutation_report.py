"""The mutation score of the decision-making modules, after ``mutmut run`` (``make mutate``).

Reads mutmut's results (``mutants/**/*.py.meta``), prints one row per module (mutants,
killed, survived, score) and every survivor with its explanation from
``scripts/mutation_survivors.toml`` (a mutant that changes nothing observable, and why).
Writes the figures to ``mutants/mutation-report.json``. Exit 1 when the score is under
``--min-score`` or a survivor is not explained, so the target can gate a change.

A mutant counts as caught when a test failed (killed) or the run timed out (the mutant
made the code loop); as not caught when every test passed (survived) or no test ran it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

CAUGHT = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout",
          152: "timeout", 255: "timeout", 37: "killed"}  # fmt: skip
MISSED = {0: "survived", 5: "no tests", 33: "no tests"}
EXPLAINED = Path(__file__).with_name("mutation_survivors.toml")


def results(root: Path) -> dict[str, dict[str, int | None]]:
    """module file -> mutant name -> exit code."""
    out = {}
    for meta in sorted(root.rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        out[str(meta.relative_to(root)).removesuffix(".meta")] = data["exit_code_by_key"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--min-score", type=float, default=0.90)
    parser.add_argument("--diffs", action="store_true", help="show each survivor's diff")
    args = parser.parse_args()
    found = results(args.mutants)
    if not found:
        print(f"no mutmut results under {args.mutants}: run `make mutate` first")
        return 1
    explained = tomllib.loads(EXPLAINED.read_text()) if EXPLAINED.is_file() else {}
    reasons: dict[str, str] = explained.get("survivors", {})
    rows, survivors, totals = [], [], Counter()
    for module, codes in found.items():
        c = Counter()
        for name, code in codes.items():
            if code in CAUGHT:
                c["caught"] += 1
            elif code in MISSED:
                c["missed"] += 1
                survivors.append((name, MISSED[code]))
            else:
                c["unchecked"] += 1
        totals.update(c)
        judged = c["caught"] + c["missed"]
        rows.append(
            (module, len(codes), c["caught"], c["missed"], c["caught"] / judged if judged else None)
        )
    print(f"{'module':<28} {'mutants':>8} {'caught':>7} {'missed':>7} {'score':>7}")
    for module, n, caught, missed, score in rows:  # score None: none of its mutants was run
        shown = "-" if score is None else f"{score:.1%}"
        print(f"{module:<28} {n:>8} {caught:>7} {missed:>7} {shown:>7}")
    judged = totals["caught"] + totals["missed"]
    score = totals["caught"] / judged if judged else 1.0
    print(f"{'all':<28} {judged:>8} {totals['caught']:>7} {totals['missed']:>7} {score:>7.1%}")
    if totals["unchecked"]:
        print(
            f"({totals['unchecked']} mutants not checked: the run was interrupted, "
            "or named only some mutants)"
        )
    unexplained = [name for name, _ in survivors if name not in reasons]
    print(f"\nsurvivors: {len(survivors)} ({len(unexplained)} not explained)")
    for name, status in survivors:
        print(f"  {name} [{status}]: {reasons.get(name, 'NOT EXPLAINED')}")
        if args.diffs:
            subprocess.run([sys.executable, "-m", "mutmut", "show", name], check=False)
    report = {"score": score, "caught": totals["caught"], "missed": totals["missed"],
              "modules": {m: {"mutants": n, "caught": k, "missed": s, "score": sc}
                          for m, n, k, s, sc in rows},
              "survivors": {name: reasons.get(name) for name, _ in survivors}}  # fmt: skip
    (args.mutants / "mutation-report.json").write_text(json.dumps(report, indent=2) + "\n")
    ok = score >= args.min_score and not unexplained
    print(f"\nscore {score:.1%} (at least {args.min_score:.0%} asked): {'ok' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
