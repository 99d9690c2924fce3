"""edge.signals: a signal's action never runs inside the code it interrupts.

The naive handler (``signal.signal(SIGHUP, lambda *_: event.set())``) hangs a main thread
that is inside that event's ``wait`` or ``clear`` when the signal lands (Event's lock is
not re-entrant): the child below, with ``naive``, hung within a few hundred signals here.
The daemon's stop (SIGTERM, SIGINT) and reload (SIGHUP) go through SignalRelay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

CHILD = """
import os, signal, sys, threading, time
from edge.signals import SignalRelay
ev, relayed = threading.Event(), []
def act():
    relayed.append(1)
    ev.set()
if sys.argv[1] == "naive":
    signal.signal(signal.SIGHUP, lambda *_: act())
else:
    SignalRelay({signal.SIGHUP: act})
print("ready", flush=True)
end = time.monotonic() + 2.0
while time.monotonic() < end:  # the daemon's loop: an Event's wait and clear, over and over
    ev.clear()
    ev.wait(0.0)
time.sleep(0.2)
print(len(relayed), flush=True)
"""


def _hammer(mode: str) -> tuple[int | None, str]:
    """Run the child and send it SIGHUPs for its whole loop; (exit status or None when it
    hung, its output)."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and proc.poll() is None:
        os.kill(proc.pid, signal.SIGHUP)
        time.sleep(0.0005)
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, ""
    return proc.returncode, out


def test_a_storm_of_signals_never_hangs_the_main_thread() -> None:
    status, out = _hammer("relay")
    assert status == 0, "the main thread hung (or died) under signals"
    assert int(out.strip()) > 100  # they were acted on, on the relay thread


def test_the_relay_acts_off_the_main_thread_and_close_restores_the_handlers() -> None:
    from edge.signals import SignalRelay

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are installed from the main thread only")
    before = signal.getsignal(signal.SIGUSR1)
    threads: list[str] = []
    done = threading.Event()

    def act() -> None:
        threads.append(threading.current_thread().name)
        done.set()

    relay = SignalRelay({signal.SIGUSR1: act})
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert done.wait(5)
        assert threads == ["signals"]
    finally:
        relay.close()
    assert signal.getsignal(signal.SIGUSR1) is before
