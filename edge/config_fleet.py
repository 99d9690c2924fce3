"""The ``[fleet]`` section of the configuration (edge.fleet): devices that share one
gallery through the MQTT broker. In a module of its own so that edge/config.py stays small."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class FleetConfig:
    enabled: bool = False  # off: the gallery is this device's alone, as before
    # the fleet's name: its topics are <topic_prefix>/fleet/<id>/...
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = "home"
    # the shared secret every device of the fleet holds (its first line, 16+ characters);
    # default: the systemd credential `fleet_key` (LoadCredential=fleet_key:...)
    key_file: Path | None = None
