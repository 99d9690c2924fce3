"""bench/intervals.py on hand-computed values."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import intervals


@pytest.mark.parametrize(
    ("k", "n", "lo", "hi"),
    [
        # p = k/n, z = 1.96: centre (p + z²/2n) / (1 + z²/n), half-width
        # z sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n), worked by hand
        (0, 10, 0.0, 0.27753),  # centre = half = 0.13877
        (5, 10, 0.23659, 0.76341),
        (10, 10, 0.72247, 1.0),
        (1, 100, 0.00177, 0.05449),  # centre 0.02813, half 0.02636
        (20, 20, 0.83887, 1.0),  # centre 0.91943, half 0.08057
    ],
)
def test_wilson_matches_hand_computed_values(k: int, n: int, lo: float, hi: float) -> None:
    assert intervals.wilson(k, n) == pytest.approx((lo, hi), abs=1e-5)


def test_wilson_without_trials_says_nothing_and_refuses_impossible_counts() -> None:
    assert intervals.wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        intervals.wilson(3, 2)


def test_rate_is_plain_json_with_its_counts() -> None:
    r = intervals.rate(5, 10)
    assert r["k"] == 5 and r["n"] == 10 and r["rate"] == 0.5 and r["how"] == "Wilson"
    assert (r["lo"], r["hi"]) == pytest.approx((0.23659, 0.76341), abs=1e-5)


def test_bootstrap_resamples_people_not_photos() -> None:
    # two people, one always wrong, one always right: a resample holds both (rate 0.5,
    # p = 1/2), twice the first (0, p = 1/4) or twice the second (1, p = 1/4), so the
    # 2.5th and 97.5th percentiles are 0 and 1
    assert intervals.bootstrap([0, 1], [1, 1]) == (0.0, 1.0)
    # one person: every resample is that person
    assert intervals.bootstrap([3], [4]) == (0.75, 0.75)
    # a person with many photos weighs as much as their photos: 9 of 10 right for one,
    # 0 of 1 for the other; resamples give 0 (1/4), 9/11 (1/2) or 0.9 (1/4)
    assert intervals.bootstrap([9, 0], [10, 1]) == (0.0, 0.9)


def test_by_person_is_never_narrower_than_wilson() -> None:
    # 20 people, one photo each, all right: the bootstrap is [1, 1], Wilson is not
    r = intervals.by_person([1] * 20, [1] * 20)
    assert (r["k"], r["n"], r["rate"], r["people"]) == (20, 20, 1.0, 20)
    assert (r["lo"], r["hi"]) == pytest.approx((0.83887, 1.0), abs=1e-5)
    # one person with 100 photos: Wilson on 100 trials would be far too narrow
    wide = intervals.by_person([0, 50, 50], [50, 50, 50])
    assert wide["lo"] < intervals.wilson(100, 150)[0]


def test_a_difference_needs_intervals_apart() -> None:
    a = {"rate": 0.9, "lo": 0.85, "hi": 0.95}
    assert intervals.compare(a, {"rate": 0.7, "lo": 0.6, "hi": 0.8}) == "higher"
    assert intervals.compare({"rate": 0.7, "lo": 0.6, "hi": 0.8}, a) == "lower"
    assert intervals.compare(a, {"rate": 0.8, "lo": 0.7, "hi": 0.86}) == "no measurable difference"


def test_formats_give_rate_interval_and_counts() -> None:
    r = intervals.rate(5, 10)
    assert intervals.pct(r) == "50.00% [23.66-76.34]"
    assert intervals.counted(r, 1) == "50.0% [23.7-76.3] (5 of 10)"
