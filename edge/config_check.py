"""Checks of a parsed config against the machine: files that must exist and be readable.

``parse_config`` only checks values; ``check-config`` (and systemd's ``ExecStartPre``) also
runs these, so a service with a missing password file fails before it starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from edge.config import Config
from edge.errors import ConfigError
from edge.secrets import mqtt_password


@dataclass(frozen=True, slots=True)
class CheckReport:
    problems: list[str] = field(default_factory=list)  # the service cannot start
    notes: list[str] = field(default_factory=list)  # worth knowing, not fatal


def check_config(config: Config, env: Mapping[str, str] | None = None) -> CheckReport:
    env = os.environ if env is None else env
    report = CheckReport()
    try:
        mqtt_password(config.mqtt, env)
    except ConfigError as exc:
        report.problems.extend(exc.problems)
    if config.mqtt.password_file is not None and config.mqtt.username is None:
        report.notes.append("[mqtt] password_file is set but username is not: it is ignored")
    for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
        path = getattr(config.mqtt, key)
        if path is not None and not path.is_file():
            report.problems.append(f"[mqtt] {key}: no such file: {path}")
        if path is not None and not config.mqtt.tls:
            report.notes.append(f"[mqtt] {key} is set but tls = false: it is ignored")
    if (config.mqtt.tls_cert_file is None) != (config.mqtt.tls_key_file is None):
        report.problems.append(
            "[mqtt] tls_cert_file and tls_key_file go together: set both or neither"
        )
    if not (config.model.bundle / "manifest.json").is_file():
        report.notes.append(
            f"[model] bundle: no model bundle at {config.model.bundle} yet "
            "(build one with `model-export build --out DIR`)"
        )
    if not config.gallery.path.parent.is_dir():
        report.notes.append(
            f"[gallery] path: the folder {config.gallery.path.parent} does not exist yet"
        )
    return report
