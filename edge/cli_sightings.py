"""``edge-face sightings``: the faces the daemon decided on ([sightings] enabled), listed,
grouped, drawn on a contact sheet and purged; ``edge-face not NAME --sighting ID``
(edge/sightings.py, edge/enroll_sightings.py)."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import click

from edge.cli_state import EXIT_FAILURE, EXIT_USAGE, State, guarded

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> float:
    """'90s', '30m', '2h', '7d' -> seconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if not found:
        raise click.BadParameter(f"{text!r}: give a number and s, m, h or d (e.g. 2h)")
    return float(found[1]) * UNITS[found[2]]


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds")


def _plain(row: Any) -> dict[str, Any]:
    return {"id": row.id, "time": _when(row.time), "camera": row.camera,
            "track_id": row.track_id, "decision": row.decision, "person": row.person,
            "distance": round(row.distance, 4), "tau": round(row.tau, 4),
            "size_px": round(row.quality.size_px, 1),
            "sharpness": round(row.quality.sharpness, 1)}  # fmt: skip


def _sheet(path: Path, tiles: list[tuple[str, bytes]]) -> None:
    from edge.sheet import write_sheet

    n = guarded(lambda: write_sheet(path, tiles))
    click.echo(f"contact sheet: {path} ({n} faces)", err=True)


@click.group(invoke_without_command=True)
@click.option("--unknown", is_flag=True, help="Only faces no one was named for.")
@click.option("--since", default=None, help="Only the last 90s, 30m, 2h, 7d...")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.option("--sheet", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the faces, numbered, to this JPEG.")  # fmt: skip
@click.pass_context
def sightings(
    ctx: click.Context, unknown: bool, since: str | None, as_json: bool, sheet: Path | None
) -> None:
    """List the faces the daemon decided on, one per encounter ([sightings] enabled).

    \b
    Example:
      edge-face sightings --unknown --since 2h --sheet faces.jpg
      edge-face sightings cluster --sheet groups.jpg
      edge-face enroll "Barack Obama" --cluster 17
      edge-face not Alice --sighting 42
    """
    if ctx.invoked_subcommand is not None:
        return
    state: State = ctx.obj
    start = time.time() - parse_since(since) if since else None
    store = state.sightings()
    rows = guarded(lambda: store.list(unknown=unknown, since=start, full=sheet is not None))
    if as_json:
        click.echo(json.dumps([_plain(r) for r in rows], indent=2))
    else:
        for r in rows:
            who = r.person if r.decision == "recognized" else "unknown"
            click.echo(f"{r.id}\t{_when(r.time)}\t{r.camera}\t{who}\tdistance {r.distance:.4f}")
        click.echo(f"{len(rows)} sighting(s)", err=True)
    if sheet is not None and rows:
        _sheet(sheet, [(f"#{r.id}", r.crop or b"") for r in rows])


@sightings.command()
@click.option("--json", "as_json", is_flag=True, help="Print the groups as JSON.")
@click.option("--sheet", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Also write the faces, by group, to this JPEG.")  # fmt: skip
@click.pass_obj
def cluster(state: State, as_json: bool, sheet: Path | None) -> None:
    """Group the unknown sightings that are the same person, so that a whole group is
    named at once (edge-face enroll NAME --cluster ID). A group is named by its first
    sighting's id; groups are made at the bundle's tau.verify (average linkage).

    \b
    Example:
      edge-face sightings cluster --sheet groups.jpg
    """
    from edge.enroll_sightings import clusters_of

    manifest = state.bundle().manifest
    rows = guarded(lambda: state.sightings().list(unknown=True, full=True))
    groups = clusters_of(rows, manifest.encoder.metric, manifest.tau.verify)
    if as_json:
        out = [{"cluster": cid, "sightings": [m.id for m in members],
                "first": _when(members[0].time), "last": _when(members[-1].time)}
               for cid, members in groups.items()]  # fmt: skip
        click.echo(json.dumps(out, indent=2))
    else:
        for cid, members in groups.items():
            ids = ", ".join(str(m.id) for m in members)
            click.echo(f"cluster {cid}: {len(members)} sighting(s) ({ids}), "
                       f"{_when(members[0].time)} to {_when(members[-1].time)}")  # fmt: skip
        click.echo(f"{len(groups)} cluster(s) of {len(rows)} unknown sighting(s)", err=True)
    if sheet is not None and groups:
        _sheet(sheet, [(f"c{cid} #{m.id}", m.crop or b"")
                       for cid, members in groups.items() for m in members])  # fmt: skip


@sightings.command()
@click.option("--person", default=None, help="Only the sightings named this person.")
@click.option("--all", "everything", is_flag=True, help="Every sighting.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def purge(state: State, person: str | None, everything: bool, yes: bool) -> None:
    """Delete sightings for good (crops and embeddings overwritten on disk).

    \b
    Example:
      edge-face sightings purge --person Alice
      edge-face sightings purge --all --yes
    """
    if (person is None) == (not everything):
        raise click.UsageError("give --person NAME or --all")
    what = f"every sighting of {person}" if person else "every sighting"
    if not yes:
        if not sys.stdin.isatty():
            click.echo(f"error: no terminal to ask: pass --yes to delete {what}", err=True)
            sys.exit(EXIT_USAGE)
        if not click.confirm(f"Delete {what} for good?", default=False, err=True):
            sys.exit(EXIT_FAILURE)
    n = guarded(lambda: state.sightings().purge(person))
    click.echo(f"deleted {n} sighting(s)")


@click.command("not")
@click.argument("name")
@click.option("--sighting", "ids", type=int, multiple=True, required=True,
              help="A sighting wrongly named NAME (repeat for several).")  # fmt: skip
@click.pass_obj
def not_(state: State, name: str, ids: tuple[int, ...]) -> None:
    """Say a sighting was not NAME: its face is kept as an impostor face of NAME, and
    faces nearer to it than to NAME's own are no longer named NAME.

    \b
    Example:
      edge-face sightings --since 1d        # find the wrong one
      edge-face not Alice --sighting 42
    """
    from edge.enroll_sightings import mark_not

    rows = guarded(lambda: state.sightings().get(list(ids)))
    n = guarded(lambda: mark_not(state.gallery(create=False), name, rows))
    click.echo(f"{n} face(s) marked as not {name}")


COMMANDS = (sightings, not_)
