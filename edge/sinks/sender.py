"""The outbox pump: sends waiting rows in id order and deletes each one on its PUBACK.

It runs in its own thread and knows MQTT only through three calls from the client's
callbacks (:meth:`OutboxSender.connected`, :meth:`disconnected`, :meth:`acked`) and one
function it calls, ``publish(item) -> mid | None``: the message id when the client holds
the message (sent now, or kept and sent again by the client after a reconnect), None when
the client did not take it (tried again later). A ``ValueError`` from ``publish`` means the
row can never be sent (a bad topic): it is logged and deleted.

At most ``window`` rows are unacknowledged at a time; nothing is handed over while
disconnected. After a reconnect the client first sends again what it holds (paho keeps
unacknowledged QoS 1 messages across reconnects), so the sender waits for those PUBACKs
before it sends newer rows; if they do not come within ``resend_after`` seconds it
forgets them and sends those rows again itself (a duplicate rather than a loss).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from edge.sinks.outbox import Outbox, OutboxItem

logger = logging.getLogger(__name__)

WINDOW = 10
RESEND_AFTER_S = 15.0

Publish = Callable[[OutboxItem], int | None]


class OutboxSender:
    def __init__(
        self,
        outbox: Outbox,
        publish: Publish,
        *,
        window: int = WINDOW,
        resend_after: float = RESEND_AFTER_S,
    ) -> None:
        self.outbox = outbox
        self._publish = publish
        self._window = max(1, window)
        self._resend_after = resend_after
        self._connected = False
        self._generation = 0  # grows on every connect
        self._stop = False
        self._wake = threading.Event()
        self._acks: deque[int] = deque()  # acknowledged message ids, from the client's thread
        self._inflight: dict[int, int] = {}  # message id -> outbox id (this thread only)
        self._last_sent = 0  # the highest outbox id handed over
        self._thread = threading.Thread(target=self._run, name="mqtt-outbox", daemon=True)

    # called from other threads
    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def connected(self) -> None:
        self._generation += 1  # before `_connected`: the new connection must be seen
        self._connected = True
        self._wake.set()

    def disconnected(self) -> None:
        self._connected = False
        self._wake.set()

    def acked(self, mid: int) -> None:
        self._acks.append(mid)
        self._wake.set()

    # the sender's thread
    def _run(self) -> None:
        seen, carried, since, failing = 0, set[int](), 0.0, False
        while not self._stop:
            self._wake.wait(1.0)
            self._wake.clear()
            try:
                self._take_acks()
                connected, generation = self._connected, self._generation
                if generation != seen:  # the client sends what it holds again, first
                    seen, carried, since = generation, set(self._inflight), time.monotonic()
                carried &= self._inflight.keys()
                if connected and carried and time.monotonic() - since > self._resend_after:
                    logger.warning(
                        "no PUBACK for %d resent events: sending them again", len(carried)
                    )
                    self._last_sent = min(self._inflight[mid] for mid in carried) - 1
                    self._inflight.clear()
                    carried = set()
                if connected and not carried and not self._stop:
                    self._fill_window()
                failing = False
            except Exception:
                if not failing:
                    logger.exception("cannot send the outbox (retrying every second)")
                failing = True
                time.sleep(1.0)

    def _take_acks(self) -> None:
        while self._acks:
            mid = self._acks.popleft()
            item_id = self._inflight.get(mid)
            if item_id is None:
                continue  # not an event (availability, state) or already forgotten
            try:
                self.outbox.ack(item_id)
            except Exception:
                self._acks.appendleft(mid)
                raise
            del self._inflight[mid]

    def _fill_window(self) -> None:
        room = self._window - len(self._inflight)
        if room <= 0:
            return
        for item in self.outbox.pending(room, after=self._last_sent):
            try:
                mid = self._publish(item)
            except ValueError as exc:
                logger.error("outbox message %d cannot be sent (%s): dropped", item.id, exc)
                self.outbox.ack(item.id)
                self._last_sent = item.id
                continue
            if mid is None:
                return
            self._inflight[mid] = item.id
            self._last_sent = item.id
