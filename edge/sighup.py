"""SIGHUP while ``edge-face run`` starts.

SIGHUP asks the daemon to re-read the gallery (``systemctl reload``), but its default
action ends a process, and the daemon's own handler is installed only once Python has
imported the CLI, OpenCV and the runtime (the better part of a second): a SIGHUP in that
window used to kill the service. So the program defers SIGHUP first thing, before those
imports (:func:`defer`, called at the top of ``edge.cli``), with a handler that only notes
it. ``run`` takes the note over when it installs its own handler (:func:`take`) and
re-reads the gallery once it is loaded; every other verb gives SIGHUP its default action
back (:func:`release`) and, if one came meanwhile, ends as it would have (a terminal that
hangs up still ends an ``enroll``).

Only the ``edge-face`` program defers (its console script, or ``python -m edge``):
importing ``edge.cli`` from a test or another program changes no signal.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType


class _Deferral:
    active = False  # our noting handler is installed
    seen = False  # a SIGHUP came while it was


_state = _Deferral()


def _note(_signum: int, _frame: FrameType | None) -> None:
    _state.seen = True


def is_program(argv0: str) -> bool:
    """``argv0`` is the ``edge-face`` console script or ``python -m edge``."""
    path = Path(argv0)
    return path.name == "edge-face" or (path.name == "__main__.py" and path.parent.name == "edge")


def defer(argv0: str) -> bool:
    """Note SIGHUP instead of dying of it, when this process is the ``edge-face`` program
    and SIGHUP has its default action (one ignored by ``nohup`` or handled is left as it
    is). True when deferred."""
    if not is_program(argv0) or threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_DFL:
        return False
    signal.signal(signal.SIGHUP, _note)
    _state.active, _state.seen = True, False
    return True


def take() -> bool:
    """Whether a SIGHUP came while deferred; the caller has installed its own handler
    (called after that, so that no SIGHUP falls between the two)."""
    seen = _state.seen
    _state.active, _state.seen = False, False
    return seen


def release() -> None:
    """SIGHUP's default action back (a verb that is not the daemon); one that came while
    deferred ends the process now, as it would have then."""
    if not _state.active:
        return
    _state.active = False
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    if _state.seen:
        os.kill(os.getpid(), signal.SIGHUP)
