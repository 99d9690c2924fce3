"""``model-export``: the export stage's CLI (a thin shell over model_export's functions).

TensorFlow is imported only inside the verbs that need it, so ``--help`` is instant.
"""

from __future__ import annotations

import click

from model_export import __version__


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Example: model-export --help",
)
@click.version_option(__version__, "-V", "--version", prog_name="model-export")
def main() -> None:
    """model-export: build, verify and evaluate edge-face model bundles.

    Needs the export extra: pip install 'edge-face[export]'.
    """


if __name__ == "__main__":  # pragma: no cover
    main()
