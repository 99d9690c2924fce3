"""Secrets: the MQTT password (``[mqtt] password_file``) and the fleet key
(``[fleet] key_file``), each from its file or a systemd credential.

Never from the command line or the config file itself, and never logged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from edge.config import MqttConfig
from edge.config_fleet import FleetConfig
from edge.errors import ConfigError

#: the name of the credential in the unit's ``LoadCredential=mqtt_password:...``
CREDENTIAL_NAME = "mqtt_password"


#: the fleet key's credential: ``LoadCredential=fleet_key:...``
FLEET_CREDENTIAL = "fleet_key"
MIN_FLEET_KEY = 16  # characters


def _credential_path(env: Mapping[str, str], name: str = CREDENTIAL_NAME) -> Path | None:
    directory = env.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return None
    path = Path(directory) / name
    return path if path.is_file() else None


def mqtt_password(mqtt: MqttConfig, env: Mapping[str, str] | None = None) -> str | None:
    """The password, or None when none is configured. The first line of the file is used,
    without its line ending."""
    env = os.environ if env is None else env
    path = mqtt.password_file or _credential_path(env)
    if path is None:
        return None
    if mqtt.password_file is None and path.stat().st_size == 0:
        return None  # the unit's credential file exists but is empty: no password
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            [
                f"[mqtt] password_file: cannot read {path}: {reason} "
                "(check the path and that the service user may read it)"
            ]
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                f"[mqtt] password_file: {path} is not UTF-8 text (byte {exc.start}): write "
                "the password as plain text on the file's first line"
            ]
        ) from exc
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise ConfigError([f"[mqtt] password_file: {path} is empty"])
    return lines[0]


def fleet_key(config: FleetConfig, env: Mapping[str, str] | None = None) -> bytes:
    """The fleet's shared secret (the first line of ``key_file`` or of the systemd
    credential ``fleet_key``); a ConfigError says what is wrong."""
    env = os.environ if env is None else env
    path = config.key_file or _credential_path(env, FLEET_CREDENTIAL)
    if path is None:
        raise ConfigError(["[fleet] key_file: not set (and no systemd credential fleet_key): "
                           "every device of the fleet needs the same secret, e.g. "
                           "`head -c 32 /dev/urandom | base64 > /etc/edge-face/fleet.key`"])  # fmt: skip
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"[fleet] key_file: cannot read {path}: {exc}"]) from exc
    secret = lines[0].strip() if lines else ""
    if len(secret) < MIN_FLEET_KEY:
        raise ConfigError([f"[fleet] key_file: {path} holds {len(secret)} characters, at least "
                           f"{MIN_FLEET_KEY} needed (a random secret: head -c 32 /dev/urandom | base64)"])  # fmt: skip
    return secret.encode()
