"""Enrolling from sightings and marking them as not a person (``edge-face enroll NAME
--sighting ID... | --cluster ID``, ``edge-face not NAME --sighting ID``).

A sighting keeps the embedding the daemon made of the deciding face and that face's
quality, so enrolling from it applies the photo gates (``decision.enrollment_problem``)
and the guard against another enrolled person's face (``enroll.looks_like``) to it, and
stores the embedding: no photo is re-read and nothing leaves the device.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge.clusters import cluster
from edge.decision import Policy, enrollment_problem
from edge.enroll import EnrollReport, Outcome, store
from edge.gallery import Gallery, Sample
from edge.sightings import SightingsError, SightingStore, Stored


def clusters_of(rows: Sequence[Stored], metric: str, tau: float) -> dict[int, list[Stored]]:
    """Unknown sightings grouped (``edge.clusters``, average linkage at ``tau``), each
    group keyed by its smallest sighting id (stable while its members are kept)."""
    with_vectors = [(r, r.vector) for r in rows if r.vector is not None]
    if not with_vectors:
        return {}
    vectors = np.stack([v for _, v in with_vectors])
    groups = cluster(vectors, metric, tau, "average")
    found = {}
    for group in groups:
        members = sorted((with_vectors[i][0] for i in group), key=lambda r: r.id)
        found[members[0].id] = members
    return found


def cluster_members(
    sightings: SightingStore, cluster_id: int, metric: str, tau: float
) -> list[Stored]:
    """The sightings of cluster ``cluster_id`` (as ``edge-face sightings cluster`` lists)."""
    groups = clusters_of(sightings.list(unknown=True, full=True), metric, tau)
    if cluster_id not in groups:
        raise SightingsError(
            f"no cluster {cluster_id} among the unknown sightings: `edge-face sightings "
            "cluster` lists them (a cluster is named by its first sighting's id)"
        )
    return groups[cluster_id]


def enroll_sightings(
    gallery: Gallery, name: str, rows: Sequence[Stored], policy: Policy | None
) -> EnrollReport:
    """Enroll ``name`` from stored sightings (gates and guard as for photos)."""
    taken: list[tuple[Sample, int]] = []
    outcomes: list[Outcome] = []
    for row in rows:
        source = f"sighting {row.id}"
        problem = enrollment_problem(row.quality)
        if row.vector is None or problem is not None:
            outcomes.append(Outcome(source, False, problem or "no embedding stored"))
            continue
        sample = Sample(row.vector, row.encoder_id, source, row.quality.sharpness)
        taken.append((sample, len(outcomes)))
        outcomes.append(Outcome(source, True, quality=round(row.quality.sharpness, 1)))
    return EnrollReport(name, outcomes, store(gallery, name, taken, outcomes, policy))


def mark_not(gallery: Gallery, name: str, rows: Sequence[Stored]) -> int:
    """Store each sighting's face as an impostor face of ``name``; returns how many."""
    for row in rows:
        if row.vector is None:
            raise SightingsError(f"sighting {row.id} has no embedding stored")
        gallery.add_impostor(name, row.vector, row.encoder_id, f"sighting {row.id}")
    return len(rows)
