"""95% intervals for the benchmarks' rates, and the one rule for calling a difference.

- :func:`wilson`: the Wilson score interval of ``k`` successes in ``n`` independent trials
  (sound at 0 and at n, where the normal approximation collapses to a point).
- :func:`by_person`: a rate over trials grouped by person (one person's photos are not
  independent trials): a percentile bootstrap that resamples people, widened to the
  Wilson interval of the same counts where that is wider (a bootstrap of 0 errors is
  [0, 0]: it cannot see the errors it did not meet).
- :func:`compare`: "higher" or "lower" only when two intervals do not overlap, else
  "no measurable difference".

A rate is a plain dict (JSON as is): ``{"k", "n", "rate", "lo", "hi", "how"}``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal
RESAMPLES = 2000
SEED = 0
Rate = dict[str, Any]


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of k successes in n trials ((0, 1) for no trial)."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"{k} successes in {n} trials")
    p, z2 = k / n, z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(k: int, n: int) -> Rate:
    """k of n independent trials, with the Wilson interval."""
    lo, hi = wilson(k, n)
    return {
        "k": int(k),
        "n": int(n),
        "rate": k / n if n else 0.0,
        "lo": lo,
        "hi": hi,
        "how": "Wilson",
    }


def bootstrap(
    successes: Sequence[int] | np.ndarray,
    trials: Sequence[int] | np.ndarray,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of sum(successes) / sum(trials) over resamples
    of the groups (people) drawn with replacement."""
    s, t = np.asarray(successes, float), np.asarray(trials, float)
    if len(t) == 0 or t.sum() == 0:
        return 0.0, 1.0
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(t), (resamples, len(t)))
    drawn_t = t[picks].sum(1)
    rates = s[picks].sum(1) / np.where(drawn_t > 0, drawn_t, np.nan)
    lo, hi = np.nanpercentile(rates, [2.5, 97.5])
    return float(lo), float(hi)


def by_person(successes: Sequence[int] | np.ndarray, trials: Sequence[int] | np.ndarray) -> Rate:
    """A rate over trials grouped by person: the bootstrap by person, widened to Wilson."""
    k, n = int(np.sum(successes)), int(np.sum(trials))
    b_lo, b_hi = bootstrap(successes, trials)
    w_lo, w_hi = wilson(k, n)
    return {
        "k": k,
        "n": n,
        "rate": k / n if n else 0.0,
        "lo": min(b_lo, w_lo),
        "hi": max(b_hi, w_hi),
        "people": len(trials),
        "how": "bootstrap by person, widened to Wilson",
    }


def with_interval(value: float, lo: float, hi: float, k: int, n: int, how: str) -> Rate:
    """A rate whose interval was computed elsewhere (a bootstrap of a whole procedure)."""
    w_lo, w_hi = wilson(k, n)
    return {
        "k": int(k),
        "n": int(n),
        "rate": value,
        "lo": min(lo, w_lo),
        "hi": max(hi, w_hi),
        "how": how,
    }


def compare(a: Rate, b: Rate) -> str:
    """'higher' / 'lower' when a's interval lies wholly above / below b's, else
    'no measurable difference'."""
    if a["lo"] > b["hi"]:
        return "higher"
    if a["hi"] < b["lo"]:
        return "lower"
    return "no measurable difference"


def pct(r: Rate, digits: int = 2) -> str:
    """'99.06% [98.61-99.37]': the rate and its 95% interval, in percent."""
    return f"{100 * r['rate']:.{digits}f}% [{100 * r['lo']:.{digits}f}-{100 * r['hi']:.{digits}f}]"


def counted(r: Rate, digits: int = 2) -> str:
    """'99.06% [98.61-99.37] (2001 of 2020)'."""
    return f"{pct(r, digits)} ({r['k']} of {r['n']})"
