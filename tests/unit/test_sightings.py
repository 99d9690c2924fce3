"""The sightings store (issue 25) on real SQLite files: listing, bounds by age and size,
and purges that leave no copy of a crop or an embedding in the file or its WAL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.decision import FaceQuality
from edge.sightings import Sighting, SightingsError, SightingStore

T0 = 1_800_000_000.0


def sighting(i: int, *, t: float = T0, person: str | None = None, crop: bytes = b"") -> Sighting:
    vector = np.full(8, i + 0.5, np.float32)
    return Sighting(
        time=t, camera="door", track_id=i, decision="recognized" if person else "unknown",
        person=person, distance=0.4, tau=0.8, encoder_id="enc-1", vector=vector,
        crop=crop or f"JPEG-CROP-{i:04d}".encode() * 10, quality=FaceQuality(80.0, 120.0, 0.1),
    )  # fmt: skip


def file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def test_add_list_get(tmp_path: Path) -> None:
    with SightingStore(tmp_path / "s.db") as store:
        a = store.add(sighting(1))
        b = store.add(sighting(2, t=T0 + 60, person="Alice"))
        assert [s.id for s in store.list()] == [a, b]
        assert [s.id for s in store.list(unknown=True)] == [a]
        assert [s.id for s in store.list(since=T0 + 30)] == [b]
        [got] = store.get([b])
        assert got.person == "Alice" and got.crop == sighting(2).crop
        assert got.quality == FaceQuality(80.0, 120.0, 0.1)
        assert got.vector is not None and np.array_equal(got.vector, sighting(2).vector)
        with pytest.raises(SightingsError, match="no sighting 99"):
            store.get([b, 99])
    assert (tmp_path / "s.db").stat().st_mode & 0o777 == 0o600


def test_old_sightings_expire_and_leave_no_trace(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SightingStore(path, retention_days=1) as store:
        store.add(sighting(1, t=T0))
        store.add(sighting(2, t=T0 + 3600))
        store.add(sighting(3, t=T0 + 2 * 86400))  # the first two are now over a day old
        assert [s.track_id for s in store.list()] == [3]
        data = file_bytes(path)
    assert b"JPEG-CROP-0001" not in data and b"JPEG-CROP-0002" not in data
    assert sighting(1).vector.tobytes() not in data
    assert b"JPEG-CROP-0003" in data


def test_the_store_keeps_to_its_size_oldest_first(tmp_path: Path) -> None:
    crop = bytes(400_000)  # 0.4 MB each: a 1 MB store keeps two
    with SightingStore(tmp_path / "s.db", max_mb=1.0) as store:
        for i in range(5):
            store.add(sighting(i, t=T0 + i, crop=crop + bytes([i])))
        assert [s.track_id for s in store.list()] == [3, 4]
        rows, size = store.size()
        assert rows == 2 and size <= 1_000_000


def test_purge_by_person_or_all(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with SightingStore(path) as store:
        store.add(sighting(1, person="Alice"))
        store.add(sighting(2, person="Bob"))
        store.add(sighting(3))
        assert store.purge("alice") == 1
        assert {s.person for s in store.list()} == {"Bob", None}
        assert b"JPEG-CROP-0001" not in file_bytes(path)
        assert store.purge() == 2
        assert store.list() == []
    assert b"JPEG-CROP" not in file_bytes(path)
