"""systemd's notify protocol: READY=1, WATCHDOG=1, STATUS=..., STOPPING=1.

A datagram to ``$NOTIFY_SOCKET`` (a path, or an abstract socket when it starts with
'@'); a no-op when not run by systemd. Never raises: a lost notification must not stop
the service.
"""

from __future__ import annotations

import logging
import os
import socket

logger = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        self.address = ("\0" + address[1:]) if address and address.startswith("@") else address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) if self.address else None
        usec = os.environ.get("WATCHDOG_USEC")
        self.watchdog_s = int(usec) / 1e6 if usec and usec.isdigit() else None

    def send(self, message: str) -> None:
        if self._sock is None or self.address is None:
            return
        try:
            self._sock.sendto(message.encode(), self.address)
        except OSError as exc:
            logger.debug("sd_notify %r failed: %s", message, exc)

    def ready(self) -> None:
        self.send("READY=1")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def status(self, text: str) -> None:
        self.send(f"STATUS={text.replace(chr(10), ' ')}")

    def stopping(self) -> None:
        self.send("STOPPING=1")
