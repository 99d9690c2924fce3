"""The configuration: TOML parsed by a pure function into frozen dataclasses.

Every key has a default (documented in the project's ``config.toml``). Unknown keys, wrong
types and out-of-range values are errors that name the file and the dotted key. Any key can
be overridden by an environment variable ``EDGE_FACE_<SECTION>_<KEY>``. Relative paths are
resolved against the directory of the config file. Secrets are never part of the config:
the MQTT password is read from ``password_file`` or a systemd credential (see ``secrets``).
"""

from __future__ import annotations

import re
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import field, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic.dataclasses import dataclass

from edge.config_errors import format_validation_error, unknown_section
from edge.config_fleet import FleetConfig
from edge.config_sightings import SightingsConfig
from edge.errors import ConfigError

ENV_PREFIX = "EDGE_FACE_"
CONFIG_ENV = "EDGE_FACE_CONFIG"
DEFAULT_PATHS = (Path("/etc/edge-face/config.toml"),)
_STRICT = ConfigDict(extra="forbid")
_TOPIC_PART = re.compile(r"^[A-Za-z0-9_\-./]+$")
_DEVICE_ID = re.compile(r"^[A-Za-z0-9_\-]+$")


def _hostname_id() -> str:
    return re.sub(r"[^A-Za-z0-9_\-]", "-", socket.gethostname()) or "edge-face"


@dataclass(frozen=True, config=_STRICT)
class CameraConfig:
    source: Annotated[
        int | str,
        Field(description="a V4L2 device number, a file or folder path, or an rtsp/http URL"),
    ] = 0

    @field_validator("source")
    @classmethod
    def _source(cls, v: int | str) -> int | str:
        if isinstance(v, str) and v.strip().isdigit():
            return int(v.strip())  # from an environment variable
        if isinstance(v, int) and v < 0:
            raise ValueError(f"expected a device number >= 0, got {v}")
        if isinstance(v, str) and not v.strip():
            raise ValueError("expected a device number, a path or a URL, got an empty string")
        return v

    name: Annotated[str, Field(min_length=1, max_length=64)] = "camera"
    max_fps: Annotated[float, Field(ge=0, le=120)] = 0.0
    min_face: Annotated[int, Field(ge=8, le=1000)] = 40
    zones: list[list[tuple[float, float]]] = field(default_factory=list)

    @field_validator("zones")
    @classmethod
    def _zones(cls, v: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
        for i, polygon in enumerate(v, 1):
            if len(polygon) < 3:
                raise ValueError(f"zone {i}: expected at least 3 [x, y] points, got {len(polygon)}")
            for x, y in polygon:
                if not (0 <= x <= 1 and 0 <= y <= 1):
                    raise ValueError(
                        f"zone {i}: point [{x:g}, {y:g}] is outside the frame: "
                        "give x and y as shares of the width and height, 0-1"
                    )
        return v


@dataclass(frozen=True, config=_STRICT)
class PipelineConfig:
    schedule: bool = True
    max_embeds_per_s: Annotated[float, Field(ge=0, le=1000)] = 8.0
    recheck_s: Annotated[float, Field(ge=0, le=60)] = 0.1
    identity_check_s: Annotated[float, Field(ge=0, le=3600)] = 2.0
    unknown_check_s: Annotated[float, Field(ge=0, le=3600)] = 0.5
    motion_gate: bool = True
    detect_fps: Annotated[float, Field(ge=0, le=1000)] = 10.0


@dataclass(frozen=True, config=_STRICT)
class ModelConfig:
    bundle: Path = Path("/var/lib/edge-face/bundle")
    public_key: Path | None = None  # set: only a bundle signed with this key is run


@dataclass(frozen=True, config=_STRICT)
class GalleryConfig:
    path: Path = Path("/var/lib/edge-face/gallery.db")


@dataclass(frozen=True, config=_STRICT)
class RecognitionConfig:
    tau: Annotated[float, Field(gt=0, le=4)] | None = None
    strangers_accepted: Annotated[float, Field(gt=0, lt=0.5)] = 0.01
    margin: Annotated[float, Field(ge=0, le=2)] | None = None
    min_sharpness: Annotated[float, Field(ge=0, le=10000)] = 10.0
    max_yaw: Annotated[float, Field(gt=0, le=100)] = 0.5


@dataclass(frozen=True, config=_STRICT)
class TrackingConfig:
    iou: Annotated[float, Field(gt=0, lt=1)] = 0.3
    k: Annotated[int, Field(ge=1, le=100)] = 3
    n: Annotated[int, Field(ge=1, le=100)] = 5
    unknown_after: Annotated[int, Field(ge=0, le=1000)] = 8
    cooldown_s: Annotated[float, Field(ge=0, le=86400)] = 60.0
    unknown_cooldown_s: Annotated[float, Field(ge=0, le=86400)] = 10.0
    max_missed: Annotated[int, Field(ge=1, le=1000)] = 10


@dataclass(frozen=True, config=_STRICT)
class MqttConfig:
    host: Annotated[str, Field(min_length=1)] = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    topic_prefix: str = "edge-face"
    device_id: str = field(default_factory=_hostname_id)
    username: str | None = None
    password_file: Path | None = None
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    keepalive: Annotated[int, Field(ge=5, le=3600)] = 60
    include_crop: bool = False
    status_interval_s: Annotated[float, Field(ge=1, le=3600)] = 30.0
    discovery: bool = True
    outbox: Path = Path("/var/lib/edge-face/outbox.db")
    outbox_max: Annotated[int, Field(ge=10, le=10_000_000)] = 10000
    event_max_age_s: Annotated[float, Field(ge=0, le=31_536_000)] = 60.0

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not _TOPIC_PART.match(v) or v.startswith("/") or v.endswith("/"):
            raise ValueError(
                f"expected letters, digits, '_', '-', '.' or inner '/', got {v!r} "
                "(no MQTT wildcards '+' '#', no leading or trailing '/')"
            )
        return v

    @field_validator("device_id")
    @classmethod
    def _device(cls, v: str) -> str:
        if not v:
            return _hostname_id()
        if not _DEVICE_ID.match(v):
            raise ValueError(f"expected letters, digits, '_' or '-', got {v!r}")
        return v


@dataclass(frozen=True, config=_STRICT)
class LoggingConfig:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


@dataclass(frozen=True, config=_STRICT)
class Config:
    camera: CameraConfig = field(default_factory=CameraConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    gallery: GalleryConfig = field(default_factory=GalleryConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    sightings: SightingsConfig = field(default_factory=SightingsConfig)
    fleet: FleetConfig = field(default_factory=FleetConfig)
    source: Path | None = None  # the file it was read from; None for built-in defaults


#: section name -> its dataclass
SECTIONS: dict[str, Any] = {f.name: f.default_factory for f in fields(Config) if f.name != "source"}
_ADAPTER = TypeAdapter(Config)


def env_overrides(
    env: Mapping[str, str],
) -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], str]]:
    """Collect ``EDGE_FACE_<SECTION>_<KEY>`` variables: the values by section and key, and
    the variable name of each (for messages). Variables whose section is not a config
    section (``EDGE_FACE_CONFIG``, ``EDGE_FACE_DATA``) are not config keys and are left
    alone. An empty value unsets a key."""
    values: dict[str, dict[str, str]] = {}
    names: dict[tuple[str, str], str] = {}
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX):
            continue
        section, _, key = var[len(ENV_PREFIX) :].lower().partition("_")
        if section not in SECTIONS or not key:
            continue
        values.setdefault(section, {})[key] = value
        names[(section, key)] = var
    return values, names


def parse_config(
    text: str,
    *,
    filename: str = "config.toml",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Parse TOML text (plus environment overrides) into a :class:`Config`.

    A pure function: it reads no file. Raises :class:`ConfigError` listing every problem.
    """
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError; also a number of more
        # than 4300 digits (int()'s limit) and arrays or tables nested past the stack
        why = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise ConfigError([f"{filename}: not valid TOML: {why}"]) from exc
    problems: list[str] = []
    for key, value in list(data.items()):
        if key not in SECTIONS or not isinstance(value, dict):
            problems.append(unknown_section(filename, key, value, list(SECTIONS)))
            del data[key]
    overrides, env_names = env_overrides(env or {})
    for section, keys in overrides.items():
        table = data.setdefault(section, {})
        for key, value in keys.items():
            if value == "":
                table.pop(key, None)
            else:
                table[key] = value
    for section, key in [(s, k) for s, t in data.items() for k, v in t.items() if _holds_nul(v)]:
        var = env_names.get((section, key))  # no path, host or name holds a NUL
        where = f"environment variable {var}" if var else filename
        problems.append(f"{where}: [{section}] {key}: a NUL character (\\u0000) is not allowed")
    if problems:
        raise ConfigError(problems)
    try:
        config = _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, filename, env_names, SECTIONS)) from exc
    return _resolve_paths(config, base_dir)


def _holds_nul(value: Any) -> bool:
    if isinstance(value, dict):
        value = list(value.values())
    return any(map(_holds_nul, value)) if isinstance(value, list) else "\0" in str(value)


def _resolve_paths(config: Config, base_dir: Path | None) -> Config:
    """Make relative paths absolute against the config file's directory."""
    if base_dir is None:
        return config

    def fix(obj: Any) -> Any:
        changes = {}
        for f in fields(obj):
            value = getattr(obj, f.name)
            if isinstance(value, Path) and not value.is_absolute():
                changes[f.name] = (base_dir / value).resolve()
        return replace(obj, **changes)

    return replace(config, **{name: fix(getattr(config, name)) for name in SECTIONS})


def find_config_file(path: Path | None, env: Mapping[str, str]) -> Path | None:
    """The file to read: ``--config``, else ``$EDGE_FACE_CONFIG``, else the systemd
    configuration directory, else ``/etc/edge-face/config.toml``; None when none exists."""
    if path is not None:
        return path
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    candidates = list(DEFAULT_PATHS)
    if env.get("CONFIGURATION_DIRECTORY"):
        candidates.insert(0, Path(env["CONFIGURATION_DIRECTORY"].split(":")[0]) / "config.toml")
    return next((p for p in candidates if p.is_file()), None)


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Find, read and parse the configuration. A named file that is missing is an error;
    with no file at all the built-in defaults (plus environment overrides) apply."""
    env = {} if env is None else env
    found = find_config_file(path, env)
    if found is None:
        return parse_config("", env=env)  # no file: a problem names its environment variable
    try:
        text = found.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            [f"{found}: no such file (give --config PATH or set {CONFIG_ENV})"]
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{found}: cannot read: {exc}"]) from exc
    config = parse_config(text, filename=str(found), base_dir=found.parent.resolve(), env=env)
    return replace(config, source=found.resolve())
