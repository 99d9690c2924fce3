"""SIGHUP while `edge-face run` starts: noted, not fatal (``edge.sighup``). Each case runs
in a Python of its own: signal dispositions are per process."""

from __future__ import annotations

import signal
import subprocess
import sys

from edge import sighup

NOTE_ONE = (
    "import os, signal, time\n"
    "from edge import sighup\n"
    "assert sighup.defer('/opt/edge-face/venv/bin/edge-face')\n"
    "os.kill(os.getpid(), signal.SIGHUP)\n"
    "time.sleep(0.05)\n"
)


def python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)


def test_a_sighup_while_deferred_is_noted_and_handed_to_the_daemon() -> None:
    done = python(NOTE_ONE + "print(sighup.take(), sighup.take())\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]  # noted once, taken once


def test_any_other_verb_gets_the_default_action_back() -> None:
    """`edge-face enroll` in a terminal that hangs up still ends, as it always did."""
    done = python(NOTE_ONE + "sighup.release()\nprint('survived')\n")
    assert done.returncode == -signal.SIGHUP and "survived" not in done.stdout
    quiet = python("from edge import sighup\nsighup.defer('edge-face')\nsighup.release()\n")
    assert quiet.returncode == 0  # none came: nothing happens


def test_only_the_program_defers() -> None:
    assert sighup.is_program("/usr/local/bin/edge-face")
    assert sighup.is_program("/work/edge/__main__.py")  # python -m edge
    assert not sighup.is_program("/usr/bin/pytest") and not sighup.is_program("/x/pip/__main__.py")
    before = signal.getsignal(signal.SIGHUP)
    assert sighup.defer(sys.argv[0]) is False  # pytest: left alone
    assert signal.getsignal(signal.SIGHUP) is before
    ignored = python(
        "import signal\nfrom edge import sighup\nsignal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "print(sighup.defer('edge-face'))\n"
    )
    assert ignored.stdout.strip() == "False"  # under nohup: left ignored
