"""Fleet replication's logic on real gallery files, without a broker: the messages, their
authentication, versions and convergence (tests/integration/test_fleet.py runs daemons on
a real mosquitto)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.fleet_codec import Change, FleetMessageError, Version, decode, encode, person_key
from edge.fleet_store import apply, confirm, local_changes, pending, records
from edge.gallery import Gallery, Sample

KEY = b"a-fleet-secret-of-enough-length"
ENC = "enc-1"
ROOT = "edge-face/fleet/home/gallery"


def sample(*xs: float) -> Sample:
    return Sample(np.asarray(xs, np.float32), ENC, "photo.jpg", 50.0)


def topic(change: Change) -> str:
    return f"{ROOT}/{change.key}"


def through_the_wire(change: Change, key: bytes = KEY) -> Change:
    return decode(encode(change, key, topic(change)), KEY, topic(change))


@pytest.fixture
def galleries(tmp_path: Path):  # type: ignore[no-untyped-def]
    with Gallery(tmp_path / "a.db") as a, Gallery(tmp_path / "b.db") as b:
        yield a, b


def test_an_enrollment_travels_and_is_not_sent_back(galleries) -> None:  # type: ignore[no-untyped-def]
    a, b = galleries
    a.add("Alice", [sample(1, 0), sample(0.9, 0.1)])
    [change] = local_changes(a, KEY, "dev-a", ENC)
    assert change.op == "put" and change.version == Version(1, "dev-a") and change.name == "Alice"
    assert change.key == person_key(KEY, "alice")  # names ignore case
    assert local_changes(a, KEY, "dev-a", ENC) == []  # nothing new
    assert apply(b, through_the_wire(change), ENC, KEY) == "applied"
    matrix = b.matrix(ENC)
    assert matrix.names == ["Alice"] and np.allclose(matrix.vectors, [[1, 0], [0.9, 0.1]])
    assert local_changes(b, KEY, "dev-b", ENC) == []  # applied, not mistaken for B's own change
    assert apply(b, through_the_wire(change), ENC, KEY) == "older"  # again: idempotent
    assert [p.name for p in b.people()] == ["Alice"]


def test_a_removal_travels_as_a_tombstone_and_leaves_no_bytes(galleries, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, b = galleries
    a.add("Zebulon Quux", [sample(1, 0)])
    apply(b, through_the_wire(local_changes(a, KEY, "dev-a", ENC)[0]), ENC, KEY)
    a.remove("Zebulon Quux")
    [tomb] = local_changes(a, KEY, "dev-a", ENC)
    assert tomb.op == "delete" and tomb.version == Version(2, "dev-a") and tomb.name is None
    wire = encode(tomb, KEY, topic(tomb))
    assert b"Zebulon" not in wire  # a tombstone names nobody
    assert apply(b, decode(wire, KEY, topic(tomb)), ENC, KEY) == "removed"
    assert b.people() == []
    data = b"".join(p.read_bytes() for p in tmp_path.glob("b.db*"))
    assert b"Zebulon" not in data


def test_a_rename_is_a_removal_and_an_enrollment(galleries) -> None:  # type: ignore[no-untyped-def]
    a, b = galleries
    a.add("Bob", [sample(0, 1)])
    apply(b, through_the_wire(local_changes(a, KEY, "dev-a", ENC)[0]), ENC, KEY)
    a.rename("Bob", "Robert")
    changes = local_changes(a, KEY, "dev-a", ENC)
    assert sorted(c.op for c in changes) == ["delete", "put"]
    for change in changes:
        apply(b, through_the_wire(change), ENC, KEY)
    assert [p.name for p in b.people()] == ["Robert"]


def test_two_devices_editing_one_person_converge(galleries) -> None:  # type: ignore[no-untyped-def]
    a, b = galleries
    a.add("Carol", [sample(1, 1)])
    b.add("Carol", [sample(2, 2)])
    [from_a] = local_changes(a, KEY, "dev-a", ENC)
    [from_b] = local_changes(b, KEY, "dev-b", ENC)
    assert from_a.version.counter == from_b.version.counter == 1  # at once: a tie
    apply(a, through_the_wire(from_b), ENC, KEY)
    apply(b, through_the_wire(from_a), ENC, KEY)
    # the tie goes to the larger device id, on both devices
    assert a.matrix(ENC).vectors.tolist() == b.matrix(ENC).vectors.tolist() == [[2.0, 2.0]]
    held = [
        {k: (r.version, r.digest, r.deleted) for k, r in records(g.conn).items()} for g in (a, b)
    ]
    assert held[0] == held[1]


def test_pending_until_the_broker_sends_it_back(galleries) -> None:  # type: ignore[no-untyped-def]
    a, _ = galleries
    a.add("Dan", [sample(1, 2)])
    [change] = local_changes(a, KEY, "dev-a", ENC)
    assert [c.version for c in pending(a)] == [change.version]
    assert apply(a, through_the_wire(change), ENC, KEY) == "older"  # our own, back
    confirm(a, change.key, change.version)
    assert pending(a) == []


def test_another_encoder_is_kept_out_and_never_removed(galleries) -> None:  # type: ignore[no-untyped-def]
    a, b = galleries
    a.add("Eve", [Sample(np.ones(3, np.float32), "enc-2", "x", 1.0)])
    [change] = local_changes(a, KEY, "dev-a", "enc-2")
    assert apply(b, through_the_wire(change), ENC, KEY) == "other encoder"
    assert b.people() == [] and local_changes(b, KEY, "dev-b", ENC) == []


@pytest.mark.parametrize("how", ["another key", "another topic", "a changed byte", "no mac"])
def test_a_message_without_the_key_is_refused(how: str) -> None:
    change = Change(person_key(KEY, "Mallory"), Version(9, "evil"), "put", "Mallory", ENC,
                    (through_the_wire_embedding(),))  # fmt: skip
    wire, where = encode(change, KEY, topic(change)), topic(change)
    if how == "another key":
        wire = encode(change, b"not-the-fleet-key-at-all", where)
    elif how == "another topic":
        where = f"{ROOT}/{person_key(KEY, 'Alice')}"
    elif how == "a changed byte":
        wire = wire.replace(b"Mallory", b"Mallorz", 1)
    else:
        wire = wire.rpartition(b"\n")[0]
    with pytest.raises(FleetMessageError):
        decode(wire, KEY, where)


def through_the_wire_embedding():  # type: ignore[no-untyped-def]
    from edge.fleet_codec import Embedding

    return Embedding(np.ones(2, np.float32), "x", 1.0)


def test_the_fleet_key_is_checked_with_a_clear_message(tmp_path: Path) -> None:
    from edge.config import parse_config
    from edge.config_check import check_config

    short = tmp_path / "short.key"
    short.write_text("tiny\n")
    for fleet, expected in [
        ("enabled = true", "not set (and no systemd credential fleet_key)"),
        (f'enabled = true\nkey_file = "{short}"', "holds 4 characters, at least 16 needed"),
        (f'enabled = true\nkey_file = "{tmp_path / "none"}"', "cannot read"),
    ]:
        config = parse_config(f"[fleet]\n{fleet}\n")
        problems = check_config(config, env={}).problems
        assert any(expected in p for p in problems), problems
    assert not any("fleet" in p for p in check_config(parse_config(""), env={}).problems)
    (tmp_path / "cred").mkdir()
    (tmp_path / "cred" / "fleet_key").write_text("x" * 32)
    config = parse_config("[fleet]\nenabled = true\n")
    assert not any(
        "fleet" in p
        for p in check_config(
            config, env={"CREDENTIALS_DIRECTORY": str(tmp_path / "cred")}
        ).problems
    )


def test_fleet_status_says_what_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from edge.cli import main

    for k in [k for k in __import__("os").environ if k.startswith("EDGE_FACE_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("EDGE_FACE_CONFIG", "")
    monkeypatch.setenv("EDGE_FACE_GALLERY_PATH", str(tmp_path / "g.db"))
    off = CliRunner().invoke(main, ["fleet", "status"])
    assert off.exit_code == 2 and "[fleet] is not enabled" in off.output
    (tmp_path / "k").write_text("k" * 20)
    monkeypatch.setenv("EDGE_FACE_FLEET_ENABLED", "true")
    monkeypatch.setenv("EDGE_FACE_FLEET_KEY_FILE", str(tmp_path / "k"))
    monkeypatch.setenv("EDGE_FACE_MQTT_PORT", "1")  # nothing listens there
    down = CliRunner().invoke(main, ["fleet", "status", "--json", "--wait", "0.2"])
    assert down.exit_code == 1 and "cannot reach the MQTT broker" in down.output


class FakeClient:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bool]] = []

    def message_callback_add(self, *_: object) -> None:
        pass

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        self.sent.append((topic, payload, retain))


def test_last_seen_sensors_follow_the_gallery_and_the_recognitions(tmp_path: Path) -> None:
    import json

    from edge.fleet_sync import FleetSync
    from edge.types import BBox, RecognitionEvent

    client = FakeClient()
    sync = FleetSync(client, "edge-face", "home", "porch", tmp_path / "g.db", ENC, KEY)
    with Gallery(tmp_path / "g.db") as g:
        g.add("Alice", [sample(1, 0)])
        sync._announce(g)
        key = person_key(KEY, "Alice")
        [(topic, config, retain)] = client.sent
        assert topic == f"homeassistant/sensor/edge_face_home_{key}/last_seen/config" and retain
        assert json.loads(config)["state_topic"] == f"edge-face/fleet/home/seen/{key}"
        sync._announce(g)
        assert len(client.sent) == 1  # announced once
        event = RecognitionEvent("e1", "recognized", "Alice", 0.3, 0.5, "door", 1,
                                 BBox(0, 0, 1, 1), 3, 1_700_000_000.0)  # fmt: skip
        sync.seen(event)
        sync.seen(
            RecognitionEvent("e2", "unknown", None, 0.9, 0.5, "door", 2, BBox(0, 0, 1, 1), 9, 0.0)
        )
        topic, seen, retain = client.sent[-1]
        assert topic == f"edge-face/fleet/home/seen/{key}" and retain and len(client.sent) == 2
        assert json.loads(seen) == {"person": "Alice", "where": "porch door", "device": "porch",
                                    "camera": "door", "time": "2023-11-14T22:13:20+00:00"}  # fmt: skip
        g.remove("Alice")
        sync._announce(g)
        assert [(t, p) for t, p, _ in client.sent[-2:]] == [
            (f"homeassistant/sensor/edge_face_home_{key}/last_seen/config", b""),
            (f"edge-face/fleet/home/seen/{key}", b""),
        ]  # fmt: skip


def test_an_update_from_the_fleet_keeps_this_devices_not_faces(galleries) -> None:  # type: ignore[no-untyped-def]
    a, b = galleries
    a.add("Fay", [sample(1, 0)])
    apply(b, through_the_wire(local_changes(a, KEY, "dev-a", ENC)[0]), ENC, KEY)
    b.add_impostor("Fay", np.asarray([0, 1], np.float32), ENC, "sighting 7")  # `not Fay` on B
    a.add("Fay", [sample(0.9, 0.1)])  # another photo of her, on A
    apply(b, through_the_wire(local_changes(a, KEY, "dev-a", ENC)[0]), ENC, KEY)
    matrix = b.matrix(ENC)
    assert len(matrix.vectors) == 2 and len(matrix.impostors) == 1
