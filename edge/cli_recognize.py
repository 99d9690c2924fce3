"""The recognition verbs of ``edge-face``: identify (who is in these photos?) and verify
(are these two photos the same person?). Thin shells over edge.recognize."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from edge.cli_gallery import Paths, _bar
from edge.cli_state import EXIT_FAILURE, State, guarded


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


COMMANDS = (identify, verify)
