"""Which cohort makes one open-set table hold in both domains (issue 27)? The bundle's
cohort was one face per calibrate person: 665 LFW faces and 87 CFP faces. A probe's
scale is the mean of its ``k`` nearest cohort faces; for an LFW probe those 50 are the
nearest 8% of LFW's faces, for a CFP probe more than half of CFP's, a much larger mean:
CFP's scores came out smaller for everyone, its strangers' 1% tau lower than LFW's, and
the blended table too loose on CFP and too strict on LFW (most of all for the student).

This fits the table from the calibrate people's faces (``research.face_table``) with each
cohort variant (which faces, which ``k``), the build's simulation
(``impostors.open_set_table``, every cohort face of a gallery's people and of the probe's
own person left out), and runs it with the device's rule on ``select`` people, per
domain (``research.bundle_rule.measure``: target 1%, the pose gate, the gallery's size
counted in embeddings and, apart, in people).

  .venv/bin/python -m research.cohort_faces --bundle build/bundle-sface [--bundle ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edge.decision import Cohort, OpenSetTable
from model_export.data import data_root
from model_export.impostors import open_set_table
from research.bundle_rule import measure, named_line, save
from research.stranger_photos import every_photo, inputs

logger = logging.getLogger("research.cohort_faces")

#: what a gallery's size is counted in when the table is read (research.bundle_rule.KEYS)
KEYS = ("embeddings", "geometric", "people")
#: (name, every near-frontal photo in the cohort?, k)
VARIANTS = [
    ("first photos, k 50", False, 50),
    ("every photo, k 20", True, 20),
    ("every photo, k 10", True, 10),
]


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, action="append", required=True)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--gallery", type=int, action="append", default=[])
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "cohort_faces.json"
    )
    args = ap.parse_args()
    galleries = args.gallery or [50]
    root = data_root()
    out: dict[str, Any] = {}
    for bundle_dir in args.bundle:
        base, sel, faces_ = inputs(bundle_dir, root, 8)
        first, second, domains, extra, owner = faces_
        metric = base.metric
        print(f"\n{bundle_dir}: {len(first)} people, {len(second)} second and "
              f"{len(extra)} further photos")  # fmt: skip
        rows = out[str(bundle_dir)] = []
        for name, every, k in VARIANTS:
            if every:
                cohort, who = every_photo(faces_)
            else:
                cohort = first.astype(np.float16).astype(np.float32)
                who = np.arange(len(first))
            table = open_set_table(first, second, metric, cohort=cohort, cohort_k=k,
                                   domains=domains, more=(extra, owner), cohort_owner=who)  # fmt: skip
            policy = dataclasses.replace(
                base, open_set=OpenSetTable.from_json(table), cohort=Cohort(cohort, k)
            )
            taus = {d: v["tau_at_1pct"] for d, v in table["domains"].items()}  # type: ignore[index]
            print(f"  {name}: {len(cohort)} faces, margin {table['margin']}, tau at 1% by "
                  f"size {table['sizes']}: {taus}")  # fmt: skip
            for gallery in galleries:
                for domain in ("lfw", "cfp"):
                    for key in KEYS:
                        r = measure(policy, sel, domain, gallery, args.repeats, 0.01, 0.5, key)
                        rows.append({"variant": name, "gallery": gallery, "domain": domain,
                                     "cohort_faces": len(cohort), "k": k, **r})  # fmt: skip
                        print(f"    {name:20s} {gallery:3d} {domain} {key:10s} {named_line(r)}",
                              flush=True)  # fmt: skip
    save(out, args.out)


if __name__ == "__main__":
    main()
