"""The broker and the disk under the daemon (bench/faults.py): broker restarts in a loop,
a network partition, a power cut while events wait in the outbox (and the stale mark of
the events that waited), a full disk."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import faults_lab as lab_
from faults_lab import Daemon, Lab, LoopCamera, Row, TimedListener, mq, tally, wait_until

logger = logging.getLogger("faults")


@dataclass
class Setup:
    work: Path
    broker: mq.Broker
    listener: TimedListener
    camera: LoopCamera
    daemon: Daemon
    proxy: mq.Proxy | None


@contextmanager
def running(
    lab: Lab,
    name: str,
    *,
    proxy: bool = False,
    persistent: bool = False,
    outbox: Path | None = None,
    gallery: Path | None = None,
    **env: str,
) -> Iterator[Setup]:
    """A broker, a subscriber (on the broker itself), the looped camera and the daemon
    (through a TCP relay when ``proxy``); everything stopped at the end. The daemon is
    not started: ``start_daemon``."""
    work = lab.dir(name)
    broker = mq.Broker(work / "broker", persistence=persistent)
    if persistent:  # the subscriber's session and its queued messages survive a kill -9
        with broker.conf.open("a") as conf:
            conf.write("autosave_interval 1\n")
    broker.start()
    relay = mq.Proxy(broker) if proxy else None
    listener = TimedListener(broker, client_id=f"faults-{name}", clean_session=not persistent)
    camera = LoopCamera(lab.jpegs, lab_.free_port())
    camera.start()
    port = relay.port if relay is not None else broker.port
    daemon = Daemon(
        lab.env(outbox or work / "outbox.db", port, camera.url, gallery, **env), work, "daemon"
    )
    try:
        if persistent:
            time.sleep(1.5)  # the subscription saved by the broker before any kill
        yield Setup(work, broker, listener, camera, daemon, relay)
    finally:
        daemon.kill9()
        if relay is not None:
            relay.cut()
        listener.close()
        camera.stop()
        broker.stop()


def start_daemon(daemon: Daemon, camera: LoopCamera, listener: TimedListener, row: Row) -> bool:
    daemon.start()
    ok = daemon.wait_running()
    camera.rewind()
    ok = ok and wait_until(lambda: bool(listener.events()), 45)
    if not row.check("the daemon runs and delivers its first event", ok):
        row.note(daemon.last_text()[-1500:])
    return ok


def drain(daemon: Daemon, listener: TimedListener, timeout: float = 30.0) -> None:
    """Wait until every event produced so far was delivered (or ``timeout``)."""
    wait_until(lambda: tally(daemon, listener)["lost"] == 0, timeout, 0.25)


def stop(daemon: Daemon, row: Row) -> None:
    """SIGTERM; the exit status is noted here and judged in the suite's "sigterm" row."""
    rc, took = daemon.terminate()
    row.note(f"SIGTERM at the end: status {rc} after {took:.1f} s")


def broker_restarts(lab: Lab, cycles: int = 3, down_s: float = 6.0, up_s: float = 8.0) -> Row:
    row = Row(
        "broker_restarts",
        "Broker restarts in a loop",
        f"mosquitto killed (SIGKILL) and started again on the same port {cycles} times, "
        f"{down_s:.0f} s down and {up_s:.0f} s up each time, while the daemon runs on the "
        "looped clip; the subscriber keeps a persistent session (mosquitto persistence, "
        "autosave every second) so that it misses nothing the broker accepted",
        "no event lost (events wait in the outbox and go out after each reconnect, "
        "duplicates allowed: at least once); the daemon stays up",
        recover_what="broker back to first event delivered, worst cycle",
    )
    with running(lab, "broker-restarts", persistent=True) as run:
        broker, listener, daemon = run.broker, run.listener, run.daemon
        if not start_daemon(daemon, run.camera, listener, row):
            return row
        waits: list[float | None] = []
        for cycle in range(1, cycles + 1):
            assert broker.proc is not None
            broker.proc.kill()
            broker.proc.wait()
            logger.info("  cycle %d/%d: broker killed", cycle, cycles)
            time.sleep(down_s)
            broker.start()
            back = time.monotonic()
            time.sleep(up_s)
            waits.append(listener.first_event_after(back))
            logger.info(
                "  cycle %d/%d: broker back; first event %s s later", cycle, cycles, waits[-1]
            )
        drain(daemon, listener)
        row.check("the daemon stayed up through every restart", daemon.alive())
        stop(daemon, row)
        row.counts(tally(daemon, listener))
        row.check("an event delivered after every restart", all(w is not None for w in waits))
        done = [w for w in waits if w is not None]
        row.recover_s = max(done) if done else None
        row.note(f"broker back -> first event delivered, per cycle: {waits} s")
        row.note(
            f"reconnects logged by the daemon: {daemon.count('reconnected to the MQTT broker')}"
        )
    return row


def partition(lab: Lab, seconds: float = 15.0) -> Row:
    row = Row(
        "partition",
        "Network partition",
        f"the daemon reaches the broker through a TCP relay (tests/integration/broker.py "
        f"Proxy) that silently drops everything the daemon sends for {seconds:.0f} s "
        "(a dead link: no reset, no error; keep-alive 5 s), then relays again",
        "both sides notice within about 1.5 keep-alives (the broker publishes the Last "
        "Will offline); events made meanwhile wait and are delivered after the link "
        "heals; nothing lost",
        recover_what="link healed to first event delivered",
    )
    with running(lab, "partition", proxy=True) as run:
        listener, daemon, proxy = run.listener, run.daemon, run.proxy
        assert proxy is not None
        if not start_daemon(daemon, run.camera, listener, row):
            return row
        time.sleep(3)
        proxy.blackhole()
        began = time.monotonic()
        logger.info("  link dropped for %.0f s", seconds)
        time.sleep(seconds)
        proxy.dropping = False
        healed = time.monotonic()
        logger.info("  link healed")
        wait_until(lambda: listener.first_event_after(healed) is not None, 60)
        drain(daemon, listener)
        availability = listener.on_topic(lab_.AVAILABILITY)
        will = [
            a.t - began for a in availability if a.payload == b"offline" and began <= a.t <= healed
        ]
        online = [a.t - healed for a in availability if a.payload == b"online" and a.t >= healed]
        row.note(
            "Last Will offline published "
            + (f"{will[0]:.1f} s into the partition" if will else "never during the partition")
        )
        row.note(
            "availability online again "
            + (f"{online[0]:.1f} s after the link healed" if online else "never")
        )
        row.check("the broker noticed the dead link (Last Will offline)", bool(will))
        row.recover_s = listener.first_event_after(healed)
        row.check("an event delivered after the link healed", row.recover_s is not None)
        row.check("the daemon stayed up", daemon.alive())
        stop(daemon, row)
        row.counts(tally(daemon, listener))
    return row


def _iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def outbox_power_cut(lab: Lab, down_s: float = 10.0, max_age_s: float = 8.0) -> tuple[Row, Row]:
    row = Row(
        "power_cut_outbox",
        "Power cut (kill -9) while events wait in the outbox",
        f"the broker becomes unreachable for the daemon (the relay refuses connections); "
        f"after {down_s:.0f} s of queued events the daemon is killed with SIGKILL, started "
        f"again (broker still unreachable), killed again after {down_s:.0f} s more, started "
        "a third time; then the broker is reachable again",
        "the outbox file passes SQLite's integrity check after each kill; every event "
        "that was in it is delivered after the restart; nothing lost",
        recover_what="broker reachable to first queued event delivered",
    )
    stale = Row(
        "stale",
        "Stale events (issue 29 item 3)",
        f"the same run with [mqtt] event_max_age_s = {max_age_s:.0f}: events that waited "
        "in the outbox (across the two kills) longer than that",
        'delivered marked "stale": true with their age_s; events delivered at once are not marked',
    )
    with running(
        lab, "power-cut-outbox", proxy=True, EDGE_FACE_MQTT_EVENT_MAX_AGE_S=str(max_age_s)
    ) as run:
        listener, daemon, camera, proxy = run.listener, run.daemon, run.camera, run.proxy
        assert proxy is not None
        outbox = Path(daemon.env["EDGE_FACE_MQTT_OUTBOX"])
        if not start_daemon(daemon, camera, listener, row):
            return row, stale
        proxy.cut()
        logger.info("  broker unreachable; events queue")
        queued: list[str] = []
        for kill in (1, 2):
            time.sleep(down_s)
            daemon.kill9()
            queued, check = lab_.outbox_ids(outbox)
            row.check(f"outbox integrity after kill {kill}: {check}", check == "ok")
            row.note(f"kill {kill}: {len(queued)} events in the outbox")
            logger.info("  kill -9 number %d: %d events waiting", kill, len(queued))
            daemon.start()
            if kill == 1:
                daemon.wait_running()
                camera.rewind()
        proxy.resume()
        back = time.monotonic()
        logger.info("  broker reachable again")

        def got() -> set[str]:
            return {str(e["event_id"]) for _a, e in listener.events()}

        wait_until(lambda: set(queued) <= got(), 60, 0.25)
        all_s = time.monotonic() - back
        missing = set(queued) - got()
        row.check(
            f"every event left in the outbox by the last kill delivered ({len(queued) - len(missing)} of {len(queued)})",
            not missing,
        )
        row.check("events were waiting in the outbox at the kills", len(queued) > 0)
        row.recover_s = listener.first_event_after(back)
        row.note(
            f"all {len(queued)} queued events delivered {all_s:.1f} s after the broker came back"
        )
        row.note(
            f"the second start (broker unreachable) took {daemon.seconds_to_running(2)} s from its first log line to 'running'"
        )
        drain(daemon, listener)
        stop(daemon, row)
        row.counts(tally(daemon, listener))
        _stale_checks(stale, listener, max_age_s)
    return row, stale


def _stale_checks(row: Row, listener: TimedListener, max_age_s: float) -> None:
    seen: set[str] = set()
    marked = fresh = wrong = 0
    for arrival, event in listener.events():
        if event["event_id"] in seen:
            continue
        seen.add(str(event["event_id"]))
        waited = arrival.wall - _iso(str(event["time"]))
        is_stale = bool(event.get("stale"))
        if waited > max_age_s + 1.5:
            marked += is_stale
            wrong += not is_stale
        elif waited < max_age_s - 1.5:
            fresh += not is_stale
            wrong += is_stale
        if is_stale and "age_s" not in event:
            wrong += 1
    row.produced, row.delivered = None, None
    row.note(
        f"{marked} events delivered marked stale after waiting, {fresh} delivered fresh unmarked, {wrong} marked wrongly"
    )
    row.check("events that waited longer than event_max_age_s came marked stale", marked > 0)
    row.check("no event marked wrongly (fresh marked, or waited and unmarked)", wrong == 0)


def _fill(path: Path) -> int:
    """Write ``path`` until the file system is full; the bytes written."""
    written = 0
    block = b"\0" * (1 << 20)
    with path.open("wb", buffering=0) as fh:
        for size in (1 << 20, 1 << 12, 1):
            chunk = block[:size]
            while True:
                try:
                    fh.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
                written += size
    return written


def disk_full(lab: Lab, full_s: float = 15.0, after_s: float = 12.0, size_mb: int = 40) -> Row:
    row = Row(
        "disk_full",
        "Disk full (issue 29 item 4)",
        f"the gallery and the outbox on a {size_mb} MB tmpfs of their own; while the daemon "
        f"runs, a file fills it to the last byte for {full_s:.0f} s, then is deleted",
        "events go to the broker directly while it is up (none lost), the status says "
        '"outbox_ok": false; once space is back, events go through the outbox again',
        recover_what="space freed to first event delivered",
    )
    if os.geteuid() != 0:
        row.error = "not run: mounting a tmpfs needs root"
        return row
    mount = lab.root / "disk-full-fs"
    mount.mkdir(exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        row.error = f"not run: cannot mount a tmpfs ({done.stderr.strip()})"
        return row
    try:
        gallery = lab_.copy_db(lab.gallery, mount / "gallery.db")
        with running(lab, "disk-full", outbox=mount / "outbox.db", gallery=gallery) as run:
            listener, daemon = run.listener, run.daemon
            if not start_daemon(daemon, run.camera, listener, row):
                return row
            time.sleep(2)
            filler = mount / "filler"
            written = _fill(filler)
            full = time.monotonic()
            row.note(
                f"disk filled: {written / 2**20:.1f} MB written, {os.statvfs(mount).f_bavail} blocks left"
            )
            time.sleep(full_s)
            during = [a for a, _e in listener.events() if full <= a.t]
            flagged = listener.first_status_after(full, "outbox_ok", False)
            directly = daemon.count("sent directly")
            filler.unlink()
            freed = time.monotonic()
            time.sleep(after_s)
            drain(daemon, listener)
            again = daemon.count("sent directly") - directly
            row.check(
                f"events go through the outbox again once space is back ({again} more 'sent directly')",
                again == 0,
            )
            row.note(
                f"{len(during)} events delivered while the disk was full; {daemon.count('sent directly')} logged 'sent directly', {daemon.count('is not there: lost')} 'lost'"
            )
            row.check("events delivered while the disk was full", len(during) > 0)
            row.check(
                f'status "outbox_ok": false while full ({flagged} s after the disk filled)',
                flagged is not None,
            )
            back = listener.first_status_after(freed, "outbox_ok", True)
            row.note(
                'status "outbox_ok" after space was freed: '
                + (
                    f"true again after {back} s"
                    if back is not None
                    else f"still false {after_s:.0f} s later"
                )
            )
            row.recover_s = listener.first_event_after(freed)
            row.check("events delivered after space was freed", row.recover_s is not None)
            row.check("the daemon stayed up", daemon.alive())
            stop(daemon, row)
            row.counts(tally(daemon, listener))
    finally:
        for _ in range(3):
            if (
                subprocess.run(["umount", str(mount)], capture_output=True, check=False).returncode
                == 0
            ):
                break
            time.sleep(1)
        else:
            with contextlib.suppress(OSError):
                subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)
    return row
