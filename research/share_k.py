"""How many of a face's nearest cohort faces should say its domain (issue 27, after the
tau per face's report figures; select people only).

The device mixes the domains' own taus by the shares of a face's 20 nearest cohort faces
(the k of its scale) from each domain. On report people that named 2.01% (12 of 597) of
CFP's strangers with the student, against 1.24% on select; each domain judged by its own
table (as if the domain were known, research/own_domain.py) named 0.48% on select. A
face's 20 nearest are not all of its domain, so its tau sits between the two domains'.
Fewer nearest faces say the domain more sharply. Variants, each fitted on the calibrate
people as the build fits them and measured with the device's rule otherwise unchanged
(``research.bundle_rule.measure``: target 1%, pose gate 0.5, galleries of 50 people,
10 draws): the shares from the 20 (the device), 10, 5 or 1 nearest cohort faces.

The rule for the choice, set before the run: the variant whose strangers named sit
deepest inside 0.3-2% over the three bundles and both domains (the largest smallest
log-distance to an edge), as research/confidence_bound.py chose; 20 unless another is
deeper.

  .venv/bin/python -m research.share_k --bundle build/bundle-sface \\
      --bundle build/bundle --bundle models/edge-face-dlib-cut
"""

from __future__ import annotations

import math
from typing import Any

from model_export.data import data_root
from research.bundle_rule import bundle_args, device_rule, named_line, save
from research.stranger_photos import inputs, refitted

SHARE_KS = (20, 10, 5, 1)
BAND = (0.003, 0.02)


def depth(rate: float) -> float:
    """How far inside the band a share of strangers named sits (log scale; < 0 outside)."""
    if rate <= 0:
        return -math.inf
    return min(math.log(rate / BAND[0]), math.log(BAND[1] / rate))


def main() -> None:
    args = bundle_args("share_k", __doc__).parse_args()
    root = data_root()
    out: dict[str, Any] = {}
    worst = {k: math.inf for k in SHARE_KS}
    for bundle_dir in args.bundle:
        base, sel, faces_ = inputs(bundle_dir, root, 8)
        policy, table = refitted(base, faces_)
        rows = out[str(bundle_dir)] = []
        print(f"\n{bundle_dir}: margin {table['margin']:.2f}", flush=True)
        for k in SHARE_KS:
            for domain in ("lfw", "cfp"):
                r = device_rule(policy, sel, domain, args.repeats, k)
                rows.append({"share_k": k, "domain": domain, **r})
                worst[k] = min(worst[k], depth(r["named"] / r["strangers"]))
                print(f"  shares of {k:2d} {domain} {named_line(r)}", flush=True)
    chosen = max(SHARE_KS, key=lambda k: (worst[k], k == 20))
    out["depth"] = {str(k): worst[k] for k in SHARE_KS}
    out["chosen"] = chosen
    print("\nsmallest log-distance inside 0.3-2%: "
          + ", ".join(f"{k}: {worst[k]:.3f}" for k in SHARE_KS) + f"; chosen: {chosen}")  # fmt: skip
    save(out, args.out)


if __name__ == "__main__":
    main()
