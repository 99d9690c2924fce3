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

import argparse
import math
from collections.abc import Callable
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


def deepest_study(args: argparse.Namespace, variants: tuple[Any, ...], default: Any,
                  measure_variant: Callable[..., dict[str, Any]], key: str,
                  label: Callable[[Any], str]) -> None:  # fmt: skip
    """A rule study on select people whose choice is set before the run: for each
    ``--bundle``, its calibrate faces refitted as the build fits them, then every variant
    on both domains (``measure_variant(policy, select table, domain, repeats, variant)``);
    the variant whose strangers named sit deepest inside 0.3-2% over bundles and domains
    is chosen (``default`` on a tie). Rows keep the variant under ``key``; ``label``
    prints it. ``args``: :func:`research.bundle_rule.bundle_args`'."""
    root = data_root()
    out: dict[str, Any] = {}
    worst = {v: math.inf for v in variants}
    for bundle_dir in args.bundle:
        base, sel, faces_ = inputs(bundle_dir, root, 8)
        policy, table = refitted(base, faces_)
        rows = out[str(bundle_dir)] = []
        print(f"\n{bundle_dir}: margin {table['margin']:.2f}", flush=True)
        for v in variants:
            for domain in ("lfw", "cfp"):
                r = measure_variant(policy, sel, domain, args.repeats, v)
                rows.append({key: v, "domain": domain, **r})
                worst[v] = min(worst[v], depth(r["named"] / r["strangers"]))
                print(f"  {label(v)} {domain} {named_line(r)}", flush=True)
    chosen = max(variants, key=lambda v: (worst[v], v == default))
    out["depth"] = {str(v): worst[v] for v in variants}
    out["chosen"] = chosen
    print("\nsmallest log-distance inside 0.3-2%: "
          + ", ".join(f"{v}: {worst[v]:.3f}" for v in variants) + f"; chosen: {chosen}")  # fmt: skip
    save(out, args.out)


def main() -> None:
    ap = bundle_args("share_k", __doc__)
    ap.add_argument("--mix", choices=("taus", "rates"), default="taus",
                    help="the domains' taus mixed (as run, 2026-12-07) or their shares of "
                         "strangers named (the device since research/rate_mix.py)")  # fmt: skip
    args = ap.parse_args()
    deepest_study(args, SHARE_KS, 20,
                  lambda p, t, d, n, k: device_rule(p, t, d, n, k, args.mix), "share_k",
                  lambda k: f"shares of {k:2d}")  # fmt: skip


if __name__ == "__main__":
    main()
