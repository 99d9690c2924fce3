"""``edge-face``: the device CLI. A thin shell: each verb calls one library function.

Library errors become messages and exit codes only here: 0 ok, 1 failure, 2 usage or
configuration error. Heavy modules (OpenCV, LiteRT) are imported inside the verbs that
need them, so ``--help`` works with nothing but the runtime dependencies.
"""

# ruff: noqa: E402 (SIGHUP is deferred before the imports below: they take a while)
from __future__ import annotations

import sys

from edge import sighup

sighup.defer(sys.argv[0] if sys.argv else "")  # first: a SIGHUP at start must not kill `run`

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import click

from edge import (
    __version__,
    cli_bundle,
    cli_fleet,
    cli_gallery,
    cli_recognize,
    cli_repair,
    cli_run,
    cli_sightings,
)
from edge.cli_state import EXIT_USAGE, State, config_error
from edge.config import load_config
from edge.errors import ConfigError


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    return value


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Example: edge-face --config /etc/edge-face/config.toml check-config",
)
@click.version_option(__version__, "-V", "--version", prog_name="edge-face")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Config file (default: $EDGE_FACE_CONFIG, else /etc/edge-face/config.toml, "
    "else built-in defaults). Any key can be set as EDGE_FACE_<SECTION>_<KEY>.",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default=None,
    help="Override [logging] level.",
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Show progress logs (-v: INFO, -vv: DEBUG); by default only the daemon logs INFO.",
)
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, log_level: str | None, verbose: int) -> None:
    """edge-face: recognise enrolled people on a camera and publish MQTT events.

    Enroll people from photos, then run the daemon; Home Assistant or Node-RED react to
    the events. Every verb has --help with an example.
    """
    ctx.obj = State(config_path, log_level, verbose, daemon=ctx.invoked_subcommand == "run")
    if ctx.invoked_subcommand != "run":
        sighup.release()  # only the daemon re-reads on SIGHUP; elsewhere it ends the verb


@main.command("check-config")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def check_config_cmd(state: State, as_json: bool) -> None:
    """Parse and validate the configuration; exit 0 when it is usable, 2 when not.

    Also checks the files it names: the MQTT password and TLS files can be read, and
    the model bundle verifies as `run` would load it (every file's sha256, plausible
    thresholds and, with [model] public_key, its signature). The MQTT password itself is
    never printed.

    \b
    Example:
      edge-face --config config.toml check-config
      EDGE_FACE_MQTT_PORT=1884 edge-face check-config --json
    """
    from edge.config_check import check_config
    from edge.sources import redact

    try:
        config = load_config(state.config_path, os.environ)
    except ConfigError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "problems": exc.problems}, indent=2))
            sys.exit(EXIT_USAGE)
        config_error(exc)
    report = check_config(config, os.environ)
    source = str(config.source) if config.source else "(built-in defaults)"
    if as_json:
        out = {
            "ok": not report.problems,
            "file": source,
            "problems": report.problems,
            "notes": report.notes,
            "config": _plain(config)
            | {"camera": _plain(config.camera) | {"source": redact(config.camera.source)}},
        }
        click.echo(json.dumps(out, indent=2))
    else:
        for line in report.problems:
            click.echo(f"error: {source}: {line}", err=True)
        for line in report.notes:
            click.echo(f"note: {line}")
        if not report.problems:
            click.echo(f"{source}: OK")
    sys.exit(EXIT_USAGE if report.problems else 0)


# The other verbs live in their own modules, which know nothing of this group.
for _command in (
    *cli_gallery.COMMANDS,
    *cli_recognize.COMMANDS,
    *cli_sightings.COMMANDS,
    *cli_run.COMMANDS,
    *cli_repair.COMMANDS,
    *cli_bundle.COMMANDS,
    *cli_fleet.COMMANDS,
):
    main.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    main()
