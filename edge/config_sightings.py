"""The ``[sightings]`` section of the configuration (edge.sightings): in a module of its
own so that edge/config.py stays small; edge.config makes it a section like the others."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class SightingsConfig:
    enabled: bool = False  # keep each decided track's face crop, embedding and verdict
    path: Path | None = None  # default: sightings.db beside the gallery
    retention_days: Annotated[float, Field(gt=0, le=3650)] = 30.0
    max_mb: Annotated[float, Field(gt=0, le=1_000_000)] = 200.0

    def file(self, gallery: Path) -> Path:
        """The store's file: ``path``, else ``sightings.db`` beside the gallery."""
        return self.path if self.path is not None else gallery.with_name("sightings.db")
