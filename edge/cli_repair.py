"""``edge-face gallery check`` and ``edge-face gallery repair``: a damaged gallery file
(edge/gallery_repair.py)."""

from __future__ import annotations

import json
import sys

import click

from edge.cli_state import EXIT_FAILURE, State, guarded


@click.group()
def gallery() -> None:
    """Check or repair the gallery file ([gallery] path).

    \b
    Example:
      edge-face gallery check
      edge-face gallery repair
    """


@gallery.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def check(state: State, as_json: bool) -> None:
    """Check the gallery file for damage (SQLite's integrity check, read-only). Exit 1
    when it is damaged.

    \b
    Example:
      edge-face gallery check
    """
    from edge.gallery_repair import check as run_check

    path = state.config().gallery.path
    problems = guarded(lambda: run_check(path))
    if as_json:
        click.echo(json.dumps({"gallery": str(path), "ok": not problems, "problems": problems}))
    elif problems:
        click.echo(f"{path}: damaged:", err=True)
        for line in problems[:20]:
            click.echo(f"  {line}", err=True)
        click.echo("`edge-face gallery repair` copies what can be read into a new file.", err=True)
    else:
        click.echo(f"{path}: OK")
    sys.exit(EXIT_FAILURE if problems else 0)


@gallery.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def repair(state: State, as_json: bool) -> None:
    """Copy every person and embedding that can still be read into a new gallery file
    that takes the old one's place; the damaged file is kept beside it as
    <name>.damaged-<time> (delete it once you are satisfied: it holds the old data). Stop
    the daemon first, start it again after.

    \b
    Example:
      sudo systemctl stop edge-face && edge-face gallery repair && sudo systemctl start edge-face
    """
    from edge.gallery_repair import repair as run_repair

    path = state.config().gallery.path
    report = guarded(lambda: run_repair(path))
    if as_json:
        click.echo(json.dumps(report.as_dict()))
        return
    click.echo(
        f"{path}: kept {len(report.kept_people)} people and {report.kept_embeddings} "
        f"embedding(s); lost {report.unreadable_people} unreadable people row(s) and "
        f"{report.lost_embeddings} embedding(s)"
    )
    if report.unreadable_tables and report.counted is None:
        click.echo(
            f"no row of {' and '.join(report.unreadable_tables)} could be read: everything"
            " in it is lost (the counts above are the ids tried)"
        )
    gaps = report.missing_ids
    if any(gaps.values()):
        click.echo(
            f"the file did not count its own rows (a gallery from before schema version 3, or"
            f" its count was on the damaged page): {gaps['people']} people id(s) and"
            f" {gaps['embeddings']} embedding id(s) are missing below the largest one read:"
            " people removed earlier, or rows lost without an error. Compare with"
            " `edge-face people` from before the damage, if you have it"
        )
    click.echo(f"the damaged file is now {report.damaged_copy}: delete it when you are done")


COMMANDS = (gallery,)
