"""Does a bundle's default rule hold on galleries shaped as ``make bench``'s, before the
bench measures it on report people? ``bench/openset.py``'s own code (its plans from
``bench/report_data.py``, its searches, its rule and pose gate) run on ``select`` people:
the most-photographed LFW select people enrolled with their first 3 photos, one photo
each of the other LFW select people as strangers; CFP select people half enrolled, half
strangers with all their frontal photos. Until 2026-12-07 no LFW select or calibrate
person had enough photos for this shape (research/OPENSET.md); View 2's folds 4-5 gave
them.

Faces come from the ``research.face_table`` tables (one detection per photo: a photo
counts as one face when found, so no enrollment photo is refused for a second face,
unlike the bench).

  .venv/bin/python -m research.bench_shaped --bundle build/bundle-sface [--bundle ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from edge.bundle import load_bundle
from model_export import splits
from model_export.data import data_root
from research.face_table import build_table

BENCH = Path(__file__).resolve().parent.parent / "bench"
logger = logging.getLogger("research.bench_shaped")


def pct(r: dict[str, Any]) -> str:
    """A rate with its interval (the bench's: bootstrap by person, widened to Wilson)."""
    return f"{100 * r['rate']:5.2f}% [{100 * r['lo']:.2f}-{100 * r['hi']:.2f}] ({r['k']}/{r['n']})"


def run_of(table: Path, root: Path) -> dict[str, Any]:
    """A bench worker's run (paths, largest face, face count, yaw) from a face table."""
    t = np.load(table)
    found = t["found"].astype(bool)
    vectors = t["vector"].astype(np.float64)
    vectors[~found] = np.nan
    return {
        "paths": [root / p for p in t["path"]],
        "largest": vectors,
        "n_faces": found.astype(int),
        "largest_yaw": np.where(found, t["yaw"], np.nan),
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, action="append", required=True)
    ap.add_argument("--people", type=int, default=80, help="LFW people enrolled")
    ap.add_argument("--cfp-people", type=int, default=25)
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "bench_shaped.json"
    )
    args = ap.parse_args()
    sys.path.insert(0, str(BENCH))  # the bench's modules import each other flat
    import openset
    import report_data

    root, s = data_root(), splits.load()
    lfw = s.names("select", "lfw")
    cfp = s.names("select", "cfp")
    plans = [
        report_data.lfw_plan(root, lfw, args.people, len(lfw)),
        report_data.cfp_plan(root, cfp, args.cfp_people, len(cfp)),
    ]
    out: dict[str, Any] = {}
    for bundle_dir in args.bundle:
        bundle = load_bundle(bundle_dir)
        run = run_of(build_table(bundle_dir, "select", root), root)
        system = SimpleNamespace(
            kind="edge", info={"bundle": str(bundle_dir)}, threshold=bundle.manifest.tau.verify
        )
        rules = openset.rules_for(system)
        rows = out[str(bundle_dir)] = []
        print(f"\n{bundle_dir}  {bundle.raw['encoder_id']}")
        for plan in plans:
            f = openset.figures(run, plan, bundle.manifest.encoder.metric, rules)
            r = f["rules"]["default rule"]
            fp, di, wr = r["fpir"], r["dir"], r["wrong"]
            rows.append({"domain": plan.domain, "about": plan.about, "enrolled": f["enrolled_people"],
                         "embeddings": f["embeddings"], "tau": r["tau"], "margin": r["margin"],
                         "fpir": fp, "dir": di, "wrong": wr})  # fmt: skip
            print(f"  {plan.domain}: {f['enrolled_people']} enrolled ({f['embeddings']} embeddings), "
                  f"tau {r['tau']:.3f}: strangers named {pct(fp)}, named correctly {pct(di)}, "
                  f"wrong {pct(wr)}", flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
