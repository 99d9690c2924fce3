"""docs/BENCHMARKS.md, written from the suite's JSON alone (``render``), and the short
summary the suite prints (``summary``). Every rate carries its 95% interval and its count
of trials; a difference is called one only when the intervals do not overlap.

    .venv/bin/python bench/bench_doc.py [--json bench/results/benchmarks.json]

(also re-renders the generated blocks of the other docs, ``doc_blocks.py``).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import intervals
from bench_doc_perf import install_section, pi_section, realtime_section, speed_section
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
    peer_keys,
    rule_row,
    table,
    times,
)

REPO = Path(__file__).resolve().parent.parent
SOURCE_LINE = (
    "<!-- figures: bench/results/benchmarks.json; generated whole by bench/bench_doc.py "
    "(make bench): do not edit, rerun -->"
)
PEER_RULE, EDGE_RULE = "documented threshold", "default rule"
READING = (
    "How to read the figures: each rate is followed by its 95% interval in brackets and its "
    "count (successes of trials). Verification pairs are independent trials: a Wilson "
    "interval. In the open set one person's photos are not independent, so the interval is "
    "a bootstrap that resamples people, widened to the Wilson interval of the same counts "
    "where that is wider. A difference between two systems is called one only when their "
    "intervals do not overlap; otherwise the text says *no measurable difference*."
)


def own_rule(result: dict[str, Any], key: str) -> str:
    return EDGE_RULE if key in edge_keys(result) else PEER_RULE


def at_fpir(o: dict[str, Any], margin: float | None = None) -> dict[str, Any]:
    """DIR at FPIR 1% (margin 0 unless asked)."""
    want = 0.0 if margin is None else margin
    return next(a for a in o["at_fpir"] if a["target"] == 0.01 and a["margin"] == want)


def label_in(result: dict[str, Any], key: str, domain: str) -> str:
    note = not_held_out(result, key).get(domain)
    return labels(result)[key] + (" **(not held out)**" if note else "")


def header(result: dict[str, Any], doc: Path, json_path: Path) -> str:
    m, d = result["machine"], result["data"]
    load = f"{m['loadavg_start'][0]:.2f} at the start, {m['loadavg_end'][0]:.2f} at the end"
    numbers = d.get("fold_numbers")  # the protocol's folds (model_export.splits.REPORT_FOLDS)
    folds = f"{d['folds']} folds" + (f": {numbers[0]}-{numbers[-1]}" if numbers else "")
    rel, link = os.path.relpath(json_path, REPO), os.path.relpath(json_path, doc.parent)
    opensets = "; ".join(
        f"{DOMAIN_NAMES[k]}: {o['about']} ({o['mated_photos']} mated and "
        f"{o['stranger_photos']} non-mated search photos)"
        for k, o in d["openset"].items()
    )
    held = [
        f"- **Not held out**: {labels(result)[k]}, on {DOMAIN_NAMES[dom]}: {why}. Its "
        f"{DOMAIN_NAMES[dom]} rows are marked and left out of the headline."
        for k in edge_keys(result)
        for dom, why in not_held_out(result, k).items()
    ]
    default = labels(result)[result["default_bundle"]]
    return "\n".join(
        [
            SOURCE_LINE,
            "",
            "# Benchmarks: edge-face and the tools users would pick instead",
            "",
            "edge-face against the two engines behind most Raspberry Pi face recognition "
            "tutorials: **face_recognition** (dlib) and **OpenCV's YuNet + SFace**. One run "
            "measures every system on the same photos and the same clip, each with its own "
            "detector, its own alignment and its own documented threshold; edge-face with its "
            f"default rule. Every comparison below comes from this one run. The default bundle "
            f"is {default}.",
            "",
            f"- **Command**: `{result['command']}` (`make bench`)",
            f"- **Date**: {result['date']}; the whole run took {result['duration_s'] / 60:.0f} min",
            f"- **Machine**: {m['cpu_model']}, {m['nproc']} cores ({m['arch']}, {m['system']}), "
            f"shared with other jobs: load average {load}. All timings on **one thread**.",
            f"- **People**: only `{d['role']}` people of `{d['splits']['file']}` (sha256 "
            f"{d['splits']['sha256']}): nothing in any bundle was fitted or chosen on them "
            "(`model_export/splits.py`; the suite stops if a photo of anyone else slips in).",
            f"- **Verification**: LFW `{d['pairs_file']}` ({d['pairs']} pairs, {folds}, "
            f"{d['pair_photos']} photos).",
            f"- **Open set**: {opensets}.",
            f"- **Clip**: `{result['clip']['video']}`.",
            *held,
            f"- **Figures**: [`{rel}`]({link}) (every number below, and the per-round values).",
            "",
            READING,
        ]
    )


def systems_section(result: dict[str, Any]) -> str:
    rows = [
        [s["label"], s["pipeline"], f"{s['threshold']:.4f} ({s['threshold_how']})"]
        for s in result["systems"]
    ]
    tau_how = [
        f"- {labels(result)[k]}: `{b['name']}`, encoder `{b['encoder_id']}`, built "
        f"{b.get('created') or '?'}; its tau.verify: {b['tau'].get('how', '?')}"
        for k, b in result["bundles"].items()
    ]
    versions = []
    for key, v in result["versions"].items():
        cells = ", ".join(f"{k} {val}" for k, val in v.items() if val not in (None, False, True))
        versions.append(f"- {labels(result)[key]}: {cells}")
    return "\n".join(
        [
            "## The systems",
            "",
            table(["system", "pipeline", "threshold (a distance: same person iff <=)"], rows),
            "",
            "The bundles, as their manifests say:",
            "",
            *tau_how,
            "",
            "Versions:",
            "",
            *versions,
        ]
    )


def pairs_section(result: dict[str, Any]) -> str:
    rows = []
    for s in result["systems"]:
        p = result["pairs"][s["key"]]
        rows.append(
            [
                label_in(result, s["key"], "lfw"),
                f"{ci(p['accuracy_ci'])}, ± {100 * p['accuracy_std']:.2f} over folds",
                f"{ci(p['at_threshold_ci'])} at {p['threshold']:.3f}",
                f"{p['tau']:.3f}",
                ci(p["tar_ci"]),
                f"{p['auc']:.4f}",
                f"{p['no_face']} of {p['photos']}",
            ]
        )
    return "\n".join(
        [
            "## Verification: LFW pairs",
            "",
            "The LFW protocol (`model_export.metrics.verification_report`, as `model-export "
            "evaluate`): accuracy k-fold (tau chosen on the other folds; the headline figure), "
            "the accuracy at the system's own threshold (edge-face: the bundle's tau.verify), "
            "the tau best on all folds, TAR at FAR 1e-3 (of the genuine pairs) and AUC, each on "
            "the system's own score. A photo where the detector finds no face is encoded from "
            "the median face of the set (LFW photos are centred) and counted.",
            "",
            table(
                [
                    "system",
                    "accuracy (k-fold)",
                    "at its threshold",
                    "best tau",
                    "TAR @ FAR 1e-3",
                    "AUC",
                    "photos without a face",
                ],
                rows,
            ),
            "",
            "![ROC of every system](benchmarks/roc.png)",
            "",
            "![Genuine and impostor distances, with the thresholds](benchmarks/histograms.png)",
        ]
    )


def openset_domain(result: dict[str, Any], domain: str) -> str:
    rows, at_rows, counts = [], [], []
    for s in result["systems"]:
        o = result["openset"][s["key"]][domain]
        name = label_in(result, s["key"], domain)
        for rule, r in o["rules"].items():
            rows.append(rule_row(name, rule, r))
        for a in o["at_fpir"]:
            at_rows.append(
                [
                    name,
                    f"{a['margin']:g}",
                    f"{a['tau']:.3f}",
                    ci(a["dir"]),
                    ci(a["wrong"]),
                    ci(a["fpir"]),
                ]
            )
        counts.append(
            f"{labels(result)[s['key']]}: {o['enrolled_people']} people enrolled with "
            f"{o['embeddings']} embeddings ({o['refused_photos']} photos refused), "
            f"{o['searches_without_face']} searches without a face"
        )
    d = result["data"]["openset"][domain]
    return "\n".join(
        [
            f"### {DOMAIN_NAMES[domain]}",
            "",
            f"{d['about']}: {d['enrolled_people']} people enrolled, {d['mated_photos']} mated "
            f"search photos; {d['stranger_people']} strangers, {d['stranger_photos']} "
            "non-mated search photos.",
            "",
            "At each system's own rule:",
            "",
            table(
                ["system", *RULE_COLUMNS],
                rows,
            ),
            "",
            "DIR at FPIR 1% (tau set on these strangers: a point of the trade-off, not a rule "
            "any system ships):",
            "",
            table(["system", "margin", "tau", "DIR", "wrong name", "FPIR reached"], at_rows),
            "",
            "; ".join(counts) + ".",
        ]
    )


def openset_section(result: dict[str, Any]) -> str:
    return "\n\n".join(
        [
            "## Identification: open set",
            "The open-set figures as the standard names them (ISO/IEC 19795-1, NIST FRVT 1:N): "
            "a *mated search* is a photo of an enrolled person that was not used to enroll "
            "them, a *non-mated search* a photo of a stranger. **DIR** (detection-and-"
            "identification rate): mated searches given the right name. **FPIR** (false-"
            "positive identification rate): non-mated searches given a name, the figure that "
            "opens a door to a stranger. **Wrong name**: mated searches given someone else's "
            "name. Each person is enrolled with their first 3 photos (a photo is enrolled when "
            "the system's detector finds exactly one face in it); a search is the photo's "
            "largest face. The nearest person is the smallest distance over their embeddings; "
            "a rule names them when the distance is within tau and, with a margin, nearer than "
            "the second person by at least the margin. The peers use their documented "
            "threshold; edge-face its default rule (the bundle's margin and gallery-size-aware "
            "tau, each face's own: between its domains' taus, by its nearest cohort faces, shown "
            "as their mean and range) and, for comparison, its one-to-one tau.verify. LFW "
            "and CFP (a second "
            "domain: web photos of other celebrities, bordered by `model_export.data."
            "read_photo` for every system alike) are reported apart.",
            *[openset_domain(result, d) for d in domains(result)],
            "![DIR against FPIR, every system, each domain](benchmarks/dir_fpir.png)",
        ]
    )


def _cells(result: dict[str, Any], key: str) -> list[str]:
    held = not_held_out(result, key)
    cells = ["not held out" if "lfw" in held else ci(result["pairs"][key]["accuracy_ci"])]
    for d in domains(result):
        if d in held:
            cells += ["not held out", "not held out"]
            continue
        o = result["openset"][key][d]
        r = o["rules"][own_rule(result, key)]
        cells += [f"{ci(r['dir'])} / {ci(r['fpir'])}", ci(at_fpir(o)["dir"])]
    return cells


def _verdict(a: dict[str, Any], b: dict[str, Any]) -> str:
    said = intervals.compare(a, b)
    return said if said.startswith("no") else f"edge-face {said}"


def _versus(result: dict[str, Any], e: str, p: str) -> str:
    parts = []
    for d in domains(result):
        if d in not_held_out(result, e):
            continue
        oe, op = result["openset"][e][d], result["openset"][p][d]
        fpir = _verdict(oe["rules"][EDGE_RULE]["fpir"], op["rules"][PEER_RULE]["fpir"])
        dir_ = _verdict(at_fpir(oe)["dir"], at_fpir(op)["dir"])
        parts.append(
            f"{DOMAIN_NAMES[d]}: strangers named (FPIR) at each one's own rule: {fpir}; DIR at "
            f"FPIR 1%: {dir_}"
        )
    if "lfw" not in not_held_out(result, e):
        acc = _verdict(result["pairs"][e]["accuracy_ci"], result["pairs"][p]["accuracy_ci"])
        parts.append(f"LFW pairs accuracy: {acc}")
    r, c = result["speed"]["ratios"][e][p], result["clip"]["ratios"][e][p]
    return (
        "; ".join(parts)
        + f". edge-face is {times(r['photo_to_vector'])} as fast photo -> vector and runs the "
        f"clip at {times(c['fps'])} the peer's frames per second; the peer's peak memory is "
        f"{times(c['peak_rss'])} edge-face's."
    )


def headline(result: dict[str, Any]) -> list[str]:
    head = ["system", "LFW pairs accuracy (k-fold)"]
    for d in domains(result):
        head += [
            f"{DOMAIN_NAMES[d]}: DIR / FPIR at its own rule",
            f"{DOMAIN_NAMES[d]}: DIR at FPIR 1%",
        ]
    rows = [[labels(result)[s["key"]], *_cells(result, s["key"])] for s in result["systems"]]
    lines = [
        "Each system at its own rule (edge-face: the bundle's default rule; a peer: its "
        "documented threshold), and at the same FPIR of 1% (tau set on the strangers):",
        "",
        table(head, rows),
        "",
    ]
    for e in edge_keys(result):
        for p in peer_keys(result):
            lines.append(
                f"- **{labels(result)[e]}** against **{labels(result)[p]}**: {_versus(result, e, p)}"
            )
    return lines


def encounters_section(result: dict[str, Any]) -> str:
    e = result.get("encounters")
    if not e:
        return "## Encounters\n\nNot measured in this run (`--no-encounters`)."
    name = result["bundles"][result["default_bundle"]]["name"]
    return "\n\n".join(
        [
            "## Encounters: what a household sees",
            "The open-set figures above are per photo; the daemon names a person only when "
            "the tracker agrees over several frames. "
            + encounters_about(e)
            + f" The default bundle `{name}`, {e['clips']} clips:",
            encounters_table(e),
        ]
    )


def render(result: dict[str, Any], doc: Path, json_path: Path) -> str:
    parts = [
        header(result, doc, json_path),
        "## Headline",
        "\n".join(headline(result)),
        systems_section(result),
        pairs_section(result),
        openset_section(result),
        encounters_section(result),
        speed_section(result),
        realtime_section(result),
        install_section(result),
        pi_section(result),
    ]
    text = "\n\n".join(parts) + "\n"
    if result.get("plots"):  # the sections link the plots as benchmarks/NAME.png
        folder = os.path.relpath(REPO / Path(result["plots"][0]).parent, doc.parent)
        text = text.replace("](benchmarks/", f"]({folder}/")
    return text


def summary(result: dict[str, Any]) -> str:
    return "\n".join(headline(result))


def main() -> None:
    import doc_blocks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "benchmarks.json")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "BENCHMARKS.md")
    args = parser.parse_args()
    result = json.loads(args.json.read_text())
    args.doc.write_text(render(result, args.doc, args.json))
    print(f"wrote {args.doc}")
    if args.json.resolve() == (REPO / "bench" / "results" / "benchmarks.json").resolve():
        for path in doc_blocks.update_all(result):  # the docs quote the committed run only
            print(f"updated the generated blocks of {path}")


if __name__ == "__main__":
    main()
