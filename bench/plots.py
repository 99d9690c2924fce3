"""The figures of docs/BENCHMARKS.md, drawn from bench/results/benchmarks.json alone
(matplotlib, Agg): the ROC of every system, the genuine/impostor distance histograms
with the thresholds, the open set's DIR against FPIR per domain, the time per stage and
the clip's frames per second, and the Pi estimate.

    .venv/bin/python bench/plots.py [--json bench/results/benchmarks.json] [--out docs/benchmarks]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

REPO = Path(__file__).resolve().parent.parent
PEER_COLOURS = {"dlib": "#2ca02c", "sface": "#9467bd"}
EDGE_COLOURS = ["#1f77b4", "#ff7f0e", "#17becf", "#8c564b", "#d62728"]
STAGE_COLOURS = {"detect": "#4c72b0", "align": "#dd8452", "embed": "#55a868"}


def colours(result: dict[str, Any]) -> list[str]:
    """One colour per system, the same in every figure: the peers fixed, edge-face's bundles
    in turn."""
    edges = iter(EDGE_COLOURS * 4)
    return [PEER_COLOURS.get(s["key"]) or next(edges) for s in result["systems"]]


def _roc(genuine: list[float], impostor: list[float]) -> tuple[np.ndarray, np.ndarray]:
    d = np.concatenate([genuine, impostor])
    same = np.concatenate([np.ones(len(genuine), bool), np.zeros(len(impostor), bool)])
    order = np.argsort(d, kind="stable")
    s = same[order]
    return np.cumsum(~s) / max(1, (~s).sum()), np.cumsum(s) / max(1, s.sum())


def roc_figure(result: dict[str, Any], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 5))
    floor = 1.0
    for colour, s in zip(colours(result), result["systems"], strict=True):
        p = result["pairs"][s["key"]]
        far, tar = _roc(p["genuine"], p["impostor"])
        ax.step(
            np.maximum(far, 1e-4),
            tar,
            where="post",
            color=colour,
            label=f"{s['label']}  (AUC {p['auc']:.4f})",
        )
        d_gen, d_imp = np.array(p["genuine"]), np.array(p["impostor"])
        t = p["threshold"]
        ax.plot(
            max(float((d_imp <= t).mean()), 5.5e-4),
            float((d_gen <= t).mean()),
            "o",
            color=colour,
            markersize=6,
        )
        floor = min(floor, p["tar_at_far"])
    ax.axvline(1e-3, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlim(5e-4, 1)
    ax.set_ylim(max(0.0, floor - 0.1), 1.002)
    ax.set_xlabel("false accept rate (impostor pairs accepted)")
    ax.set_ylabel("true accept rate (genuine pairs accepted)")
    n = result["data"]["pairs"]
    ax.set_title(
        f"LFW pairs ({n} pairs): ROC of every system\n"
        "dot: the system's own threshold (at the left edge: no impostor accepted)\n"
        "dotted line: FAR 1e-3",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    path = out / "roc.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def histogram_figure(result: dict[str, Any], out: Path) -> Path:
    systems = result["systems"]
    fig, axes = plt.subplots(len(systems), 1, figsize=(10, 2.4 * len(systems)), squeeze=False)
    for ax, s in zip(axes[:, 0], systems, strict=True):
        p = result["pairs"][s["key"]]
        gen, imp = np.array(p["genuine"]), np.array(p["impostor"])
        bins = np.linspace(min(gen.min(), imp.min()), max(gen.max(), imp.max()), 60)
        ax.hist(imp, bins=bins, alpha=0.6, color="#d62728", label="impostor pairs")
        ax.hist(gen, bins=bins, alpha=0.6, color="#1f77b4", label="genuine pairs")
        ax.axvline(
            p["threshold"],
            color="black",
            linewidth=1.5,
            label=f"its own threshold {p['threshold']:.3f} ({100 * p['accuracy_at_threshold']:.2f}%)",
        )
        ax.axvline(
            p["tau"],
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"best tau on these pairs {p['tau']:.3f}",
        )
        metric = "1 - cosine similarity" if s["metric"] == "cosine" else "Euclidean distance"
        ax.set_title(f"{s['label']}: {metric}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    path = out / "histograms.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


RULE_MARKERS = {"default rule": "o", "documented threshold": "o", "bundle tau.verify": "s"}


def dir_fpir_figure(result: dict[str, Any], out: Path) -> Path:
    """DIR against FPIR, tau swept over each domain's strangers (margin 0 solid, the
    bundle's margin dashed), each system's own rules as points."""
    domains = list(result["data"]["openset"])
    fig, axes = plt.subplots(1, len(domains), figsize=(6.5 * len(domains), 5), squeeze=False)
    for ax, domain in zip(axes[0], domains, strict=True):
        n = result["data"]["openset"][domain]["stranger_photos"]
        floor = 0.5 / max(n, 1)
        for colour, s in zip(colours(result), result["systems"], strict=True):
            o = result["openset"][s["key"]][domain]
            held = "" if domain not in (s.get("not_held_out") or {}) else " (not held out)"
            for margin, points in o["curves"].items():
                if not points:
                    continue
                fpir, dir_ = np.array(points).T
                ax.step(
                    np.maximum(fpir, floor),
                    dir_,
                    where="post",
                    color=colour,
                    linestyle="-" if margin == "0" else "--",
                    linewidth=1.2,
                    label=f"{s['label']}{held}" + ("" if margin == "0" else f", margin {margin}"),
                )
            for rule, r in o["rules"].items():
                ax.plot(
                    max(r["fpir"]["rate"], floor),
                    r["dir"]["rate"],
                    RULE_MARKERS.get(rule, "^"),
                    color=colour,
                    markersize=6,
                    markerfacecolor=colour if rule != "bundle tau.verify" else "white",
                )
        ax.axvline(0.01, color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlim(floor * 0.8, 1.0)
        ax.set_xlabel(f"FPIR: strangers named ({n} non-mated searches; left edge: none)")
        ax.set_ylabel("DIR: mated searches named correctly")
        ax.set_title(
            f"{domain.upper()} report people: DIR against FPIR\n"
            "filled dot: the system's own rule; open square: edge-face's tau.verify",
            fontsize=10,
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = out / "dir_fpir.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_figure(result: dict[str, Any], out: Path) -> Path:
    systems = result["systems"]
    speed, clip = result["speed"]["summary"], result["clip"]["systems"]
    fig, (ax, bx) = plt.subplots(
        1, 2, figsize=(11, 0.9 * len(systems) + 2), gridspec_kw={"width_ratios": [3, 2]}
    )
    labels = [s["label"] for s in systems]
    y = np.arange(len(systems))
    left = np.zeros(len(systems))
    for stage, colour in STAGE_COLOURS.items():
        ms = np.array([speed[s["key"]][stage]["median"] for s in systems])
        ax.barh(y, ms, left=left, color=colour, label=stage)
        left += ms
    for i, s in enumerate(systems):
        t = speed[s["key"]]["photo_to_vector"]
        ax.text(left[i], i, f"  {t['median']:.1f} ms", va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, left.max() * 1.25)
    ax.set_xlabel("ms per 250x250 LFW photo, one thread (median of round medians)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("photo -> vector, per stage", fontsize=10)
    fps = np.array([clip[s["key"]]["fps"]["median"] for s in systems])
    lo = fps - np.array([clip[s["key"]]["fps"]["min"] for s in systems])
    hi = np.array([clip[s["key"]]["fps"]["max"] for s in systems]) - fps
    bx.barh(y, fps, xerr=[lo, hi], color=colours(result), capsize=3)
    for i, (v, s) in enumerate(zip(fps, systems, strict=True)):
        faces = clip[s["key"]]["faces_per_frame"]
        bx.text(v, i, f"  {v:.1f}\n  ({faces:.2f} faces/frame)", va="center", fontsize=7)
    bx.set_yticks(y, [""] * len(systems))
    bx.invert_yaxis()
    bx.set_xlim(0, fps.max() * 1.45)
    bx.set_xlabel("frames/s, one thread (min-max over rounds)")
    bx.set_title("Hamilton clip, 640x360, end to end", fontsize=10)
    fig.tight_layout()
    path = out / "latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pi_figure(result: dict[str, Any], out: Path) -> Path | None:
    pi = result.get("pi_estimate")
    if not pi:
        return None
    boards = list(pi["boards"])
    systems = result["systems"]
    fig, ax = plt.subplots(figsize=(9, 3.5))
    width = 0.8 / len(systems)
    x = np.arange(len(boards))
    for j, (colour, s) in enumerate(zip(colours(result), systems, strict=True)):
        ms = [pi["per_system"][s["key"]][b]["photo_to_vector"] for b in boards]
        ax.bar(x + j * width, ms, width, color=colour, label=s["label"])
    names = [pi["boards"][b].replace(" (", "\n(") for b in boards]
    ax.set_xticks(x + width * (len(systems) - 1) / 2, names, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ms per photo -> vector (log)")
    ax.set_title(
        "ESTIMATE (not measured on a Pi): one core, from multiply-adds and published throughput",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    path = out / "pi_estimate.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_all(result: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [roc_figure(result, out), histogram_figure(result, out)]
    paths += [dir_fpir_figure(result, out), latency_figure(result, out)]
    if (p := pi_figure(result, out)) is not None:
        paths.append(p)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "benchmarks.json")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks")
    args = parser.parse_args()
    for path in draw_all(json.loads(args.json.read_text()), args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
