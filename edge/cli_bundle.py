"""``edge-face bundle install`` and ``edge-face bundle show``: the model bundle on this
device (edge/bundle_install.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from edge.cli_state import State, guarded


@click.group()
def bundle() -> None:
    """Install or show the model bundle ([model] bundle).

    \b
    Example:
      edge-face bundle install edge-face-bundle.tgz
      edge-face bundle show
    """


def _summary(b: Any) -> dict[str, Any]:
    m = b.manifest
    return {
        "path": str(b.root),
        "name": m.name,
        "encoder_id": m.encoder_id,
        "quantization": m.encoder.quantization,
        "runtimes": list(m.encoder.runtimes),
        "tau_verify": round(m.tau.verify, 4),
        "open_set_table": m.identify is not None,
        "signed": (b.root / "manifest.sig").is_file(),
    }


def _gallery_note(state: State, encoder_id: str) -> str | None:
    """What the gallery's embeddings mean for this encoder (None: nothing to say)."""
    import sqlite3

    path = state.config().gallery.path
    if not path.is_file():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            rows = conn.execute(
                "SELECT encoder_id, COUNT(*) FROM embeddings GROUP BY encoder_id"
            ).fetchall()
    except sqlite3.Error:
        return None
    other = sum(n for enc, n in rows if enc != encoder_id)
    if not other:
        return None
    return (
        f"the gallery holds {other} embedding(s) made with another encoder: this bundle "
        "cannot use them; enroll everyone again (edge-face enroll NAME photos...)"
    )


@bundle.command()
@click.argument("source", type=click.Path(path_type=Path, exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def install(state: State, source: Path, as_json: bool) -> None:
    """Check a bundle (a folder, or a .tar.gz of one) and install it at [model] bundle.

    Checked as `run` loads it: every file's sha256, plausible thresholds, the signature
    when [model] public_key is set, and this machine's TFLite runtime loads its models.
    The bundle in place is replaced only once the new one is complete. Restart the
    service afterwards (sudo systemctl restart edge-face).

    \b
    Example:
      edge-face bundle install build/bundle-sface
      tar czf bundle.tgz -C build bundle-sface   # on the build machine
      sudo -u edge-face edge-face bundle install bundle.tgz
    """
    from edge.bundle_install import install_bundle

    model = state.config().model
    done = guarded(lambda: install_bundle(source, model.bundle, model.public_key))
    info = _summary(done.bundle)
    note = _gallery_note(state, done.bundle.manifest.encoder_id)
    if as_json:
        click.echo(json.dumps(info | {"replaced": done.replaced, "note": note}, indent=2))
        return
    click.echo(
        f"installed {info['name']} (encoder {info['encoder_id']}, {info['quantization']}) "
        f"at {info['path']}"
    )
    if note:
        click.echo(f"note: {note}", err=True)


@bundle.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def show(state: State, as_json: bool) -> None:
    """Check the configured bundle and say which encoder it holds.

    \b
    Example:
      edge-face bundle show
    """
    info = _summary(state.bundle())
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        click.echo(f"{key}\t{value}")


COMMANDS = (bundle,)
