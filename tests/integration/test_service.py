"""The daemon run the way systemd runs it: the unit's ExecStart line, its environment
(configuration and state directories, the credential, a notify socket, a watchdog)."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from broker import Broker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def unit_exec_start(repo: Path, config_dir: Path) -> list[str]:
    text = (repo / "systemd" / "edge-face.service").read_text()
    line = re.search(r"^ExecStart=(.+)$", text, re.M)
    assert line is not None
    cmd = line.group(1).replace("${CONFIGURATION_DIRECTORY}", str(config_dir))
    argv = shlex.split(cmd)
    assert argv[0] == "/opt/edge-face/venv/bin/edge-face"
    return [str(Path(sys.executable).with_name("edge-face")), *argv[1:]]


def unit_environment(repo: Path) -> dict[str, str]:
    text = (repo / "systemd" / "edge-face.service").read_text()
    env: dict[str, str] = {}
    for line in re.findall(r"^Environment=(.+)$", text, re.M):
        env.update(dict(item.split("=", 1) for item in shlex.split(line)))
    return env


def test_ready_watchdog_status_and_a_clean_sigterm(repo_root: Path, bundle_dir: Path, broker: Broker,
                                                   face_data: Path, tmp_path: Path) -> None:  # fmt: skip
    config_dir, state_dir, creds = tmp_path / "etc", tmp_path / "state", tmp_path / "creds"
    for d in (config_dir, state_dir, creds):
        d.mkdir()
    (creds / "mqtt_password").write_text("")  # install.sh's empty credential: no password
    clip = face_data / "videos" / "hamilton" / "short_hamilton_clip.mp4"
    (config_dir / "config.toml").write_text(
        f'[camera]\nsource = "{clip}"\nmax_fps = 5\n[model]\nbundle = "{bundle_dir}"\n'
        f'[gallery]\npath = "{state_dir / "gallery.db"}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\ndevice_id = "svc"\noutbox = "{state_dir / "outbox.db"}"\n'
        "status_interval_s = 1\n"
    )
    notify = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(notify))
    server.settimeout(0.5)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EDGE_FACE_") or k == "EDGE_FACE_DATA"
    }
    env.update(unit_environment(repo_root))
    env.update({"NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "2000000", "CONFIGURATION_DIRECTORY": str(config_dir),
                "STATE_DIRECTORY": str(state_dir), "CREDENTIALS_DIRECTORY": str(creds), "JOURNAL_STREAM": "8:1234",
                "EDGE_FACE_GALLERY_PATH": str(state_dir / "gallery.db"), "EDGE_FACE_MQTT_OUTBOX": str(state_dir / "outbox.db")})  # fmt: skip
    proc = subprocess.Popen(
        unit_exec_start(repo_root, config_dir), env=env, stderr=subprocess.PIPE, text=True
    )
    messages: list[str] = []

    def collect(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                messages.append(server.recv(4096).decode())

    collect(12)
    assert "READY=1" in messages
    ready_at = messages.index("READY=1")
    pings = [m for m in messages[ready_at:] if m == "WATCHDOG=1"]
    assert len(pings) >= 10  # from the processing loop, well within WatchdogSec
    assert any(m.startswith("STATUS=") and "fps" in m for m in messages)
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert time.monotonic() - began < 5
    collect(0.5)
    assert "STOPPING=1" in messages
    stderr = proc.stderr.read() if proc.stderr else ""
    assert not re.search(r"^\d{4}-\d\d-\d\d ", stderr, re.M)  # journald adds the time itself


def signals_caught(pid: int) -> int:
    """The mask of signals the process has a handler for (/proc/PID/status SigCgt)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:  # it has ended
        return 0
    return next((int(ln.split()[1], 16) for ln in lines if ln.startswith("SigCgt:")), 0)


def test_a_sighup_while_starting_does_not_kill_the_daemon(bundle_dir: Path, tmp_path: Path) -> None:
    """`systemctl reload` (SIGHUP) while `edge-face run` is still loading: the process
    survives (SIGHUP's default action is to end it) and re-reads the gallery once ready."""
    import numpy as np
    from broker import free_port, wait_until
    from mjpeg import MjpegCamera

    camera = MjpegCamera(
        np.random.default_rng(1).integers(0, 255, (120, 160, 3), np.uint8), free_port()
    )
    camera.start()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EDGE_FACE_") or k == "EDGE_FACE_DATA"
    }
    env.update({"EDGE_FACE_CONFIG": "", "EDGE_FACE_MODEL_BUNDLE": str(bundle_dir),
                "EDGE_FACE_GALLERY_PATH": str(tmp_path / "gallery.db"), "EDGE_FACE_CAMERA_SOURCE": camera.url})  # fmt: skip
    log = tmp_path / "daemon.log"
    # SIGHUP's default action, as systemd starts a service with (a test run under nohup
    # would hand its ignored SIGHUP down, and the daemon rightly leaves an ignored one be)
    proc = subprocess.Popen([str(Path(sys.executable).with_name("edge-face")), "run", "--dry-run"],
                            env=env, stderr=log.open("wb"),
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))  # fmt: skip
    try:
        # Python's own SIGINT handler: the interpreter is up, the program's code about to run
        assert wait_until(
            lambda: proc.poll() is not None or bool(signals_caught(proc.pid) & 2), 10, 0.001
        )
        up = time.monotonic()
        for offset in (0.15, 0.3, 0.6):  # the daemon's own handler comes after a second or so
            time.sleep(max(0.0, up + offset - time.monotonic()))
            if proc.poll() is None:
                proc.send_signal(signal.SIGHUP)
        assert wait_until(
            lambda: proc.poll() is not None or "running: camera" in log.read_text(), 60
        )
        assert proc.poll() is None, (
            f"killed by signal {-(proc.returncode or 0)}: {log.read_text()[-2000:]}"
        )
        assert wait_until(lambda: log.read_text().count("gallery: 0 person(s)") >= 2, 10), (
            log.read_text()
        )
        assert "SIGHUP while starting" in log.read_text()
        proc.send_signal(signal.SIGHUP)  # and once running, as always
        assert wait_until(lambda: log.read_text().count("gallery: 0 person(s)") >= 3, 10), (
            log.read_text()[-3000:]
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        camera.stop()
