"""A Pi owner's first hour (issue 30), through the real CLI as a subprocess, on the committed
bundle models/edge-face-dlib-cut and real LFW photos: quiet output, the enrollment guard,
remove's confirmation and --json, read-only verbs that create nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration]

NOISE = ("INFO", "TensorFlow", "XNNPACK", "[ WARN", "oneDNN", "absl")


@pytest.fixture
def env(tmp_path: Path, repo_root: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_FACE_")}
    return keep | {
        "EDGE_FACE_MODEL_BUNDLE": str(repo_root / "models" / "edge-face-dlib-cut"),
        "EDGE_FACE_GALLERY_PATH": str(tmp_path / "lib" / "gallery.db"),
        "EDGE_FACE_CONFIG": "",
        "EDGE_FACE_DATA": os.environ.get("EDGE_FACE_DATA", str(repo_root.parent / "shared/faces")),
    }


def edge_face(env: dict[str, str], *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "edge", *args],
        capture_output=True, text=True, timeout=180, env=env, **kw,
    )  # fmt: skip


@pytest.fixture
def person(face_data: Path) -> list[Path]:
    """Six photos of one person."""
    return sorted((face_data / "lfw" / "Abdullah_Gul").glob("*.jpg"))[:6]


def test_cli_verbs_print_results_not_library_noise(env: dict[str, str], person: list[Path]) -> None:
    runs = {
        "enroll": edge_face(env, "enroll", "Abdullah", str(person[0])),
        "identify": edge_face(env, "identify", str(person[2])),
        "people": edge_face(env, "people"),
        "verify": edge_face(env, "verify", str(person[2]), str(person[3])),
    }
    for verb, out in runs.items():
        assert out.returncode == 0, (verb, out.stderr)
        noisy = [line for line in out.stderr.splitlines() if any(n in line for n in NOISE)]
        assert not noisy, (verb, noisy)
    assert "Abdullah" in runs["identify"].stdout and "same person" in runs["verify"].stdout
    # -v shows the progress logs: the check above can see them when they are there
    loud = edge_face(env, "-v", "identify", str(person[2]))
    assert "INFO edge.bundle" in loud.stderr


def test_enrolling_a_face_of_another_enrolled_person_is_refused(
    env: dict[str, str], person: list[Path], tmp_path: Path
) -> None:
    """The same face under a second name (here the same photo, renamed: the mistake a
    user makes) is refused with the enrolled person's name and the distance."""
    first = edge_face(env, "enroll", "Abdullah", str(person[0]), str(person[1]))
    assert first.returncode == 0, first.stderr
    # more photos of the same person are welcome
    more = edge_face(env, "enroll", "Abdullah", str(person[3]))
    assert more.returncode == 0, more.stdout
    alice = tmp_path / "alice.jpg"
    alice.write_bytes(person[1].read_bytes())
    again = edge_face(env, "enroll", "Alice", str(alice), "--json")
    assert again.returncode == 1, again.stdout
    report = json.loads(again.stdout)
    assert report["stored"] == 0
    assert "looks like Abdullah" in report["photos"][0]["reason"]
    assert "distance" in report["photos"][0]["reason"]
    people = json.loads(edge_face(env, "people", "--json").stdout)
    assert [p["name"] for p in people] == ["Abdullah"]
    forced = edge_face(env, "enroll", "Alice", str(alice), "--force")
    assert forced.returncode == 0 and "1 face(s) enrolled for Alice" in forced.stdout


def on_a_terminal(env: dict[str, str], answer: str, *args: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin and type ``answer``."""
    primary, secondary = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge", *args],
            stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
        )  # fmt: skip
        os.write(primary, answer.encode())
        out, _ = proc.communicate(timeout=120)
        return proc.returncode, out
    finally:
        os.close(primary)
        os.close(secondary)


def test_remove_asks_on_a_terminal_and_needs_yes_without_one(
    env: dict[str, str], person: list[Path]
) -> None:
    assert edge_face(env, "enroll", "Abdullah", str(person[0])).returncode == 0
    script = edge_face(env, "remove", "Abdullah")
    assert script.returncode == 2 and "pass --yes" in script.stderr
    code, out = on_a_terminal(env, "n\n", "remove", "Abdullah")
    assert code == 1 and "for good? [y/N]" in out and "nothing removed" in out
    assert "Abdullah" in edge_face(env, "people").stdout
    code, out = on_a_terminal(env, "y\n", "remove", "Abdullah")
    assert code == 0 and "removed Abdullah and 1 face embedding(s)" in out
    assert edge_face(env, "enroll", "Abdullah", str(person[0])).returncode == 0
    done = edge_face(env, "remove", "Abdullah", "--yes", "--json")
    assert json.loads(done.stdout) == {"name": "Abdullah", "removed": True, "embeddings": 1}
    missing = edge_face(env, "remove", "Nobody", "--yes")
    assert missing.returncode == 1 and "no person named 'Nobody'" in missing.stderr


def test_read_only_verbs_create_no_files(env: dict[str, str], tmp_path: Path) -> None:
    for args in (("people",), ("people", "--json"), ("remove", "X", "--yes"), ("rename", "X", "Y")):
        out = edge_face(env, *args)
        assert "Traceback" not in out.stderr
    assert json.loads(edge_face(env, "people", "--json").stdout) == []
    assert not (tmp_path / "lib").exists()
