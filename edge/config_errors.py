"""Turn pydantic's validation errors into one line per bad key, in the user's terms:
``config.toml: [mqtt] port: expected an integer 1-65535, got "abc"``."""

from __future__ import annotations

import difflib
import json
import types
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types as at
from pydantic import ValidationError
from pydantic.fields import FieldInfo

_SECRET_HINT = (
    "the password is never written in the config: put it in a file and set "
    "[mqtt] password_file, or give systemd the credential 'mqtt_password'"
)


def _show(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _range(metadata: list[Any]) -> str:
    lo = hi = None
    lo_open = hi_open = False
    for m in metadata:
        if isinstance(m, at.Ge):
            lo = m.ge
        elif isinstance(m, at.Gt):
            lo, lo_open = m.gt, True
        elif isinstance(m, at.Le):
            hi = m.le
        elif isinstance(m, at.Lt):
            hi, hi_open = m.lt, True
    if lo is not None and hi is not None and not lo_open and not hi_open:
        return f" {lo}-{hi}"
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {hi}")
    return (" " + " and ".join(parts)) if parts else ""


def describe(annotation: Any, metadata: list[Any] | None = None) -> str:
    """What a value of this type looks like, for the message 'expected ...'."""
    metadata = list(metadata or [])
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        infos = [m for m in extra if isinstance(m, FieldInfo)]
        if any(i.description for i in infos):
            return next(i.description for i in infos if i.description)
        for info in infos:
            metadata.extend(info.metadata)
        return describe(base, metadata + [m for m in extra if not isinstance(m, FieldInfo)])
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        text = " or ".join(describe(a, metadata) for a in options)
        return text + (
            " (or leave the key out)" if len(options) < len(typing.get_args(annotation)) else ""
        )
    if origin is Literal:
        return "one of " + ", ".join(_show(a) for a in typing.get_args(annotation))
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an integer" + _range(metadata)
    if annotation is float:
        return "a number" + _range(metadata)
    if annotation is Path:
        return "a path (a string)"
    if annotation is str:
        return "a string"
    return str(annotation)


def _field(section_cls: Any, key: str) -> FieldInfo | None:
    return getattr(section_cls, "__pydantic_fields__", {}).get(key)


def unknown_section(filename: str, key: str, value: Any, sections: list[str]) -> str:
    if not isinstance(value, dict):
        return (
            f"{filename}: {key}: a key outside any section; keys belong in a section "
            f"({', '.join('[' + s + ']' for s in sections)})"
        )
    near = difflib.get_close_matches(key, sections, n=1)
    hint = f" (did you mean [{near[0]}]?)" if near else ""
    return f"{filename}: [{key}]: unknown section{hint}; sections: {', '.join(sections)}"


def _unknown_key(section: str, key: str, section_cls: Any) -> str:
    if section == "mqtt" and key == "password":
        return f"unknown key: {_SECRET_HINT}"
    valid = list(getattr(section_cls, "__pydantic_fields__", {}))
    near = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    return f"unknown key{hint}; valid keys in [{section}]: {', '.join(valid)}"


def format_validation_error(
    exc: ValidationError,
    filename: str,
    env_names: dict[tuple[str, str], str],
    sections: dict[str, Any],
) -> list[str]:
    """One line per bad key (pydantic reports a union's failure once per member)."""
    lines: dict[tuple[str, str], str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        section, key = ([*loc, "", ""])[:2]
        if (section, key) in lines:
            continue
        section_cls = sections.get(section)
        if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            what = _unknown_key(section, key, section_cls)
        elif err["type"] == "value_error":
            what = err["msg"].removeprefix("Value error, ")
        else:
            info = _field(section_cls, key)
            expected = describe(info.annotation, info.metadata) if info else err["msg"]
            if info is not None and info.description:
                expected = info.description
            what = f"expected {expected}, got {_show(err.get('input'))}"
        origin = env_names.get((section, key))
        where = f"environment variable {origin}" if origin else filename
        lines[(section, key)] = f"{where}: [{section}] {key}: {what}"
    return list(lines.values())
