"""What the generated docs share: markdown tables, number formats, the run's systems."""

from __future__ import annotations

from typing import Any

import intervals

MB = 1024 * 1024


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def ci(r: dict[str, Any], digits: int = 2) -> str:
    """A rate with its 95% interval and its counts: '99.06% [98.61-99.37] (2001 of 2020)'."""
    return intervals.counted(r, digits)


def ms(s: dict[str, Any], digits: int = 1) -> str:
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}-{s['max']:.{digits}f}]"


def times(s: dict[str, Any]) -> str:
    return f"{s['median']:.1f}x [{s['min']:.1f}-{s['max']:.1f}]"


def labels(result: dict[str, Any]) -> dict[str, str]:
    return {s["key"]: s["label"] for s in result["systems"]}


def edge_keys(result: dict[str, Any]) -> list[str]:
    return [s["key"] for s in result["systems"] if s["kind"] == "edge"]


def peer_keys(result: dict[str, Any]) -> list[str]:
    return [s["key"] for s in result["systems"] if s["kind"] == "peer"]


def not_held_out(result: dict[str, Any], key: str) -> dict[str, str]:
    """domain -> why this system's figures there are not held out (a trained encoder)."""
    system = next(s for s in result["systems"] if s["key"] == key)
    notes: dict[str, str] = system.get("not_held_out") or {}
    return notes


def domains(result: dict[str, Any]) -> list[str]:
    return list(result["data"]["openset"])


DOMAIN_NAMES = {"lfw": "LFW", "cfp": "CFP", "cfp-profile": "CFP profiles"}
#: the open-set table's columns after the system's name
RULE_COLUMNS = ["rule", "tau", "margin", "DIR (named correctly)", "wrong name", "left unknown",
                "FPIR (strangers named)"]  # fmt: skip


def rule_row(name: str, rule: str, r: dict[str, Any]) -> list[str]:
    """One open-set table row: a system's rule with its tau, margin and the four rates."""
    return [name, rule, f"{r['tau']:.3f}", f"{r['margin']:g}",
            ci(r["dir"]), ci(r["wrong"]), ci(r["unknown"]), ci(r["fpir"])]  # fmt: skip
