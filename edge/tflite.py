"""The TFLite interpreter: ai-edge-litert (LiteRT) first, then tflite-runtime 2.14.

Imported lazily: only the daemon and the verbs that embed faces need a runtime.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edge.errors import EdgeError

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "install a TFLite runtime: `pip install ai-edge-litert` (recommended), or "
    "`pip install 'edge-face[tflite-runtime]'` (tflite-runtime 2.14, needs numpy<2)"
)


class RuntimeMissingError(EdgeError):
    """No TFLite runtime can be imported."""


class ModelLoadError(EdgeError):
    """The runtime could not load the model file."""


def interpreter_class(prefer: str | None = None) -> tuple[type[Any], str]:
    """The Interpreter class and the runtime's name, trying LiteRT then tflite-runtime.

    ``prefer`` ("ai-edge-litert" or "tflite-runtime") forces one of them.
    """
    errors: list[str] = []
    order = ["ai-edge-litert", "tflite-runtime"]
    if prefer:
        order = [prefer]
    for name in order:
        try:
            if name == "ai-edge-litert":
                from ai_edge_litert.interpreter import Interpreter
            else:
                from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
            return Interpreter, name
        except ImportError as exc:  # also numpy ABI errors surface as ImportError
            errors.append(f"{name}: {exc}")
    raise RuntimeMissingError(
        f"no TFLite runtime could be imported ({'; '.join(errors)}): {INSTALL_HINT}"
    )


def load_interpreter(path: Path, num_threads: int = 1, prefer: str | None = None) -> Any:
    """An allocated interpreter for the model at ``path``."""
    cls, name = interpreter_class(prefer)
    try:
        interpreter = cls(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelLoadError(
            f"{name} cannot load {path}: {exc} (is the file a TFLite model made for this "
            "runtime? the bundle's manifest lists the runtimes that load it)"
        ) from exc
    logger.debug("loaded %s with %s (%d threads)", path, name, num_threads)
    return interpreter
