"""Enroll, identify, verify, remove on real photos, through the CLI, with the real bundle
and a real SQLite gallery file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner, Result

from edge.cli import main
from edge.gallery import Gallery

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def env(bundle_dir: Path, tmp_path: Path) -> dict[str, str]:
    return {"EDGE_FACE_MODEL_BUNDLE": str(bundle_dir), "EDGE_FACE_GALLERY_PATH": str(tmp_path / "gallery.db"),
            "EDGE_FACE_CONFIG": ""}  # fmt: skip


def cli(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture
def knn(face_data: Path) -> Path:
    return face_data / "photos" / "ageitgey" / "knn_examples"


def enroll_knn(env: dict[str, str], knn: Path) -> None:
    for person in sorted((knn / "train").iterdir()):
        out = cli(env, "enroll", person.name, str(person))
        assert out.exit_code == 0, out.output


def test_identify_names_the_enrolled_and_not_the_strangers(
    env: dict[str, str], knn: Path, face_data: Path
) -> None:
    enroll_knn(env, knn)
    people = json.loads(cli(env, "people", "--json").stdout)
    assert {p["name"] for p in people} == {
        "alex_lacamoire",
        "biden",
        "kit_harington",
        "obama",
        "rose_leslie",
    }

    out = cli(env, "identify", str(knn / "test"), "--json")
    assert out.exit_code == 0, out.output
    named = {
        Path(r["image"]).name: sorted(f["person"] for f in r["faces"] if f["known"])
        for r in json.loads(out.stdout)
    }
    assert named["alex_lacamoire1.jpg"] == ["alex_lacamoire"]
    assert named["johnsnow_test1.jpg"] == ["kit_harington"]
    assert named["obama1.jpg"] == ["obama"]
    assert named["kit_with_rose.jpg"] == ["kit_harington", "rose_leslie"]
    assert {"obama", "biden"} <= set(named["obama_and_biden.jpg"])

    strangers = json.loads(
        cli(
            env, "identify", str(face_data / "photos" / "timesler" / "test_images"), "--json"
        ).stdout
    )
    assert len(strangers) == 4
    for r in strangers:
        assert r["faces"] and all(not f["known"] and f["person"] is None for f in r["faces"]), r


def test_verify_same_and_different(env: dict[str, str], face_data: Path) -> None:
    lfw = face_data / "lfw"
    same = cli(
        env,
        "verify",
        str(lfw / "Colin_Powell/Colin_Powell_0001.jpg"),
        str(lfw / "Colin_Powell/Colin_Powell_0002.jpg"),
        "--json",
    )
    assert same.exit_code == 0, same.output
    assert json.loads(same.stdout)["same"] is True
    diff = cli(
        env,
        "verify",
        str(lfw / "Colin_Powell/Colin_Powell_0001.jpg"),
        str(lfw / "Madonna/Madonna_0001.jpg"),
    )
    assert "different people" in diff.output


def test_bad_photos_are_refused_one_line_each(
    env: dict[str, str], knn: Path, tmp_path: Path
) -> None:
    good = cv2.imread(str(knn / "train" / "obama" / "obama.jpg"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "truncated.jpg").write_bytes((knn / "train" / "obama" / "obama.jpg").read_bytes()[:2000])
    (bad / "text.jpg").write_text("not an image at all")
    cv2.imwrite(str(bad / "tiny.png"), np.zeros((1, 1, 3), np.uint8))
    cv2.imwrite(str(bad / "huge.jpg"), np.full((9000, 12000, 3), 128, np.uint8))
    out = cli(env, "enroll", "Nobody", str(bad), "--json")
    assert out.exit_code == 1
    report = json.loads(out.stdout)
    assert (
        report["stored"] == 0
        and len(report["photos"]) == 4
        and not any(p["ok"] for p in report["photos"])
    )
    reasons = {Path(p["source"]).name: p["reason"] for p in report["photos"]}
    assert "not a JPEG, PNG, WebP, BMP, GIF or TIFF photo" in reasons["text.jpg"]
    assert reasons["tiny.png"] == "no face found"
    assert "12000x9000 pixels, more than" in reasons["huge.jpg"]  # refused before decoding
    assert reasons["truncated.jpg"]  # OpenCV decodes what it can: no face, or not an image
    assert json.loads(cli(env, "people", "--json").stdout) == []

    rgba = cv2.cvtColor(good, cv2.COLOR_BGR2BGRA)
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    cv2.imwrite(str(tmp_path / "grey.jpg"), cv2.cvtColor(good, cv2.COLOR_BGR2GRAY))
    ok = cli(env, "enroll", "Obama", str(tmp_path / "rgba.png"), str(tmp_path / "grey.jpg"))
    assert ok.exit_code == 0 and "2 face(s) enrolled" in ok.output
    same = cli(env, "enroll", "obama", str(tmp_path / "grey.jpg"))  # not merged silently
    assert same.exit_code == 1 and "only in case" in same.output
    forged = cli(env, "enroll", "Eve\nrecognized Alice", str(tmp_path / "grey.jpg"))
    assert forged.exit_code == 1 and "U+000A" in forged.output
    assert [p["name"] for p in json.loads(cli(env, "people", "--json").stdout)] == ["Obama"]
    # identify reads what it can, lists what it cannot, and exits 1
    shutil.copy(tmp_path / "grey.jpg", bad / "grey.jpg")
    found = cli(env, "identify", str(bad), "--json")
    assert found.exit_code == 1
    entries = {Path(e["image"]).name: e for e in json.loads(found.stdout)}
    assert entries["grey.jpg"]["faces"][0]["person"] == "Obama"
    assert "not a JPEG, PNG, WebP, BMP, GIF or TIFF photo" in entries["text.jpg"]["error"]


def test_several_faces_need_largest(env: dict[str, str], knn: Path) -> None:
    photo = str(knn / "test" / "kit_with_rose.jpg")
    refused = cli(env, "enroll", "Kit", photo)
    assert refused.exit_code == 1 and "2 faces found: use --largest" in refused.output
    assert cli(env, "enroll", "Kit", photo, "--largest").exit_code == 0


def test_enroll_waits_for_another_writer(env: dict[str, str], knn: Path) -> None:
    gallery_path = Path(env["EDGE_FACE_GALLERY_PATH"])
    Gallery(gallery_path).close()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, time, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
        "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); time.sleep(3); c.execute('COMMIT')"),
        str(gallery_path)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    started = time.monotonic()
    out = cli(env, "enroll", "Obama", str(knn / "train" / "obama"))
    holder.wait()
    assert out.exit_code == 0, out.output
    assert time.monotonic() - started >= 1.5  # it waited for the lock instead of failing


def test_kill_during_enrollment_leaves_a_consistent_gallery(
    env: dict[str, str], face_data: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "many"  # 708 photos (Colin Powell's 236, three times): ~10 s to enroll
    photos.mkdir()
    for i in range(3):
        for src in sorted((face_data / "lfw" / "Colin_Powell").glob("*.jpg")):
            (photos / f"{i}_{src.name}").symlink_to(src)
    full_env = {**os.environ, **env}
    for delay in (1.8, 3.0):  # loading takes ~1 s; each delay stops it mid-way
        proc = subprocess.Popen([sys.executable, "-m", "edge", "enroll", "Bush", str(photos)], env=full_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL  # it was killed mid-way, not finished
        Gallery(Path(env["EDGE_FACE_GALLERY_PATH"])).close()  # opens as the daemon would
        conn = sqlite3.connect(env["EDGE_FACE_GALLERY_PATH"])
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        orphans = conn.execute(
            "SELECT COUNT(*) FROM embeddings WHERE person_id NOT IN (SELECT id FROM people)"
        ).fetchone()[0]
        people = conn.execute("SELECT COUNT(*) FROM people").fetchone()[0]
        embeddings = conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        conn.close()
        assert orphans == 0 and (people, embeddings > 0) in {(0, False), (1, True)}


def test_remove_leaves_no_trace_in_the_file(env: dict[str, str], knn: Path) -> None:
    enroll_knn(env, knn)
    path = Path(env["EDGE_FACE_GALLERY_PATH"])
    with Gallery(path) as g:
        vectors = g.matrix().vectors
        names = g.matrix().names
        rose = vectors[[i for i, n in enumerate(g.matrix().owner) if names[n] == "rose_leslie"]]
    out = cli(env, "remove", "rose_leslie", "--yes")
    assert out.exit_code == 0 and "removed rose_leslie" in out.output
    data = b"".join(p.read_bytes() for p in path.parent.glob("gallery.db*"))
    assert b"rose_leslie" not in data
    for v in rose:
        assert v.astype("<f4").tobytes()[:32] not in data
    assert "rose_leslie" not in cli(env, "people").output


def test_enroll_from_the_camera(env: dict[str, str], face_data: Path) -> None:
    """The configured camera here is a recording (OpenCV reads it like a stream)."""
    clip = face_data / "videos" / "hamilton" / "short_hamilton_clip.mp4"
    out = cli(
        {**env, "EDGE_FACE_CAMERA_SOURCE": str(clip)},
        "enroll",
        "Lin",
        "--camera",
        "--frames",
        "3",
        "--json",
    )
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["stored"] == 3
    assert [p["source"].startswith("camera frame") for p in report["photos"] if p["ok"]] == [
        True
    ] * 3


def test_camera_that_cannot_be_opened(env: dict[str, str], tmp_path: Path) -> None:
    out = cli(
        {**env, "EDGE_FACE_CAMERA_SOURCE": str(tmp_path / "no-such-camera.mp4")},
        "enroll",
        "X",
        "--camera",
    )
    assert out.exit_code == 1 and "no such video file" in out.output
    url = cli({**env, "EDGE_FACE_CAMERA_SOURCE": "http://u:pw@127.0.0.1:9/none"}, "enroll", "X",
              "--camera")  # fmt: skip
    assert (
        url.exit_code == 1
        and "cannot open camera source 'http://u:***@127.0.0.1:9/none'" in url.output
    )
