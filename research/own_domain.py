"""What a tau per domain could give, at best (issue 27, exploratory; select people only).

Each domain's probes are judged with that domain's own table (the build's fit, bound 0.9,
margin counting wrong names, but without the blend: LFW's taus alone, or CFP's continued
past its sizes by its mean gap to LFW), as if the device knew which domain a face came
from. The device does not: a rule built on this would pick or mix the taus by the domain
of the probe's nearest cohort faces. Nothing is chosen from this.

  .venv/bin/python -m research.own_domain --bundle models/edge-face-dlib-cut [--bundle ...]
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from model_export import impostors
from model_export.data import data_root
from research.bundle_rule import bundle_args, device_rule, named_line
from research.stranger_photos import inputs, refitted

Rows = dict[int, list[float]]


def own(domain: str) -> Callable[[Rows, Rows], Rows]:
    """A blend that keeps one domain's taus: LFW's (the reference), or CFP's continued
    past its sizes by its mean gap to LFW (as ``impostors.blend`` continues it)."""

    def keep(reference: Rows, other: Rows) -> Rows:
        if domain == "lfw":
            return reference
        common = [n for n in other if n in reference]
        shared = [n for n in common if n >= 10] or [max(common)]
        gap = np.array([np.subtract(other[n], reference[n]) for n in shared]).mean(axis=0)
        return {n: other.get(n, list(np.add(row, gap))) for n, row in reference.items()}

    return keep


def main() -> None:
    args = bundle_args(None, __doc__, repeats=False).parse_args()
    root = data_root()
    for bundle_dir in args.bundle:
        base, sel, faces_ = inputs(bundle_dir, root, 8)
        saved = impostors.blend
        for domain in ("lfw", "cfp"):
            impostors.blend = own(domain)
            try:
                policy, _ = refitted(base, faces_)
            finally:
                impostors.blend = saved
            r = device_rule(policy, sel, domain, 10)
            print(f"{bundle_dir} {domain}'s own table: {named_line(r)}", flush=True)


if __name__ == "__main__":
    main()
