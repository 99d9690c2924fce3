"""Grouping unknown faces (edge/clusters.py): both methods on made-up points whose
answer is known, and the chaining that sets them apart."""

from __future__ import annotations

import numpy as np
import pytest

from edge.clusters import cluster


def blobs(seed: int = 0) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = [0] * 5 + [1] * 4 + [2] * 3
    points = centres[labels] + rng.normal(0, 0.3, (len(labels), 2))
    return points.astype(np.float32), labels


@pytest.mark.parametrize("method", ["average", "graph"])
def test_separated_people_are_found(method: str) -> None:
    points, labels = blobs()
    groups = cluster(points, "euclidean", tau=2.0, method=method)  # type: ignore[arg-type]
    assert [sorted({labels[i] for i in g}) for g in groups] == [[0], [1], [2]]
    assert [len(g) for g in groups] == [5, 4, 3]


def test_a_chain_joins_everyone_in_the_graph_but_not_on_average() -> None:
    # evenly spaced faces 1 apart: every neighbour pair is within tau 1.2
    chain = np.array([[float(i), 0.0] for i in range(8)], np.float32)
    assert len(cluster(chain, "euclidean", 1.2, "graph")) == 1
    groups = cluster(chain, "euclidean", 1.2, "average")
    assert len(groups) > 1 and all(len(g) <= 3 for g in groups)


def test_nothing_merges_beyond_tau_and_empty_input() -> None:
    far = np.array([[0.0, 0.0], [5.0, 0.0]], np.float32)
    assert cluster(far, "euclidean", 1.0) == [[0], [1]]
    assert cluster(np.zeros((0, 2), np.float32), "euclidean", 1.0) == []
    assert cluster(far[:1], "euclidean", 1.0) == [[0]]
