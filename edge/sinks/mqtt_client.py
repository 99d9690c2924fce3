"""A paho client set up from ``[mqtt]``: credentials and TLS, shared by the daemon's sink
and the CLI's short-lived clients (``edge-face fleet status``)."""

from __future__ import annotations

import logging
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import MqttConfig
from edge.errors import ConfigError
from edge.sinks.mqtt_problems import paho_log

logger = logging.getLogger(__name__)


def configured_client(cfg: MqttConfig, client_id: str, password: str | None) -> mqtt.Client:
    """A clean-session paho client with ``[mqtt]``'s username, password and TLS files;
    a ConfigError when the TLS files cannot be loaded."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.on_log = paho_log
    client.suppress_exceptions = True
    if cfg.username:
        client.username_pw_set(cfg.username, password)
    elif password:
        logger.warning("[mqtt] has a password but no username: the password is not sent")
    if cfg.tls:
        files = (cfg.tls_ca_file, cfg.tls_cert_file, cfg.tls_key_file)
        ca, cert, key = (str(f) if f else None for f in files)
        try:
            client.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
        except (OSError, ValueError, ssl.SSLError) as exc:
            raise ConfigError([f"[mqtt] tls: cannot load the TLS files: {exc}"]) from exc
    return client
