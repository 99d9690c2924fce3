"""``model-export train``'s checkpoints: the model's weights, the optimizer's state, the
weight average and the loop's own state (:class:`TrainState`), after every epoch, so a
second run with the same ``--out`` resumes where the first stopped."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from model_export.averaging import WeightAverage
from model_export.train_options import TrainError

AVERAGE_FILE = "average.npz"
STATE_FILE = "state.json"


@dataclass(frozen=True)
class TrainState:
    """Where the loop stands after an epoch (``epoch`` 0: nothing trained yet)."""

    epoch: int = 0
    seconds: float = 0.0  # training time so far, every resumption's epochs together
    rng: dict[str, Any] | None = None  # the batches' numpy bit generator state
    last_validation: dict[str, Any] = field(default_factory=dict)  # the last epoch's report
    log: tuple[tuple[Any, ...], ...] = ()  # the CSV log's rows, one per epoch

    def after(
        self, seconds: float, rng: dict[str, Any], validation: dict[str, Any], row: list[Any]
    ) -> TrainState:
        """The state after the next epoch, which took ``seconds`` and logged ``row``."""
        return replace(
            self,
            epoch=self.epoch + 1,
            seconds=self.seconds + seconds,
            rng=rng,
            last_validation=validation,
            log=(*self.log, tuple(row)),
        )

    def record(self) -> dict[str, Any]:
        """The JSON form (``state.json``, beside the name of the checkpoint's folder)."""
        return {**asdict(self), "log": [list(row) for row in self.log]}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TrainState:
        return cls(
            epoch=int(record["epoch"]),
            seconds=float(record.get("seconds", 0.0)),
            rng=record.get("rng"),
            last_validation=record.get("last_validation", {}),
            log=tuple(tuple(row) for row in record.get("log", [])),
        )


class Checkpoints:
    """The model's weights, the optimizer's state and the loop's own state, per epoch.
    Each epoch's files go to a folder of their own; ``state.json``, which names that
    folder, is replaced last (atomically), so a kill at any moment leaves a whole
    checkpoint: the new one or the previous one."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def state_file(self) -> Path:
        return self.folder / STATE_FILE

    def save(
        self,
        model: Any,
        optimizer: Any,
        state: TrainState,
        average: WeightAverage | None = None,
    ) -> None:
        name = f"epoch-{state.epoch:04d}"
        target = self.folder / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        model.save_weights(target / "model.weights.h5")
        opt = {f"v{i}": np.asarray(v) for i, v in enumerate(optimizer.variables)}
        np.savez(target / "optimizer.npz", **opt)
        if average is not None:
            average.save(target / AVERAGE_FILE)
        part = self.folder / f"{STATE_FILE}.part"
        part.write_text(json.dumps({**state.record(), "checkpoint": name}, indent=1))
        part.replace(self.state_file)
        for old in self.folder.glob("epoch-*"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def load(
        self, model: Any, optimizer: Any, average: WeightAverage | None = None
    ) -> TrainState | None:
        if not self.state_file.is_file():
            return None
        record: dict[str, Any] = json.loads(self.state_file.read_text())
        target = self.folder / record.pop("checkpoint")
        model.load_weights(target / "model.weights.h5")
        optimizer.build(model.trainable_variables)
        saved = np.load(target / "optimizer.npz")
        if len(saved.files) != len(optimizer.variables):
            raise TrainError(f"{self.folder}: the checkpoint's optimizer does not match this run")
        for i, v in enumerate(optimizer.variables):
            v.assign(saved[f"v{i}"])
        if average is not None:
            average.load(target / AVERAGE_FILE)
        return TrainState.from_record(record)
