"""The gallery verbs of ``edge-face``: enroll, people, remove, rename, identify, verify.

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
    """
    from edge.enroll import enroll_photos, expand
    from edge.gallery import person_name

    if not paths and not camera:
        raise click.UsageError("give photos (files or folders) or --camera")
    given = name
    name = guarded(lambda: person_name(given))  # before any photo is read
    from edge.recognize import policy_for

    bundle, engine, gallery = state.bundle(), state.engine(), state.gallery()
    config = state.config()
    policy = (
        None if force else policy_for(bundle.manifest, config.recognition, cohort=bundle.cohort)
    )
    if camera:
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
    found = guarded(lambda: state.gallery(create=False).people())
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(p) for p in found], indent=2))
        return
    for p in found:
        click.echo(f"{p.name}\t{p.embeddings} face(s)\tsince {p.created}")
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


@click.command()
@click.argument("paths", nargs=-1, required=True, type=Paths)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def identify(state: State, paths: tuple[Path, ...], as_json: bool) -> None:
    """Name every face in photos (files or folders): the box, the nearest person, the
    distance, tau and the decision (known iff distance <= tau, else unknown). Exit 1 when
    a file could not be read as a photo (each one is listed with why).

    \b
    Example:
      edge-face identify door-snapshots/
      edge-face identify photo.jpg --json
    """
    from edge.enroll import expand
    from edge.images import ImageError, read_image
    from edge.recognize import Recognizer, policy_for

    bundle, engine, gallery = state.bundle(), state.engine(), state.gallery(create=False)
    matrix = guarded(lambda: gallery.matrix(bundle.manifest.encoder_id))
    policy = policy_for(bundle.manifest, state.config().recognition, cohort=bundle.cohort)
    recognizer = Recognizer(engine, policy.for_gallery(matrix))
    files = expand(paths)
    results = []
    with _bar(not as_json and len(files) > 3, len(files), "identifying") as bar:
        for path in files:
            try:
                faces = recognizer.faces(read_image(path))
                entry: dict[str, Any] = {"image": str(path), "faces": [f.as_dict() for f in faces]}
            except ImageError as exc:
                entry = {"image": str(path), "error": str(exc).removeprefix(f"{path}: ")}
            results.append(entry)
            if bar is not None:
                bar.update(1)
            elif not as_json:
                _print_entry(entry)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    elif len(files) > 3:
        for entry in results:
            _print_entry(entry)
    failed = sum(1 for entry in results if "error" in entry)
    if failed:
        click.echo(f"{failed} of {len(results)} file(s) could not be read as photos", err=True)
        sys.exit(EXIT_FAILURE)


def _print_entry(entry: dict[str, Any]) -> None:
    if "error" in entry:
        click.echo(f"{entry['image']}: error: {entry['error']}")
        return
    if not entry["faces"]:
        click.echo(f"{entry['image']}: no face")
    for f in entry["faces"]:
        who = f["person"] if f["known"] else "unknown"
        click.echo(
            f"{entry['image']}: {who} (distance {f['distance']}, tau {f['tau']}) at {f['box']}"
        )


@click.command()
@click.argument("image1", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.argument("image2", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def verify(state: State, image1: Path, image2: Path, as_json: bool) -> None:
    """Are the largest faces of two photos the same person? (one-to-one, tau.verify)

    \b
    Example:
      edge-face verify id-card.jpg selfie.jpg
    """
    from edge.images import read_image
    from edge.recognize import compare, policy_for

    bundle, engine = state.bundle(), state.engine()
    policy = policy_for(bundle.manifest, state.config().recognition, cohort=bundle.cohort)
    names = (str(image1), str(image2))
    result = guarded(lambda: compare(engine, read_image(image1), read_image(image2), policy, names))
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        verdict = "same person" if result["same"] else "different people"
        click.echo(f"{verdict} (distance {result['distance']}, tau {result['tau']})")


COMMANDS = (enroll, people, remove, rename, identify, verify)
