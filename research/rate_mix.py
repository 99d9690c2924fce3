"""Mix the domains' shares of strangers named, not their taus (issue 27, after the tau
per face's report figures; select people only).

The device judges each face by the domains' own taus mixed by the shares of its 20
nearest cohort faces from each domain: tau = sum_d share_d tau_d. That number has no
meaning of its own. What the rule promises is a share of strangers named; for a face of
domain d with probability share_d, the share named at tau t is sum_d share_d F_d(t),
F_d being domain d's share of strangers named at t (its table's taus across its target
rates, read backwards, in logs). The tau that keeps that at the target is the meaningful
mix (``edge.open_set.OpenSetTable.mixed_tau``). F_d rises fast past a domain's tau, so
this mix sits nearer the stricter domain's tau where a face's domain is unclear: the
student's CFP faces, whose nearest cohort faces are often LFW's (research/share_k.py),
and a camera of neither domain.

Variants, each fitted on the calibrate people as the build fits them and measured with
the device's rule otherwise unchanged (``research.bundle_rule.measure``: target 1%, pose
gate 0.5, galleries of 50 people, 10 draws, shares of the 20 nearest cohort faces):

- ``taus``: the taus mixed (the device of 2026-12-07);
- ``rates``: the shares of strangers named mixed.

The rule for the choice, set before the run: the variant whose strangers named sit
deepest inside 0.3-2% over the three bundles and both domains (the largest smallest
log-distance to an edge), as research/share_k.py chose; ``taus`` unless ``rates`` is
deeper.

  .venv/bin/python -m research.rate_mix --bundle build/bundle-sface \\
      --bundle build/bundle --bundle models/edge-face-dlib-cut
"""

from __future__ import annotations

import math
from typing import Any

from model_export.data import data_root
from research.bundle_rule import bundle_args, device_rule, named_line, save
from research.share_k import depth
from research.stranger_photos import inputs, refitted

VARIANTS = ("taus", "rates")


def main() -> None:
    args = bundle_args("rate_mix", __doc__).parse_args()
    root = data_root()
    out: dict[str, Any] = {}
    worst = {v: math.inf for v in VARIANTS}
    for bundle_dir in args.bundle:
        base, sel, faces_ = inputs(bundle_dir, root, 8)
        policy, table = refitted(base, faces_)
        rows = out[str(bundle_dir)] = []
        print(f"\n{bundle_dir}: margin {table['margin']:.2f}", flush=True)
        for variant in VARIANTS:
            for domain in ("lfw", "cfp"):
                r = device_rule(policy, sel, domain, args.repeats, mix=variant)
                rows.append({"mix": variant, "domain": domain, **r})
                worst[variant] = min(worst[variant], depth(r["named"] / r["strangers"]))
                print(f"  {variant:5s} {domain} {named_line(r)}", flush=True)
    chosen = max(VARIANTS, key=lambda v: (worst[v], v == "taus"))
    out["depth"] = worst
    out["chosen"] = chosen
    print("\nsmallest log-distance inside 0.3-2%: "
          + ", ".join(f"{v}: {worst[v]:.3f}" for v in VARIANTS) + f"; chosen: {chosen}")  # fmt: skip
    save(out, args.out)


if __name__ == "__main__":
    main()
