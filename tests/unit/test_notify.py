from __future__ import annotations

import socket
from pathlib import Path

import pytest

from edge.notify import Notifier


def test_messages_reach_the_notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(1)
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    n = Notifier(str(path))
    n.ready()
    n.watchdog()
    n.status("3.0 fps\n2 people")
    assert [server.recv(100) for _ in range(3)] == [
        b"READY=1",
        b"WATCHDOG=1",
        b"STATUS=3.0 fps 2 people",
    ]
    assert n.watchdog_s == 10.0


def test_without_systemd_it_does_nothing() -> None:
    Notifier("").ready()  # no socket: no error
    Notifier(str(Path("/nonexistent/sock"))).ready()  # unreachable: logged, not raised
