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
    """One open-set table row: a system's rule with its tau (with a tau per face: their
    mean, then their range), margin and the four rates."""
    own = r.get("tau_per_probe")
    tau = f"{r['tau']:.3f}" + (f" (each face's: {own[0]:.3f}-{own[1]:.3f})" if own else "")
    return [name, rule, tau, f"{r['margin']:g}",
            ci(r["dir"]), ci(r["wrong"]), ci(r["unknown"]), ci(r["fpir"])]  # fmt: skip


ENCOUNTER_COLUMNS = ["domain", "strangers' encounters named", "mated encounters: named right",
                     "wrong name", "left unknown"]  # fmt: skip


def encounters_about(e: dict[str, Any]) -> str:
    """How the encounters were made, in a sentence or two, for the docs."""
    w, h = e["frame_size"]
    return (
        f"Each stranger photo of the open sets, and the first probe photo of each enrolled "
        f"person, becomes a clip of {e['frames_per_clip']} frames ({w}x{h}) in which the face "
        "comes nearer the camera, with the light changing a little, sensor noise and JPEG "
        "compression; each clip runs through the daemon's own pipeline and tracker "
        "(default config: a name needs `k = 3` of the track's last `n = 5` frames) against "
        "the domain's SQLite gallery, enrolled through `edge.enroll`. An encounter is "
        "*named* when the tracker publishes a `recognized` event in it "
        "(`bench/encounters.py`)."
    )


def encounters_table(e: dict[str, Any]) -> str:
    """The encounter-level figures of ``make bench`` (bench/encounters.py), one row per
    domain, and the street clip's line."""
    rows = [
        [DOMAIN_NAMES.get(d, d)]
        + [ci(r[k]) for k in ("strangers_named", "named_right", "wrong_name", "left_unknown")]
        for d, r in e["domains"].items()
    ]
    s = e["street"]
    named = ", ".join(s["recognized"]) or "nobody"
    return (
        table(
            ENCOUNTER_COLUMNS,
            rows,
        )
        + f"\n\nThe street clip ({s['frames']} frames, pedestrians nobody enrolled), against "
        f"the LFW gallery of {s['gallery_people']} people: {s['tracks']} tracks, named: "
        f"{named}."
    )
