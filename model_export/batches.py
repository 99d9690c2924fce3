"""One epoch of ``model-export train``'s batches: P people x K photos, augmented (and
some mixed, ``--mixup``), with the teacher's fixed targets, or its outputs on the faces as
they are when it runs in the loop; built in a thread while the previous batch trains."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from model_export.augment import Augment
from model_export.train_data import Prepared
from model_export.train_options import TrainOptions


def batches(
    data: Prepared, opts: TrainOptions, rng: np.random.Generator, augment: Augment
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of (faces uint8 BxSxSx3, labels, teacher targets BxD or Bx0)."""
    by_person: dict[int, list[int]] = {}
    for i, label in enumerate(data.labels):
        by_person.setdefault(int(label), []).append(i)
    people = np.array(sorted(by_person))
    rng.shuffle(people)
    p, k = opts.people_per_batch, opts.images_per_person
    dim = data.teacher.shape[1] if data.teacher is not None else 0
    for start in range(0, len(people) - p + 1, p):
        rows: list[int] = []
        for person in people[start : start + p]:
            photos = np.array(by_person[int(person)])
            order = rng.permutation(photos)
            rows += [int(order[j % len(order)]) for j in range(k)]
        faces = np.empty((len(rows), augment.size, augment.size, 3), np.uint8)
        targets = np.zeros((len(rows), dim), np.float32)
        for j, row in enumerate(rows):
            faces[j], flipped = augment(data.wide[row], rng)
            if data.teacher is not None and data.teacher_flip is not None:
                targets[j] = (data.teacher_flip if flipped else data.teacher)[row]
        labels = data.labels[rows]  # a new array (indexed by a list): marked below
        if opts.mixup:
            labels[mix(faces, labels, opts.mixup, rng)] = NO_IDENTITY
        yield faces, labels, targets


NO_IDENTITY = -1  # the label of a mixed face: left out of the triplet loss (losses.mine)


def mix(
    faces: np.ndarray, labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Replace a ``fraction`` of the faces, in place, by a blend of that face and another
    person's (weight 0.3-0.7): faces no one has, for a teacher in the loop to label.
    Returns the mask of the faces mixed (they belong to no one of ``labels``)."""
    n = len(faces)
    source = faces.copy()  # blends of the faces as they came, never of earlier blends
    mixed = np.zeros(n, bool)
    for j in np.flatnonzero(rng.random(n) < fraction):
        others = np.flatnonzero(labels != labels[j])
        if not len(others):
            continue
        k = int(rng.choice(others))
        w = rng.uniform(0.3, 0.7)
        faces[j] = np.rint(w * source[j] + (1 - w) * source[k]).astype(np.uint8)
        mixed[j] = True
    return mixed


def with_teacher(it: Iterator[Any], runner: Any) -> Iterator[Any]:
    """Each batch with the teacher's outputs on its faces as they are (augmented, mixed):
    (faces, labels, teacher embeddings, *teacher maps)."""
    for faces, labels, _ in it:
        embedding, *maps = runner(faces)
        yield (faces, labels, embedding, *maps)


def prefetch(it: Iterator[Any], depth: int = 3) -> Iterator[Any]:
    """Build the next batches in a thread while the current one trains."""
    q: queue.Queue[Any] = queue.Queue(depth)
    done = object()
    failed: list[BaseException] = []

    def work() -> None:
        try:
            for item in it:
                q.put(item)
        except BaseException as exc:  # handed to the training thread, raised there
            failed.append(exc)
        finally:
            q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while (item := q.get()) is not done:
        yield item
    if failed:
        raise failed[0]
