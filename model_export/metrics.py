"""Verification metrics on distances (smaller = more alike): the LFW k-fold protocol,
TAR at a fixed FAR, ROC and AUC. Plain numpy, shared by ``evaluate`` and the benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]


def accuracy_at(distances: Floats, same: Bools, tau: float) -> float:
    return float(np.mean((distances <= tau) == same))


def best_threshold(distances: Floats, same: Bools) -> float:
    """The tau that maximises accuracy (a midpoint between neighbouring distances)."""
    d = np.sort(np.unique(distances))
    candidates = np.concatenate([[d[0] - 1e-6], (d[:-1] + d[1:]) / 2, [d[-1] + 1e-6]])
    accept = distances[None, :] <= candidates[:, None]
    acc = (accept == same[None, :]).mean(axis=1)
    return float(candidates[int(np.argmax(acc))])


@dataclass(frozen=True, slots=True)
class KFold:
    accuracy_mean: float
    accuracy_std: float
    fold_accuracies: list[float]
    fold_thresholds: list[float]


def kfold_accuracy(distances: Floats, same: Bools, folds: NDArray[np.int_]) -> KFold:
    """The LFW protocol: per fold, tau chosen on the other folds, accuracy on this one.
    (With a single fold there are no other folds: tau is then chosen on that fold.)"""
    accs, taus = [], []
    ks = np.unique(folds)
    for k in ks:
        test = folds == k
        train = ~test if len(ks) > 1 else test
        tau = best_threshold(distances[train], same[train])
        taus.append(tau)
        accs.append(accuracy_at(distances[test], same[test], tau))
    return KFold(float(np.mean(accs)), float(np.std(accs)), accs, taus)


def threshold_at_far(impostor: Floats, far: float) -> float:
    """The largest tau that accepts at most a fraction ``far`` of the impostor distances."""
    d = np.sort(impostor)
    allowed = int(np.floor(far * len(d)))  # impostors that may fall at or below tau
    if allowed >= len(d):
        return float(d[-1])
    upper = d[allowed]  # tau must stay below this one
    return float(np.nextafter(upper, -np.inf))


def tar_at_far(distances: Floats, same: Bools, far: float = 1e-3) -> tuple[float, float]:
    """(TAR, tau) at the given false-accept rate."""
    tau = threshold_at_far(distances[~same], far)
    return float(np.mean(distances[same] <= tau)), tau


def roc(distances: Floats, same: Bools) -> tuple[Floats, Floats]:
    """(FAR, TAR) over every threshold, for plots."""
    order = np.argsort(distances, kind="stable")
    s = same[order]
    tar = np.concatenate([[0.0], np.cumsum(s) / max(1, s.sum())])
    far = np.concatenate([[0.0], np.cumsum(~s) / max(1, (~s).sum())])
    return far, tar


def auc(distances: Floats, same: Bools) -> float:
    """Area under the ROC: the chance that a genuine pair is closer than an impostor pair
    (Mann-Whitney U on average ranks, ties counted half)."""
    gen, imp = distances[same], distances[~same]
    _, inverse, counts = np.unique(
        np.concatenate([gen, imp]), return_inverse=True, return_counts=True
    )
    average_rank = (np.cumsum(counts) - counts + (counts + 1) / 2)[inverse]
    u = average_rank[: len(gen)].sum() - len(gen) * (len(gen) + 1) / 2  # genuine above impostor
    return float(1.0 - u / (len(gen) * len(imp)))


def verification_report(
    distances: Floats, same: Bools, folds: NDArray[np.int_]
) -> dict[str, float]:
    """The figures ``model-export evaluate`` reports for a set of scored pairs."""
    k = kfold_accuracy(distances, same, folds)
    tar, tau_far = tar_at_far(distances, same, 1e-3)
    return {
        "accuracy_mean": k.accuracy_mean,
        "accuracy_std": k.accuracy_std,
        "tau": best_threshold(distances, same),
        "tar_at_far": tar,
        "tau_at_far": tau_far,
        "auc": auc(distances, same),
        "pairs": len(distances),
    }
