"""The fleet at scale, simulated: many devices (no camera, no encoder: each one the
daemon's own fleet thread, ``edge.fleet_sync.FleetSync``, on a real paho client and its
own gallery file) on one real mosquitto, with a realistic gallery (``--people`` x
``--embeddings`` random 128-d embeddings, as an encoder gives).

1. Device 0 holds the whole gallery and publishes it (one retained message a person).
2. The other ``--devices`` - 1 start at once with empty galleries and catch up.
3. One person is enrolled on device 0: time until every device holds them.
4. One person is removed on the last device: time until no device holds them.
5. A new device joins alone and catches up.

Measured: each step's time (the fleet thread looks at the gallery file once a second, so
a local change waits up to a second before it goes out), the broker's bytes received and
sent ($SYS), the retained store (messages and bytes, read back by a fresh subscriber).

    .venv/bin/python bench/fleet_sim.py [--devices 10] [--people 1000] [--embeddings 5]
        [--out bench/results/fleet.json]
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from report import edge_versions, machine, render, write_result

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

import broker as mq  # noqa: E402  (tests/integration/broker.py: a private mosquitto)

from edge.config import MqttConfig  # noqa: E402
from edge.fleet_sync import FleetSync  # noqa: E402
from edge.gallery import Gallery, Sample  # noqa: E402
from edge.sinks.mqtt_client import configured_client  # noqa: E402

KEY = b"fleet-simulation-secret-0123456789"
ENC = "sim-encoder-128"
DIM = 128


class Device:
    def __init__(self, n: int, broker: mq.Broker, home: Path) -> None:
        self.name, self.path = f"dev{n:03d}", home / f"dev{n:03d}.db"
        Gallery(self.path).close()  # the file and its schema
        cfg = MqttConfig(host=broker.host, port=broker.port, device_id=self.name)
        self.client = configured_client(cfg, f"sim-{self.name}", None)
        self.sync = FleetSync(self.client, "edge-face", "sim", self.name, self.path, ENC, KEY,
                              discovery=False)  # fmt: skip
        self.client.on_connect = lambda *_: self.sync.on_connected()

    def start(self, broker: mq.Broker) -> None:
        self.sync.start()
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.sync.close()
        self.client.disconnect()
        self.client.loop_stop()

    def people(self) -> int:
        with sqlite3.connect(self.path, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM people").fetchone()[0])

    def holds(self, name: str) -> bool:
        with sqlite3.connect(self.path, timeout=5) as conn:
            return (
                conn.execute("SELECT 1 FROM people WHERE name = ?", (name,)).fetchone() is not None
            )


def vectors(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return list(v / np.linalg.norm(v, axis=1, keepdims=True))


def until(predicate: Any, timeout: float) -> float:
    """Seconds until ``predicate`` holds (polled every 0.1 s); inf past ``timeout``."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if predicate():
            return time.perf_counter() - t0
        time.sleep(0.1)
    return float("inf")


def broker_bytes(broker: mq.Broker) -> dict[str, int]:
    listener = mq.Listener(broker, ["$SYS/broker/bytes/#", "$SYS/broker/retained messages/count"])
    until(lambda: len(listener.messages) >= 3, 5)
    listener.close()
    return {m.topic.rsplit("/", 1)[-1]: int(m.payload) for m in listener.messages}


def retained_store(broker: mq.Broker) -> dict[str, int]:
    listener = mq.Listener(broker, ["edge-face/fleet/#"])
    time.sleep(2.0)
    listener.close()
    kept = [m for m in listener.messages if m.retain]
    return {"messages": len(kept), "bytes": sum(len(m.payload) + len(m.topic) for m in kept)}


def run(devices: int, people: int, embeddings: int) -> dict[str, Any]:
    logging.getLogger("edge").setLevel(logging.WARNING)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        broker = mq.Broker(home / "broker")
        broker.conf.write_text(
            broker.conf.read_text() + "sys_interval 1\nmax_queued_messages 100000\n"
        )
        broker.start()
        fleet = [Device(n, broker, home) for n in range(devices)]
        with Gallery(fleet[0].path) as g:
            for p in range(people):
                g.add(
                    f"person {p:05d}",
                    [Sample(v, ENC, "sim", 50.0) for v in vectors(rng, embeddings)],
                )
        out: dict[str, Any] = {"devices": devices, "people": people, "embeddings": embeddings}
        fleet[0].start(broker)
        out["publish_s"] = until(lambda: retained_store_count(broker) >= people, 600)
        t0 = time.perf_counter()
        for d in fleet[1:]:
            d.start(broker)
        done: dict[str, float] = {}

        def caught_up() -> bool:
            for d in fleet[1:]:
                if d.name not in done and d.people() >= people:
                    done[d.name] = time.perf_counter() - t0
            return len(done) == devices - 1

        until(caught_up, 900)
        out["catch_up_all_s"] = {
            "median": statistics.median(done.values()),
            "max": max(done.values()),
        }
        out["after_catch_up"] = broker_bytes(broker)

        with Gallery(fleet[0].path) as g:
            g.add("newcomer", [Sample(v, ENC, "sim", 50.0) for v in vectors(rng, embeddings)])
        out["enroll_converged_s"] = until(lambda: all(d.holds("newcomer") for d in fleet), 120)
        with Gallery(fleet[-1].path) as g:
            g.remove("person 00000")
        out["remove_converged_s"] = until(
            lambda: not any(d.holds("person 00000") for d in fleet), 120
        )

        late = Device(devices, broker, home)
        t0 = time.perf_counter()
        late.start(broker)
        out["late_device_catch_up_s"] = until(lambda: late.people() >= people, 600)
        fleet.append(late)
        out["retained"] = retained_store(broker)
        out["broker"] = broker_bytes(broker)
        for d in fleet:
            d.stop()
        broker.stop()
    return out


def retained_store_count(broker: mq.Broker) -> int:
    """How many retained messages the broker holds ($SYS; only the fleet's here)."""
    return broker_bytes(broker).get("count", 0)


def table(r: dict[str, Any]) -> str:
    mb = 1e6
    rows = [
        ["gallery", f"{r['people']} people x {r['embeddings']} embeddings"],
        ["device 0 publishes the gallery", f"{r['publish_s']:.1f} s"],
        [f"{r['devices'] - 1} devices catch up at once",
         f"median {r['catch_up_all_s']['median']:.1f} s, last {r['catch_up_all_s']['max']:.1f} s"],
        ["an enrollment reaches every device", f"{r['enroll_converged_s']:.1f} s"],
        ["a removal reaches every device", f"{r['remove_converged_s']:.1f} s"],
        ["a new device catches up alone", f"{r['late_device_catch_up_s']:.1f} s"],
        ["retained store", f"{r['retained']['messages']} messages, {r['retained']['bytes'] / mb:.2f} MB"],
        ["broker bytes received / sent (whole run)",
         f"{r['broker'].get('received', 0) / mb:.1f} MB / {r['broker'].get('sent', 0) / mb:.1f} MB"],
    ]  # fmt: skip
    return render([f"{r['devices']} devices, one mosquitto", ""], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--embeddings", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "fleet.json")
    args = parser.parse_args()
    result = run(args.devices, args.people, args.embeddings)
    result |= {"command": " ".join(sys.argv), "machine": machine(), "versions": edge_versions()}
    print(table(result))
    write_result(args.out, result)


if __name__ == "__main__":
    main()
