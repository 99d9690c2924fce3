"""Grouping unknown faces that are the same person (``edge-face sightings cluster``).

Two ways, both stopped at the bundle's one-to-one threshold ``tau.verify`` (a plain
distance: "the same person iff d <= tau"):

- ``average``: agglomerative clustering with average linkage: the two groups whose mean
  pairwise distance is smallest merge, while that mean is within ``tau``. One close pair
  of faces cannot join two people: their groups must be near on average.
- ``graph``: the connected components of the graph with an edge wherever two faces are
  within ``tau``. Simple, but one chain of close pairs joins everyone on it.

``bench/clusters.py`` measures both on real photos of many people (purity, and how many
groups a person is split into); the CLI uses ``average`` (docs/RECOGNITION.md says why).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from edge.decision import distance

Method = Literal["average", "graph"]


def cluster(
    vectors: NDArray[np.floating], metric: str, tau: float, method: Method = "average"
) -> list[list[int]]:
    """Groups of row indices of ``vectors``, largest first (ties: by first index)."""
    n = len(vectors)
    if n == 0:
        return []
    d = distance(vectors, vectors, metric).astype(np.float64)
    groups = _average(d, tau) if method == "average" else _graph(d, tau)
    return sorted((sorted(g) for g in groups), key=lambda g: (-len(g), g[0]))


def _graph(d: NDArray[np.float64], tau: float) -> list[list[int]]:
    n = len(d)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(d <= tau, k=1)), strict=True):
        a, b = root(int(i)), root(int(j))
        if a != b:
            parent[max(a, b)] = min(a, b)
    found: dict[int, list[int]] = {}
    for i in range(n):
        found.setdefault(root(i), []).append(i)
    return list(found.values())


def _average(d: NDArray[np.float64], tau: float) -> list[list[int]]:
    """Average linkage with the Lance-Williams update: merging a and b, a group k's mean
    distance to the new group is (|a| d(a,k) + |b| d(b,k)) / (|a| + |b|)."""
    n = len(d)
    link = d.copy()
    np.fill_diagonal(link, np.inf)
    members: list[list[int] | None] = [[i] for i in range(n)]
    sizes = np.ones(n)
    alive = np.ones(n, bool)
    while alive.sum() > 1:
        flat = int(np.argmin(link))
        a, b = divmod(flat, n)
        if link[a, b] > tau:
            break
        merged = (sizes[a] * link[a] + sizes[b] * link[b]) / (sizes[a] + sizes[b])
        link[a], link[:, a] = merged, merged
        link[a, a] = np.inf
        link[b], link[:, b] = np.inf, np.inf
        alive[b] = False
        sizes[a] += sizes[b]
        members[a] = (members[a] or []) + (members[b] or [])
        members[b] = None
    return [m for m in members if m is not None]
