"""What a failed connection to the MQTT broker means, and what to do about it.

Three kinds a user must tell apart, since only the first one fixes itself: the broker is
not there (yet), the broker refused the user name or password, the TLS handshake failed
(the broker's certificate is not signed by ``[mqtt] tls_ca_file``, or is not for
``[mqtt] host``). :class:`Problem` carries the kind (the sink logs one line per change of
kind, not per retry) and the line to log.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

from paho.mqtt.client import MQTT_LOG_ERR

from edge.config import MqttConfig

_paho_logger = logging.getLogger("edge.sinks.mqtt.paho")

#: CONNACK reasons (paho's names, MQTT 3.1.1 and 5) that mean the credentials were refused
CREDENTIAL_REASONS = frozenset({"Bad user name or password", "Not authorized"})
RETRYING = "retrying; events wait in the outbox"


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # "unreachable", "credentials", "refused", "tls-certificate", "tls"
    message: str
    is_config: bool  # only a change of the configuration (or of the broker's) fixes it


def refused(where: str, reason: object, config: MqttConfig) -> Problem:
    """The broker answered the CONNECT with ``reason`` (a paho ReasonCode) instead of
    accepting it."""
    name = str(reason)
    if name in CREDENTIAL_REASONS:
        who = f"user {config.username!r}" if config.username else "an anonymous client"
        fix = (
            "check [mqtt] username and the password in [mqtt] password_file (or the systemd "
            "credential mqtt_password), and the broker's password file and ACL"
            if config.username
            else "the broker wants a user name: set [mqtt] username and [mqtt] password_file"
        )
        return Problem(
            "credentials",
            f"the MQTT broker {where} refused the credentials of {who} ({name}): {fix}; {RETRYING}",
            True,
        )
    return Problem("refused", f"the MQTT broker {where} refused the connection ({name}); {RETRYING}",
                   False)  # fmt: skip


def connect_failed(where: str, error: BaseException | None, config: MqttConfig) -> Problem:
    """The connection (TCP, then TLS) failed with ``error`` (None when unknown)."""
    if isinstance(error, ssl.SSLCertVerificationError):
        detail = (error.verify_message or error.reason or str(error)).rstrip(".")
        ca = str(config.tls_ca_file) if config.tls_ca_file else "the system's CAs (no tls_ca_file)"
        return Problem(
            "tls-certificate",
            f"TLS certificate problem with the MQTT broker {where}: {detail}. Check that "
            f"[mqtt] tls_ca_file ({ca}) holds the CA that signed the broker's certificate, and "
            f"that [mqtt] host ({config.host!r}) is a name (or address) the certificate is "
            f"for; {RETRYING}",
            True,
        )
    if isinstance(error, ssl.SSLError):
        detail = (error.reason or str(error)).rstrip(".")
        return Problem(
            "tls",
            f"the TLS handshake with the MQTT broker {where} failed: {detail}. Check that the "
            f"broker speaks TLS on port {config.port} ([mqtt] tls, port), and [mqtt] "
            f"tls_cert_file / tls_key_file if it asks for a client certificate; {RETRYING}",
            True,
        )
    detail = f" ({error.strerror or error})" if isinstance(error, OSError) else ""
    return Problem("unreachable", f"cannot reach the MQTT broker {where}{detail}; {RETRYING}",
                   False)  # fmt: skip


def paho_log(_c: object, _u: object, level: int, text: str) -> None:
    """paho's own log lines, as DEBUG; its errors as warnings, except "Client is not
    connected", which paho 2.2 logs as an error on every failed retry."""
    loud = level == MQTT_LOG_ERR and not text.startswith("Client is not connected")
    _paho_logger.log(logging.WARNING if loud else logging.DEBUG, "%s", text)
