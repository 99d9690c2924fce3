"""``edge-face run``: the recognition daemon (what the systemd unit starts)."""

from __future__ import annotations

import logging
import os
import sys

import click

from edge import sighup
from edge.cli_state import State, guarded


@click.command()
@click.option(
    "--dry-run", is_flag=True, help="Log events instead of publishing them (no broker needed)."
)
@click.pass_obj
def run(state: State, dry_run: bool) -> None:
    """Watch the camera and publish recognition events over MQTT until stopped.

    One event per encounter (faces are tracked across frames); events wait in an
    on-disk outbox while the broker is unreachable. A recording ([camera] source = a
    video file or a folder of images) ends the run once its events are delivered.
    SIGTERM stops cleanly; SIGHUP re-reads the gallery.

    \b
    Example:
      edge-face --config /etc/edge-face/config.toml run
      EDGE_FACE_CAMERA_SOURCE=clip.mp4 edge-face run --dry-run
    """
    from edge.service import run_daemon

    config = state.config()
    code = guarded(lambda: run_daemon(config, os.environ, dry_run=dry_run))
    if sighup.is_program(sys.argv[0] if sys.argv else ""):
        # Everything is closed (outbox, gallery, broker). A live camera's read may still
        # hang in OpenCV on its own thread; letting the interpreter finalize under it
        # aborts the process (SIGABRT, "exception not rethrown"), which systemd records as
        # a failed stop: leave without finalizing instead.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


COMMANDS = (run,)
