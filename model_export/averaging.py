"""An exponential moving average of a model's weights (``model-export train --average``).

Late in a run the weights still move from epoch to epoch, and so does held-out accuracy
(L3 moved within 95.8-97.2% over its last 20 epochs): the last epoch is one draw of that
noise. The average over the last few epochs is a smoother model, and the one written.

Every weight is averaged, the batch-norm statistics too, so the average's statistics
belong to its own weights' epochs. The decay is set from a horizon in epochs and is
debiased early on (``min(decay, (1 + t) / (10 + t))`` at step t), so a short run averages
what it has rather than its starting weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


def decay_for(epochs: float, steps_per_epoch: int) -> float:
    """The decay whose average spans about ``epochs`` epochs (its 1/e horizon)."""
    if epochs <= 0:
        raise ValueError(f"an average over {epochs} epochs: give a positive number")
    return 1.0 - 1.0 / max(epochs * steps_per_epoch, 1.0)


class WeightAverage:
    """Shadow copies of the float ``model.weights``, updated after each step by ``update``."""

    def __init__(self, model: Any, decay: float) -> None:
        import tensorflow as tf

        self.decay = float(decay)
        # float weights only (a layer's random-seed state is not a weight to average)
        self.weights = [w for w in model.weights if "float" in str(w.dtype)]
        self.shadow = [tf.Variable(np.asarray(w.numpy()), trainable=False) for w in self.weights]
        self.count = tf.Variable(0, dtype=tf.int64, trainable=False)

    def update(self) -> None:
        """One step of the average (inside the training step's ``tf.function``)."""
        import tensorflow as tf

        t = tf.cast(self.count, tf.float32)
        d = tf.minimum(self.decay, (1.0 + t) / (10.0 + t))
        for s, w in zip(self.shadow, self.weights, strict=True):
            s.assign(d * s + (1.0 - d) * tf.cast(w, s.dtype))
        self.count.assign_add(1)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its own after."""
        own = [np.asarray(w.numpy()) for w in self.weights]
        for w, s in zip(self.weights, self.shadow, strict=True):
            w.assign(s.numpy())
        try:
            yield
        finally:
            for w, value in zip(self.weights, own, strict=True):
                w.assign(value)

    def save(self, path: Path) -> None:
        arrays = {f"w{i}": s.numpy() for i, s in enumerate(self.shadow)}
        np.savez(path, count=np.int64(self.count.numpy()), **arrays)

    def load(self, path: Path) -> None:
        saved = np.load(path)
        if len(saved.files) != len(self.shadow) + 1:
            raise ValueError(f"{path}: the saved average does not match this model")
        for i, s in enumerate(self.shadow):
            s.assign(saved[f"w{i}"])
        self.count.assign(int(saved["count"]))
