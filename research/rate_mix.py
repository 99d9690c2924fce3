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

from research.bundle_rule import bundle_args, device_rule
from research.share_k import deepest_study

VARIANTS = ("taus", "rates")


def main() -> None:
    deepest_study(bundle_args("rate_mix", __doc__).parse_args(), VARIANTS, "taus",
                  lambda p, t, d, n, mix: device_rule(p, t, d, n, mix=mix), "mix",
                  lambda v: f"{v:5s}")  # fmt: skip


if __name__ == "__main__":
    main()
