"""edge-face on an emulated Raspberry Pi (arm64 Debian bookworm under qemu-user), installed
from PyPI's aarch64 wheels with ai-edge-litert and with tflite-runtime 2.14: the bundle
loads, faces embed like on x86 (within a quantization step or two), enroll + identify
work, and a message reaches a broker on this host. scripts/check_arm64.sh does it all;
about 6.5 minutes the first time (it builds and caches build/arm64-root), 2 after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest


def _cannot_run_arm64() -> str | None:
    """Why this machine cannot run foreign (arm64) binaries in a chroot, or None."""
    if not sys.platform.startswith("linux"):
        return "needs Linux (binfmt_misc, chroot)"
    if os.geteuid() != 0:
        return "needs root: binfmt_misc, mount and chroot (run as root, or sudo scripts/check_arm64.sh)"
    status = Path("/proc/self/status").read_text()
    cap_eff = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("CapEff:")), 16)
    if not cap_eff & (1 << 21):  # CAP_SYS_ADMIN: mount binfmt_misc and bind mounts
        return "root without CAP_SYS_ADMIN (an unprivileged container): cannot mount binfmt_misc"
    kernel_has_it = "binfmt_misc" in Path("/proc/filesystems").read_text() or any(
        Path("/lib/modules", os.uname().release).rglob("binfmt_misc.ko*")
    )
    if not kernel_has_it and os.uname().machine != "aarch64":
        return "this kernel has no binfmt_misc: it cannot run arm64 binaries through qemu"
    return None


REASON = _cannot_run_arm64()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.arm64,
    pytest.mark.skipif(REASON is not None, reason=REASON or ""),
]

TIMEOUT_S = 1100  # cold: about 6 minutes on 2 cores


def test_edge_face_runs_on_emulated_arm64(
    repo_root: Path, both_runtimes_bundle_dir: Path, face_data: Path
) -> None:
    env = {**os.environ, "EDGE_FACE_DATA": str(face_data)}
    script = repo_root / "scripts" / "check_arm64.sh"
    # Its own session, so a timeout can stop the whole run (the script's trap then
    # unmounts everything it mounted) rather than leaving a chroot'd process behind.
    proc = subprocess.Popen(
        ["bash", str(script), "--bundle", str(both_runtimes_bundle_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
        pytest.fail(f"check_arm64.sh took over {TIMEOUT_S} s:\n{output[-6000:]}")
    print(output[-4000:])  # the table and the timings, shown with -s or on failure
    assert proc.returncode == 0, output[-8000:]
    assert "arm64-litert" in output and "arm64-tflite" in output
