"""What every ``edge-face`` verb shares: the config, bundle, engine and gallery, loaded
on first use, and the one place where library errors become messages and exit codes
(0 ok, 1 failure, 2 usage or configuration error)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from edge.config import Config, load_config
from edge.errors import ConfigError, EdgeError
from edge.logs import setup_logging

if TYPE_CHECKING:
    from edge.bundle import Bundle
    from edge.engine import FaceEngine
    from edge.gallery import Gallery

EXIT_FAILURE = 1
EXIT_USAGE = 2


class State:
    """What the group's options leave for the verbs: the config, loaded on first use."""

    def __init__(self, config_path: Path | None, log_level: str | None) -> None:
        self.config_path = config_path
        self.log_level = log_level
        self._config: Config | None = None

    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.config_path, os.environ)
            except ConfigError as exc:
                config_error(exc)
            setup_logging(self.log_level or self._config.logging.level)
        return self._config

    def bundle(self) -> Bundle:
        from edge.bundle import load_bundle

        if not hasattr(self, "_bundle"):
            model = self.config().model
            self._bundle = guarded(lambda: load_bundle(model.bundle, public_key=model.public_key))
        return self._bundle

    def engine(self) -> FaceEngine:
        from edge.engine import load_engine

        return guarded(lambda: load_engine(self.bundle()))

    def gallery(self) -> Gallery:
        from edge.gallery import Gallery

        return guarded(lambda: Gallery(self.config().gallery.path))


def guarded(make: Any) -> Any:
    """Run a library call; its EdgeError becomes a message and exit code 1."""
    try:
        return make()
    except EdgeError as exc:
        failure(exc)


def config_error(exc: ConfigError) -> NoReturn:
    for line in exc.problems:
        click.echo(f"error: {line}", err=True)
    click.echo("The configuration keys are documented in config.toml.", err=True)
    sys.exit(EXIT_USAGE)


def failure(exc: EdgeError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(EXIT_FAILURE)
