"""The real unit under a real systemd: a Debian bookworm container booted with
systemd-nspawn, edge-face installed in it by systemd/install.sh, the unit started by
systemd at boot with all its hardening, events published to a broker on the host.

The container tree is cached in build/nspawn-root (debootstrap, about a minute the
first time)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from broker import Broker, Listener, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def ensure_tools() -> None:
    if os.geteuid() != 0:
        pytest.fail("booting a container needs root")
    missing = [
        p
        for p, exe in (("systemd-container", "systemd-nspawn"), ("debootstrap", "debootstrap"))
        if not shutil.which(exe)
    ]
    if missing:  # a fresh machine: apt's lists may not be there yet
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *missing], check=True, capture_output=True
        )


def container_tree(repo: Path) -> Path:
    tree = repo / "build" / "nspawn-root"
    if not (tree / "usr/bin/python3").exists():
        shutil.rmtree(tree, ignore_errors=True)
        subprocess.run(["debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus,python3,python3-venv,python3-pip,ca-certificates",
                        "bookworm", str(tree), "http://deb.debian.org/debian"], check=True, capture_output=True)  # fmt: skip
    shutil.copyfile(
        "/etc/ssl/certs/ca-certificates.crt", tree / "etc/ssl/certs/ca-certificates.crt"
    )  # the host's CAs
    shutil.copyfile("/etc/resolv.conf", tree / "etc/resolv.conf")
    return tree


def nspawn(tree: Path, *args: str, boot: bool = False, binds: tuple[str, ...] = ()) -> list[str]:
    cmd = ["systemd-nspawn", "-D", str(tree), "--register=no", "--keep-unit", "--quiet"]
    cmd += [f"--bind-ro={b}" for b in binds]
    return [*cmd, "--boot"] if boot else [*cmd, *args]


def test_the_unit_boots_in_a_container_and_publishes(repo_root: Path, bundle_dir: Path, face_data: Path,
                                                     broker: Broker, tmp_path: Path) -> None:  # fmt: skip
    ensure_tools()
    tree = container_tree(repo_root)
    pip_cache = Path.home() / ".cache" / "pip"
    source = tmp_path / "src"  # a clean copy: pip builds in it
    shutil.copytree(
        repo_root,
        source,
        ignore=shutil.ignore_patterns("build", ".venv*", ".git", "*.egg-info", "__pycache__"),
    )
    install = subprocess.run(
        [*nspawn(tree), f"--bind={source}:/repo", f"--bind={pip_cache}:/root/.cache/pip", "env", "-i",
         "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
         "bash", "/repo/systemd/install.sh", "--package", "/repo"], capture_output=True, text=True)  # fmt: skip
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    (tree / "etc/edge-face/config.toml").write_text(
        '[camera]\nsource = "/data/videos/hamilton/short_hamilton_clip.mp4"\nname = "ns"\nmax_fps = 4\n'
        '[model]\nbundle = "/opt/bundle"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\ndevice_id = "nspawn"\nstatus_interval_s = 2\n'
    )
    binds = (f"{bundle_dir}:/opt/bundle", f"{face_data}:/data")
    enroll = subprocess.run([*nspawn(tree, binds=binds), "--user=edge-face", "/opt/edge-face/venv/bin/edge-face",
                             "--config", "/etc/edge-face/config.toml", "enroll", "Lin-Manuel Miranda",
                             "/data/videos/hamilton/reference/lin-manuel-miranda.png"], capture_output=True, text=True)  # fmt: skip
    assert enroll.returncode == 0, enroll.stdout + enroll.stderr
    listener = Listener(broker, ["edge-face/nspawn/#"])
    boot = subprocess.Popen(nspawn(tree, boot=True, binds=binds), stdout=(tmp_path / "boot.log").open("wb"),
                            stderr=subprocess.STDOUT)  # fmt: skip
    try:
        assert wait_until(
            lambda: b"online" in listener.payloads("edge-face/nspawn/availability"), 90
        ), (tmp_path / "boot.log").read_text(errors="replace")[-3000:]
        events = "edge-face/nspawn/events"
        assert wait_until(
            lambda: any(b"Lin-Manuel Miranda" in p for p in listener.payloads(events)), 60
        )
        assert wait_until(
            lambda: any(b'"embed"' in p for p in listener.payloads("edge-face/nspawn/status")), 30
        )
        status = json.loads(
            [p for p in listener.payloads("edge-face/nspawn/status") if b'"embed"' in p][-1]
        )
        assert (
            status["latency_ms"]["embed"]["p50"] < 100
        )  # the hardening leaves LiteRT its fast kernels
    finally:
        boot.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to power off
        boot.wait(60)
    assert wait_until(
        lambda: listener.payloads("edge-face/nspawn/availability")[-1:] == [b"offline"], 10
    )
    listener.close()
