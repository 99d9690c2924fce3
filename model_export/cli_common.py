"""What the ``model-export`` verbs share: path types, the error exit, the face data root
and the printed table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import click

PathArg = click.Path(path_type=Path)
ExistingDir = click.Path(path_type=Path, exists=True, file_okay=False)
ExistingFile = click.Path(path_type=Path, exists=True, dir_okay=False)


def fail(exc: Exception) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


def face_data(value: Path | None) -> Path:
    from model_export.data import data_root

    root = value or data_root()
    if not root.is_dir():
        raise click.UsageError(f"face data not found at {root}: give --data or set EDGE_FACE_DATA")
    return root


def table(rows: list[tuple[str, Any]]) -> str:
    width = max(len(k) for k, _ in rows)
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join(f"  {k:<{width}}  {fmt(v)}" for k, v in rows)
