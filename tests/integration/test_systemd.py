"""The systemd unit and its installer: systemd-analyze verify and security (offline),
install.sh into a staging root (files, owners, modes), idempotence, dry run, uninstall."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MAX_EXPOSURE = 2.5


def sh(*cmd: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True)


@pytest.fixture(scope="module")
def stage(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.fail(
            "install.sh --root needs root and useradd (it creates the service user in the staging tree)"
        )
    root = tmp_path_factory.mktemp("stage")
    out = sh(repo_root / "systemd" / "install.sh", "--root", root)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return root


def staged_unit(repo_root: Path, stage: Path, tmp_path: Path) -> Path:
    """The unit with its /opt paths pointing into the staging tree, so systemd-analyze
    finds the executables it checks."""
    text = (
        (repo_root / "systemd" / "edge-face.service")
        .read_text()
        .replace("/opt/edge-face/venv", f"{stage}/opt/edge-face/venv")
    )
    unit = tmp_path / "edge-face.service"
    unit.write_text(text)
    return unit


def test_unit_verifies_and_its_exposure_is_low(
    repo_root: Path, stage: Path, tmp_path: Path
) -> None:
    unit = staged_unit(repo_root, stage, tmp_path)
    verify = sh("systemd-analyze", "verify", unit)
    assert verify.returncode == 0 and verify.stderr.strip() == "", verify.stderr
    security = sh("systemd-analyze", "security", "--offline=true", unit)
    score = re.search(r"Overall exposure level for edge-face.service: ([\d.]+)", security.stdout)
    assert score is not None, security.stdout[-1000:]
    print(f"systemd-analyze security: exposure {score.group(1)}")  # in the CI log
    assert float(score.group(1)) <= MAX_EXPOSURE


def test_install_lays_out_files_owners_and_modes(stage: Path) -> None:
    passwd = {
        line.split(":")[0]: line.split(":")
        for line in (stage / "etc/passwd").read_text().splitlines()
    }
    groups = {
        line.split(":")[0]: line.split(":")
        for line in (stage / "etc/group").read_text().splitlines()
    }
    user = passwd["edge-face"]
    assert user[6] == "/usr/sbin/nologin" and "edge-face" in groups["video"][3].split(",")

    def mode(p: str) -> int:
        return stat.S_IMODE((stage / p).stat().st_mode)

    assert mode("etc/edge-face") == 0o755 and mode("etc/edge-face/config.toml") == 0o644
    assert (
        mode("etc/edge-face/mqtt_password") == 0o600
        and (stage / "etc/edge-face/mqtt_password").stat().st_uid == 0
    )
    state = (stage / "var/lib/edge-face").stat()
    assert stat.S_IMODE(state.st_mode) == 0o700 and state.st_uid == int(user[2])
    assert mode("etc/systemd/system/edge-face.service") == 0o644
    assert (stage / "etc/systemd/system/multi-user.target.wants/edge-face.service").is_symlink()
    run = sh(
        stage / "opt/edge-face/venv/bin/edge-face",
        "--config",
        stage / "etc/edge-face/config.toml",
        "check-config",
    )
    assert run.returncode == 0, run.stderr


def test_second_run_keeps_the_config_and_uninstall_keeps_data(repo_root: Path, stage: Path) -> None:
    config = stage / "etc/edge-face/config.toml"
    config.write_text(config.read_text() + "\n# edited by the user\n")
    again = sh(repo_root / "systemd" / "install.sh", "--root", stage)
    assert again.returncode == 0 and "keeping the existing" in again.stdout
    assert config.read_text().endswith("# edited by the user\n")
    dry = sh(repo_root / "systemd" / "install.sh", "--root", stage, "--uninstall", "--dry-run")
    assert (
        dry.returncode == 0 and (stage / "opt/edge-face/venv").is_dir()
    )  # a dry run changes nothing
    gone = sh(repo_root / "systemd" / "install.sh", "--root", stage, "--uninstall")
    assert gone.returncode == 0, gone.stderr
    assert (
        not (stage / "opt/edge-face").exists()
        and not (stage / "etc/systemd/system/edge-face.service").exists()
    )
    assert config.is_file() and (stage / "var/lib/edge-face").is_dir()


def test_dry_run_prints_and_changes_nothing(repo_root: Path, tmp_path: Path) -> None:
    out = sh(repo_root / "systemd" / "install.sh", "--root", tmp_path / "never", "--dry-run")
    assert out.returncode == 0 and "+ useradd" in out.stdout and "systemctl --root" in out.stdout
    assert not (tmp_path / "never").exists()
