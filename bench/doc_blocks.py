"""The generated blocks of README.md and docs/: every measured figure those pages quote,
written from bench/results/benchmarks.json (one ``make bench`` run) so that no page can
drift from another or from the run.

A block sits between two marker lines::

    <!-- begin generated: NAME -->
    ...
    <!-- end generated: NAME -->

and ``RENDERERS[NAME](result, doc)`` writes what is between them. ``make bench`` (and
``bench/bench_doc.py`` alone, from the JSON) rewrites every block;
``tests/unit/test_doc_figures.py`` fails when a block is not what the committed JSON gives.
A result from before the report split (no ``schema`` 2) gives a "pending" note instead
of figures.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import intervals
from doc_common import (
    DOMAIN_NAMES,
    RULE_COLUMNS,
    ci,
    domains,
    edge_keys,
    encounters_about,
    encounters_table,
    labels,
    not_held_out,
    rule_row,
    table,
)

REPO = Path(__file__).resolve().parent.parent
SCHEMA = 2
DOCS = [REPO / "README.md", REPO / "docs" / "RECOGNITION.md", REPO / "docs" / "MODEL_BUNDLE.md"]
BLOCK = re.compile(
    r"(?P<begin><!-- begin generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)"
    r"(?P<end><!-- end generated: (?P=name) -->)",
    re.S,
)
EDGE_RULE, PEER_RULE = "default rule", "documented threshold"
Result = dict[str, Any]


def pending(result: Result) -> bool:
    return int(result.get("schema", 1)) < SCHEMA


def _link(doc: Path, target: str) -> str:
    return os.path.relpath(REPO / target, doc.parent)


def source(result: Result, doc: Path, manifests: bool = False) -> str:
    """The line that says where a block's figures come from."""
    names = ", ".join(f"`{b['name']}`" for b in result["bundles"].values())
    run = f"`make bench` of {result['date']} ([BENCHMARKS.md]({_link(doc, 'docs/BENCHMARKS.md')}))"
    if manifests:
        return (
            f"*From the bundles' manifests ({names}) as {run} read them; brackets: 95% "
            "interval, then the count.*"
        )
    return (
        f"*From {run}, bundles {names}; report people only; brackets: 95% interval, then "
        "the count.*"
    )


def _default(result: Result) -> str:
    return str(result["default_bundle"])


def _rule(result: Result, key: str, domain: str, rule: str) -> dict[str, Any]:
    return result["openset"][key][domain]["rules"][rule]  # type: ignore[no-any-return]


def _at1(result: Result, key: str, domain: str, margin: float = 0.0) -> dict[str, Any]:
    found = result["openset"][key][domain]["at_fpir"]
    return next(a for a in found if a["target"] == 0.01 and a["margin"] == margin)  # type: ignore[no-any-return]


def _short(r: dict[str, Any]) -> str:
    return intervals.counted(r, 1)


def readme_pick(result: Result, doc: Path) -> str:
    keys = edge_keys(result)
    head = [""] + [
        f"`{result['bundles'][k]['name']}`" + (" (default)" if k == _default(result) else "")
        for k in keys
    ]
    rows = []
    for d in domains(result):
        plan = result["data"]["openset"][d]
        rows.append(
            [
                f"{DOMAIN_NAMES[d]}, {plan['enrolled_people']} people enrolled: named "
                "correctly (DIR) / strangers named (FPIR), default rule"
            ]
            + [
                "not held out (trained on these people)"
                if d in not_held_out(result, k)
                else f"{_short(_rule(result, k, d, EDGE_RULE)['dir'])} / "
                f"{_short(_rule(result, k, d, EDGE_RULE)['fpir'])}"
                for k in keys
            ]
        )
    rows.append(
        ["LFW pairs accuracy (k-fold) / TAR at FAR 1e-3"]
        + [
            "not held out (trained on these people)"
            if "lfw" in not_held_out(result, k)
            else f"{_short(result['pairs'][k]['accuracy_ci'])} / "
            f"{_short(result['pairs'][k]['tar_ci'])}"
            for k in keys
        ]
    )
    speed = result["speed"]["summary"]
    rows.append(
        ["encoder ms per face, one x86 core (median [min-max] of rounds)"]
        + [
            f"{speed[k]['embed']['median']:.1f} [{speed[k]['embed']['min']:.1f}-"
            f"{speed[k]['embed']['max']:.1f}] ({result['bundles'][k]['encoder']['quantization']}"
            + (
                ", mirror-averaged)"
                if result["bundles"][k]["encoder"].get("mirror_average")
                else ")"
            )
            for k in keys
        ]
    )
    rows.append(
        ["TFLite runtimes"]
        + [" and ".join(result["bundles"][k]["encoder"].get("runtimes") or ["?"]) for k in keys]
    )
    return table(head, rows) + "\n\n" + source(result, doc)


def readme_daemon(result: Result, doc: Path) -> str:
    key, m = _default(result), result["machine"]
    rt = result.get("realtime")
    if not rt:
        clip = result["clip"]["systems"][key]
        fps, rss = clip["fps"], clip["peak_rss_mb"]
        return (
            f"On {m['cpu_model']} ({m['nproc']} cores), the default bundle "
            f"(`{result['bundles'][key]['name']}`) detects, aligns, embeds and matches every face "
            f"of the Hamilton clip at {fps['median']:.1f} frames/s [{fps['min']:.1f}-"
            f"{fps['max']:.1f} over rounds] on one thread, {rss['median']:.0f} MB peak RSS "
            f"(`make bench` of {result['date']}, [BENCHMARKS.md]({_link(doc, 'docs/BENCHMARKS.md')}))."
        )
    h = rt["results"]["hamilton"]
    on, off = h["daemon-on"], h["daemon-off"]
    idle = rt["results"].get("idle")
    pi4 = rt["pi_frame"]["boards"]["pi4"]
    idle_text = (
        f"; on an idle scene (nothing moving) {idle['daemon-on']['cpu_per_video_s']:.3f} CPU "
        f"seconds per second of video against {idle['daemon-off']['cpu_per_video_s']:.3f}"
        if idle
        else ""
    )
    return (
        f"On {m['cpu_model']} ({m['nproc']} cores), one thread, the default bundle "
        f"(`{rt['bundle']['name']}`) and the default `[pipeline]`, the daemon runs the Hamilton "
        f"clip at {on['fps']:.1f} frames/s with {on['encoder_per_frame']:.2f} encoder and "
        f"{on['detector_per_frame']:.2f} detector calls a frame, against {off['fps']:.1f} "
        f"frames/s and {off['encoder_per_frame']:.2f} encoder calls with every face of every "
        f"frame embedded; played at its own frame rate it costs {on['cpu_per_video_s']:.3f} CPU "
        f"seconds per second of video against {off['cpu_per_video_s']:.3f}{idle_text}; "
        f"{on['peak_rss_mb']:.0f} MB peak RSS. One Pi 4 core would run it at about "
        f"{pi4['fps']:.0f} frames/s (an estimate, nothing ran on a Pi). From `make bench` of "
        f"{rt['date']}, [BENCHMARKS.md]({_link(doc, 'docs/BENCHMARKS.md')}#real-time-on-one-core)."
    )


def recognition_verify(result: Result, doc: Path) -> str:
    lines = []
    for k in edge_keys(result):
        b, p = result["bundles"][k], result["pairs"][k]
        figure = (
            "not held out on LFW (trained on these people)"
            if "lfw" in not_held_out(result, k)
            else f"{ci(p['at_threshold_ci'])} of the LFW pairs decided right at it"
        )
        default = " (the default)" if k == _default(result) else ""
        lines.append(
            f"- `{b['name']}`{default}: tau.verify {b['tau']['verify']:.3f} "
            f"({b['tau'].get('how', '?')}); {figure}"
        )
    return "\n".join(lines) + "\n\n" + source(result, doc)


def recognition_strangers(result: Result, doc: Path) -> str:
    key = _default(result)
    parts = []
    for d in domains(result):
        n = result["data"]["openset"][d]["enrolled_people"]
        peers = [
            f"{labels(result)[s['key']]} ({s['threshold_how']}) named "
            f"{ci(_rule(result, s['key'], d, PEER_RULE)['fpir'])} of strangers"
            for s in result["systems"]
            if s["kind"] == "peer"
        ]
        own = _rule(result, key, d, "bundle tau.verify")["fpir"]
        parts.append(
            f"- {DOMAIN_NAMES[d]}, {n} people enrolled: "
            + "; ".join(peers)
            + f"; the default bundle at its one-to-one tau.verify, {ci(own)}."
        )
    return "\n".join(parts) + "\n\n" + source(result, doc)


def recognition_thresholds(result: Result, doc: Path) -> str:
    key = _default(result)
    b = result["bundles"][key]
    ident = b.get("identify")
    if not ident:
        return f"`{b['name']}` carries no open-set table.\n\n" + source(result, doc)
    rates = ident["rates"]
    head = ["gallery size (sqrt of embeddings x people)"] + [
        f"tau at {100 * r:g}% strangers named" for r in rates
    ]
    rows = [
        [f"{size:g}"] + [f"{t:.3f}" for t in taus]
        for size, taus in zip(ident["sizes"], ident["tau"], strict=True)
    ]
    drawn = ", ".join(
        f"{k.replace('_', ' ')}: {ident[k]}"
        for k in ("people_from", "people", "with_second_photo", "reps")
        if k in ident
    )
    units = f"; taus and margin in cohort scores: {ident['score']}" if "score" in ident else ""
    return (
        f"The default bundle `{b['name']}` (its manifest's `identify`, margin "
        f"{ident['margin']:g}; {drawn or 'drawn as its manifest does not say'}{units}):\n\n"
        + table(head, rows)
        + "\n\n"
        + by_domain(ident)
        + source(result, doc, manifests=True)
    )


def by_domain(ident: dict[str, Any]) -> str:
    """The table's taus at 1% per domain beside the averaged ones (``tau_by_domain``), or
    nothing for a table without them."""
    own = ident.get("tau_by_domain")
    if not own or 0.01 not in ident["rates"]:
        return ""
    j = ident["rates"].index(0.01)
    head = ["gallery size", "averaged (a face of no known domain)"] + [f"{d}'s own" for d in own]
    rows = [
        [f"{size:g}", f"{ident['tau'][i][j]:.3f}"] + [f"{own[d][i][j]:.3f}" for d in own]
        for i, size in enumerate(ident["sizes"])
    ]
    return (
        "Each domain's own taus at 1% strangers named; a face's own lies between them, by "
        "its nearest cohort faces' domains (`edge.decision.Policy.rule`):\n\n"
        + table(head, rows)
        + "\n\n"
    )


def recognition_measured(result: Result, doc: Path) -> str:
    out = []
    for d in domains(result):
        plan = result["data"]["openset"][d]
        rows = []
        for k in edge_keys(result):
            if d in not_held_out(result, k):
                continue
            o = result["openset"][k][d]
            for rule, r in o["rules"].items():
                rows.append(rule_row(f"`{result['bundles'][k]['name']}`", rule, r))
            for a in o["at_fpir"]:
                rows.append(
                    [
                        f"`{result['bundles'][k]['name']}`",
                        "tau set on these strangers for FPIR 1%",
                        f"{a['tau']:.3f}",
                        f"{a['margin']:g}",
                        ci(a["dir"]),
                        ci(a["wrong"]),
                        "",
                        ci(a["fpir"]),
                    ]
                )
        out += [
            f"**{DOMAIN_NAMES[d]}**: {plan['about']}.",
            "",
            table(
                ["bundle", *RULE_COLUMNS],
                rows,
            ),
            "",
        ]
        for k in edge_keys(result):
            margins = [a["margin"] for a in result["openset"][k][d]["at_fpir"]]
            if d in not_held_out(result, k) or len(margins) < 2:
                continue
            with_m, without = _at1(result, k, d, max(margins)), _at1(result, k, d)
            said = intervals.compare(with_m["dir"], without["dir"])
            verdict = said if said.startswith("no") else f"{said} with the margin"
            out += [
                f"The margin on {DOMAIN_NAMES[d]} (`{result['bundles'][k]['name']}`): DIR at FPIR "
                f"1% {ci(with_m['dir'])} with margin {max(margins):g}, {ci(without['dir'])} "
                f"without: {verdict}.",
                "",
            ]
    return "\n".join(out) + "\n" + source(result, doc)


def recognition_encounters(result: Result, doc: Path) -> str:
    e = result.get("encounters")
    if not e:
        return "*Pending: the next `make bench` measures encounters (`bench/encounters.py`).*"
    name = result["bundles"][_default(result)]["name"]
    return (
        f"{encounters_about(e)} The default bundle `{name}`:\n\n"
        + encounters_table(e)
        + "\n\n"
        + source(result, doc)
    )


def _candidates(b: dict[str, Any]) -> dict[str, Any]:
    return (b.get("quantization") or {}).get("candidates") or {}


def bundle_quantization(result: Result, doc: Path) -> str:
    kinds = ["int8", "dynamic", "float16", "float32"]
    rows = []
    for b in result["bundles"].values():
        cands, q = _candidates(b), b.get("quantization") or {}
        cells = [
            f"{c['ms_per_pass']:.2f} (cos min {c['cosine_min']:.3f})"
            if (c := cands.get(k))
            else "-"
            for k in kinds
        ]
        forced = " (forced)" if q.get("forced") else ""
        rows.append([f"`{b['name']}`", *cells, f"{q.get('chosen', '?')}{forced}"])
    timing = next(
        (
            b["quantization"].get("timing")
            for b in result["bundles"].values()
            if b.get("quantization")
        ),
        None,
    )
    return (
        "ms per pass (and the embeddings' smallest cosine to float32's), as each bundle's "
        f"build measured them ({timing or 'one thread'}):\n\n"
        + table(["bundle", *kinds, "chosen"], rows)
        + "\n\n"
        + source(result, doc, manifests=True)
    )


#: the sections of a manifest that hold its build's own figures, and what they are
BUILD_FIGURES = (
    ("calibration_pairs", "the calibrate pairs its tau and mirror averaging were fitted on"),
    ("evaluation", "its own held-out pairs"),
)


def bundle_variants(result: Result, doc: Path) -> str:
    out = []
    for b, ev, what in (
        (b, b.get(key) or {}, what)
        for b in result["bundles"].values()
        for key, what in BUILD_FIGURES
    ):
        variants = ev.get("variants") or {}
        if not variants:
            continue
        rows = []
        for name, v in variants.items():
            chosen = " **(the bundle)**" if name == ev.get("model") else ""
            rows.append(
                [
                    f"{name}{chosen}",
                    f"{ci(v['accuracy_ci'])}, ± {100 * v['accuracy_std']:.2f} over folds",
                    ci(v["tar_ci"]),
                ]
            )
        check = b.get("quantization_check") or {}
        agreement = (
            f" The shipped encoder against float on {check['faces']} faces: cosine mean "
            f"{check['cosine_mean']:.4f}, min {check['cosine_min']:.4f}."
            if check.get("faces")
            else ""
        )
        out += [
            f"`{b['name']}` on {what} ({ev.get('pairs', '?')} pairs):{agreement}",
            "",
            table(["variant", "accuracy (k-fold)", "TAR at FAR 1e-3 (genuine half)"], rows),
            "",
        ]
    return "\n".join(out) + "\n" + source(result, doc, manifests=True)


RENDERERS: dict[str, Callable[[Result, Path], str]] = {
    "readme-pick": readme_pick,
    "readme-daemon": readme_daemon,
    "recognition-verify": recognition_verify,
    "recognition-strangers": recognition_strangers,
    "recognition-thresholds": recognition_thresholds,
    "recognition-measured": recognition_measured,
    "recognition-encounters": recognition_encounters,
    "bundle-quantization": bundle_quantization,
    "bundle-variants": bundle_variants,
}


def render(name: str, result: Result, doc: Path) -> str:
    if pending(result):
        return (
            "*Pending: `bench/results/benchmarks.json` is from a run before the report split "
            "(data/splits.json); the next `make bench` writes these figures.*"
        )
    return RENDERERS[name](result, doc)


def fill(text: str, result: Result, doc: Path) -> str:
    """The text with every generated block rewritten from ``result``."""

    def one(m: re.Match[str]) -> str:
        if m["name"] not in RENDERERS:
            raise KeyError(f"{doc}: unknown generated block {m['name']!r}")
        return f"{m['begin']}{render(m['name'], result, doc)}\n{m['end']}"

    return BLOCK.sub(one, text)


def update_all(result: Result, docs: list[Path] = DOCS) -> list[Path]:
    changed = []
    for doc in docs:
        text = doc.read_text()
        new = fill(text, result, doc)
        if new != text:
            doc.write_text(new)
            changed.append(doc)
    return changed
