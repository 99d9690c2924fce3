"""Checks of a parsed config against the machine: files that must exist and be readable.

``parse_config`` only checks values; ``check-config`` (and systemd's ``ExecStartPre``) also
runs these, so a service with a missing password file, or a bundle that ``run`` would
refuse (a file that does not match its sha256, implausible thresholds, a missing or wrong
signature), fails before it starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from edge.bundle import BundleError, load_bundle
from edge.config import Config
from edge.errors import ConfigError
from edge.secrets import fleet_key, mqtt_password
from edge.signing import signature_key_id


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
    if config.fleet.enabled:
        try:
            fleet_key(config.fleet, env)
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
    _check_bundle(config, report)
    if not config.gallery.path.parent.is_dir():
        report.notes.append(
            f"[gallery] path: the folder {config.gallery.path.parent} does not exist yet"
        )
    return report


def _check_bundle(config: Config, report: CheckReport) -> None:
    """The bundle as ``run`` loads it: every file's sha256, the manifest's plausibility and,
    with ``[model] public_key``, its signature."""
    model = config.model
    if model.public_key is not None and not model.public_key.is_file():
        report.problems.append(f"[model] public_key: no such file: {model.public_key}")
        return
    if not (model.bundle / "manifest.json").is_file():
        report.notes.append(
            f"[model] bundle: no model bundle at {model.bundle} yet "
            "(install one with `edge-face bundle install DIR|TARBALL`)"
        )
        return
    try:
        load_bundle(model.bundle, public_key=model.public_key)
    except BundleError as exc:
        report.problems.append(f"[model] bundle: {exc}")
        return
    if model.public_key is None and signature_key_id(model.bundle) is not None:
        report.notes.append(
            f"[model] bundle is signed (key {signature_key_id(model.bundle)}) but "
            "public_key is not set: the signature is not checked"
        )
