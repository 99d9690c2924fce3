"""A tau per domain, mixed for each probe by the domains of its nearest cohort faces
(issue 27, after the bound-0.9 rule's report figures; select people only).

The bound-0.9 rule (one blended tau for every probe) named 2.51% of CFP's report
strangers with the student and 0.29% of LFW's with SFace: the blend is too loose for
one domain and too strict for the other. research/own_domain.py measured each domain
judged by its own table, as if the device knew the domain: every bundle well inside
0.3-2%. The device does not know it; it has the cohort's faces, each labelled with its
domain by the build, and a probe's ``k`` (20) nearest cohort faces, which it already
finds for its scale. Variants, each fitted on the calibrate people's faces as the build
fits them and measured on select people with the device's rule
(``research.bundle_rule.measure``: target 1%, pose gate 0.5, galleries of 50 people,
the gallery read at sqrt(embeddings x people)):

- ``blend``: the bound-0.9 rule, one tau for every probe (the cohort without labels);
- ``mix``: each probe's tau the domains' own taus weighed by the shares of its nearest
  cohort faces from each domain (``edge.decision.Policy.rule``).

The choice: ``mix`` if it keeps every bundle's strangers named within 0.3-2% in both
domains on select, else ``blend``.

  .venv/bin/python -m research.domain_tau --bundle build/bundle-sface [--bundle ...]
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from edge.decision import Cohort
from model_export.data import data_root
from research.bundle_rule import bundle_args, device_rule, named_line, save
from research.stranger_photos import inputs, refitted

logger = logging.getLogger("research.domain_tau")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = bundle_args("domain_tau", __doc__).parse_args()
    root = data_root()
    out: dict[str, Any] = {}
    for bundle_dir in args.bundle:
        base, sel, faces_ = inputs(bundle_dir, root, 8)
        mix, table = refitted(base, faces_)
        assert mix.cohort is not None and mix.cohort.label is not None, "no domains to mix"
        blend = dataclasses.replace(mix, cohort=Cohort(mix.cohort.vectors, mix.cohort.k))
        rows = out[str(bundle_dir)] = []
        print(f"\n{bundle_dir}: {len(faces_[0])} people, margin {table['margin']:.2f}", flush=True)
        for name, policy in (("blend", blend), ("mix", mix)):
            for domain in ("lfw", "cfp"):
                r = device_rule(policy, sel, domain, args.repeats)
                rows.append({"variant": name, "domain": domain, "margin": table["margin"], **r})
                print(f"  {name:6s} {domain} {named_line(r)}", flush=True)
    save(out, args.out)


if __name__ == "__main__":
    main()
