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
    from edge.sightings import SightingStore

EXIT_FAILURE = 1
EXIT_USAGE = 2


class State:
    """What the group's options leave for the verbs: the config, loaded on first use."""

    def __init__(
        self,
        config_path: Path | None,
        log_level: str | None,
        verbose: int = 0,
        daemon: bool = False,
    ) -> None:
        self.config_path = config_path
        self.log_level = log_level
        self.verbose = verbose
        self.daemon = daemon  # `run`: [logging] level applies; other verbs: warnings only
        self._config: Config | None = None

    def level(self, config: Config) -> str:
        """The log level: --log-level, else -v (INFO) / -vv (DEBUG), else the config's
        for the daemon and WARNING for the other verbs (their result is their output)."""
        if self.log_level:
            return self.log_level
        if self.verbose:
            return "DEBUG" if self.verbose > 1 else "INFO"
        return config.logging.level if self.daemon else "WARNING"

    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.config_path, os.environ)
            except ConfigError as exc:
                config_error(exc)
            setup_logging(self.level(self._config))
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

    def sightings(self) -> SightingStore:
        """The sightings store ([sightings] path); empty and in memory when there is none."""
        return _sightings_store(self)

    def gallery(self, create: bool = True) -> Gallery:
        """The configured gallery. ``create=False`` (every verb but enroll): a gallery
        that does not exist yet is an empty one in memory, and no file or folder is made."""
        import sqlite3

        from edge.gallery import Gallery

        path = self.config().gallery.path
        if not create and not path.exists():
            click.echo(f"note: no gallery at {path} yet (`edge-face enroll` creates it)", err=True)
            return Gallery(
                sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            )
        return guarded(lambda: Gallery(path))


def _sightings_store(state: State) -> SightingStore:
    import sqlite3

    from edge.sightings import SightingStore

    config = state.config()
    path = config.sightings.file(config.gallery.path)
    if not path.exists():  # a verb never creates it: only the daemon does
        if not config.sightings.enabled:
            click.echo(
                "note: [sightings] enabled is false: the daemon keeps no sightings", err=True
            )
        return SightingStore(
            sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        )
    s = config.sightings
    return guarded(lambda: SightingStore(path, s.retention_days, s.max_mb))


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
