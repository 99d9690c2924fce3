"""The TFLite interpreter: ai-edge-litert (LiteRT) first, then tflite-runtime 2.14.

Imported lazily: only the daemon and the verbs that embed faces need a runtime.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


RUNTIMES = ("ai-edge-litert", "tflite-runtime")


def interpreter_class(
    prefer: str | None = None, runtimes: Sequence[str] = ()
) -> tuple[type[Any], str]:
    """The Interpreter class and the runtime's name, trying LiteRT then tflite-runtime.

    ``prefer`` ("ai-edge-litert" or "tflite-runtime") forces one of them; ``runtimes``
    (a bundle manifest's ``encoder.runtimes``, e.g. "tflite-runtime 2.14") limits the
    choice to the runtimes the model is known to load in.
    """
    errors: list[str] = []
    order = [prefer] if prefer else list(RUNTIMES)
    if runtimes:
        allowed = {r.split()[0] for r in runtimes}
        if not allowed & set(order):
            raise RuntimeMissingError(
                f"this bundle's encoder loads only in {', '.join(runtimes)}, not in "
                f"{', '.join(order)}: install ai-edge-litert (`pip install ai-edge-litert`) "
                "or build the bundle with `model-export build --quantization int8` (or "
                "float16), which tflite-runtime 2.14 loads"
            )
        order = [name for name in order if name in allowed]
    for name in order:
        try:
            if name == "ai-edge-litert":
                from ai_edge_litert.interpreter import Interpreter
            else:
                from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
            return Interpreter, name
        except ImportError as exc:  # also numpy ABI errors surface as ImportError
            errors.append(f"{name}: {exc}")
    hint = INSTALL_HINT
    if runtimes:
        hint = f"this bundle's encoder loads in {', '.join(runtimes)}: {INSTALL_HINT}"
    raise RuntimeMissingError(f"no TFLite runtime could be imported ({'; '.join(errors)}): {hint}")


@contextmanager
def native_stderr_muted(mute: bool) -> Iterator[None]:
    """Native code's writes to stderr (LiteRT's "Created TensorFlow Lite XNNPACK delegate"
    notice) dropped while ``mute``: only used when the log level hides INFO, i.e. in a
    CLI verb, never in the daemon (its other threads may be writing)."""
    if not mute:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_interpreter(
    path: Path, num_threads: int = 1, prefer: str | None = None, runtimes: Sequence[str] = ()
) -> Any:
    """An allocated interpreter for the model at ``path``."""
    cls, name = interpreter_class(prefer, runtimes)
    try:
        with native_stderr_muted(logging.getLogger().getEffectiveLevel() > logging.INFO):
            interpreter = cls(model_path=str(path), num_threads=num_threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelLoadError(
            f"{name} cannot load {path}: {exc} (is the file a TFLite model made for this "
            "runtime? the bundle's manifest lists the runtimes that load it)"
        ) from exc
    logger.debug("loaded %s with %s (%d threads)", path, name, num_threads)
    return interpreter
