"""The gallery verbs of ``edge-face``: enroll, people, remove, rename (identify and verify
are in edge/cli_recognize.py).

Each is a thin shell over one library function (edge.enroll, edge.gallery,
edge.recognize); progress goes to stderr and is quiet with ``--json``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from edge.cli_state import EXIT_FAILURE, EXIT_USAGE, State, guarded

Paths = click.Path(path_type=Path, exists=True)


def _bar(enabled: bool, total: int, label: str) -> Any:
    return (
        click.progressbar(length=total, label=label, file=sys.stderr)
        if enabled
        else nullcontext(None)
    )


def _tick(bar: Any) -> Callable[[object], None] | None:
    return (lambda _item: bar.update(1)) if bar is not None else None


@click.command()
@click.argument("name")
@click.argument("paths", nargs=-1, type=Paths)
@click.option(
    "--camera", is_flag=True, help="Capture good frames from the configured camera instead."
)
@click.option(
    "--frames", default=5, show_default=True, help="With --camera: how many good frames to take."
)
@click.option("--largest", is_flag=True, help="In a photo with several faces, enroll the largest.")
@click.option(
    "--sighting",
    "sighting_ids",
    type=int,
    multiple=True,
    help="Enroll from this sighting (edge-face sightings); repeat for several.",
)
@click.option("--cluster", "cluster_id", type=int, default=None,
              help="Enroll every sighting of this group (edge-face sightings cluster).")  # fmt: skip
@click.option(
    "--force",
    is_flag=True,
    help="Enroll faces even when they look like another enrolled person.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def enroll(
    state: State,
    name: str,
    paths: tuple[Path, ...],
    camera: bool,
    frames: int,
    largest: bool,
    sighting_ids: tuple[int, ...],
    cluster_id: int | None,
    force: bool,
    as_json: bool,
) -> None:
    """Enroll NAME from photos (files or folders) or from the camera.

    Each photo must show exactly one face (or use --largest), big and sharp enough; every
    photo that is refused is listed with the reason, and nothing of it is stored. A face
    that the recognition rule would name as another enrolled person is refused with that
    person's name and the distance (--force enrolls it anyway). An existing NAME gets the
    new photos added. Exit 1 when nothing was enrolled.

    \b
    Example:
      edge-face enroll Alice photos/alice1.jpg photos/alice/
      edge-face enroll "Bob Smith" --camera --frames 5
      edge-face enroll "Barack Obama" --cluster 17      # see edge-face sightings cluster
    """
    from edge.enroll import enroll_photos, expand
    from edge.gallery import person_name

    sources = sum(map(bool, (paths, camera, sighting_ids, cluster_id is not None)))
    if sources != 1:
        raise click.UsageError("give photos (files or folders), --camera, --sighting or --cluster")
    given = name
    name = guarded(lambda: person_name(given))  # before any photo is read
    from edge.recognize import policy_for

    bundle, engine, gallery = state.bundle(), state.engine(), state.gallery()
    config = state.config()
    policy = (
        None if force else policy_for(bundle.manifest, config.recognition, cohort=bundle.cohort)
    )
    if sighting_ids or cluster_id is not None:
        from edge.enroll_sightings import cluster_members, enroll_sightings

        store, enc = state.sightings(), bundle.manifest.encoder
        rows = guarded(
            lambda: (
                store.get(list(sighting_ids))
                if sighting_ids
                else cluster_members(store, cluster_id or 0, enc.metric, bundle.manifest.tau.verify)
            )
        )
        report = guarded(lambda: enroll_sightings(gallery, name, rows, policy))
    elif camera:
        from edge.enroll_camera import enroll_from_camera

        source = config.camera.source
        report = guarded(
            lambda: enroll_from_camera(gallery, engine, name, source, frames, policy=policy)
        )
    else:
        files = expand(paths)
        with _bar(not as_json and len(files) > 3, len(files), f"enrolling {name}") as bar:
            report = guarded(
                lambda: enroll_photos(gallery, engine, name, files, largest, _tick(bar), policy)
            )
    if as_json:
        photos = [dataclasses.asdict(o) for o in report.outcomes]
        click.echo(json.dumps({"name": name, "stored": report.stored, "photos": photos}, indent=2))
    else:
        for o in report.outcomes:
            click.echo(
                f"{'ok  ' if o.ok else 'FAIL'} {o.source}" + (f": {o.reason}" if o.reason else "")
            )
        click.echo(f"{report.stored} face(s) enrolled for {name}; {len(report.rejected)} refused")
    sys.exit(0 if report.stored else EXIT_FAILURE)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_obj
def people(state: State, as_json: bool) -> None:
    """List the enrolled people and how many face embeddings each has.

    \b
    Example:
      edge-face people
      edge-face people --json
    """
    from edge import feedback

    gallery = state.gallery(create=False)
    found = guarded(gallery.people)
    nots = guarded(lambda: feedback.counts(gallery.conn))
    if as_json:
        out = [dataclasses.asdict(p) | {"not_faces": nots.get(p.name, 0)} for p in found]
        click.echo(json.dumps(out, indent=2))
        return
    for p in found:
        extra = f"\t{nots[p.name]} face(s) marked not them" if p.name in nots else ""
        click.echo(f"{p.name}\t{p.embeddings} face(s)\tsince {p.created}{extra}")
    click.echo(f"{len(found)} {'person' if len(found) == 1 else 'people'} enrolled", err=True)


@click.command()
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def remove(state: State, name: str, yes: bool, as_json: bool) -> None:
    """Forget NAME for good: the person and every embedding (overwritten on disk).

    Asks for confirmation on a terminal; scripts pass --yes (without a terminal and
    without --yes nothing is removed, exit 2).

    \b
    Example:
      edge-face remove Alice
      edge-face remove Alice --yes --json
    """
    gallery = state.gallery(create=False)
    found = [p for p in guarded(gallery.people) if p.name == name]
    if not found:
        guarded(lambda: gallery.remove(name))  # says there is no such person, exit 1
    if not yes:
        if not sys.stdin.isatty():
            click.echo(
                f"error: removing {name} cannot be undone and there is no terminal to ask: "
                "pass --yes to remove without asking",
                err=True,
            )
            sys.exit(EXIT_USAGE)
        question = f"Remove {name} and {found[0].embeddings} face embedding(s) for good?"
        if not click.confirm(question, default=False, err=True):
            click.echo("nothing removed", err=True)
            sys.exit(EXIT_FAILURE)
    n = guarded(lambda: gallery.remove(name))
    if as_json:
        click.echo(json.dumps({"name": name, "removed": True, "embeddings": n}, indent=2))
    else:
        click.echo(f"removed {name} and {n} face embedding(s)")


@click.command()
@click.argument("old")
@click.argument("new")
@click.pass_obj
def rename(state: State, old: str, new: str) -> None:
    """Rename an enrolled person.

    \b
    Example:
      edge-face rename Bob "Bob Smith"
    """
    guarded(lambda: state.gallery(create=False).rename(old, new))
    click.echo(f"renamed {old} to {new}")


COMMANDS = (enroll, people, remove, rename)
