"""Every figure of README.md and docs/ comes from the result files the page names
(bench/doc_figures.py has the convention), generated text is what its run gives, and the
pages agree with each other. Reads committed files only."""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_doc
import doc_blocks
import doc_figures
import encoders

from model_export.build import BuildOptions

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "bench" / "results" / "benchmarks.json"
ENCODERS = REPO / "bench" / "results" / "encoders.json"
SMALL = Path(__file__).resolve().parent / "data" / "bench_small.json"  # a reduced run
SMALL_ENCODERS = SMALL.with_name("encoders_small.json")  # bench/encoders.py, reduced alike
HAND_WRITTEN = [n for n in doc_figures.DOCS if not doc_figures.page(REPO / n).generated_by]


def load(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def current(result: dict[str, Any]) -> bool:
    return int(result.get("schema", 1)) >= doc_blocks.SCHEMA


@pytest.mark.parametrize("name", doc_figures.DOCS)
def test_every_page_names_sources_that_exist(name: str) -> None:
    p = doc_figures.page(REPO / name)
    assert p.sources and all(s.is_file() for s in p.sources), p.sources


@pytest.mark.parametrize("name", HAND_WRITTEN)
def test_every_hand_written_figure_is_in_the_pages_sources(name: str) -> None:
    missing = doc_figures.unfound(doc_figures.page(REPO / name))
    assert not missing, (
        f"{name}: {missing} are in none of its sources: quote them from the run (or "
        "generate them, bench/doc_blocks.py); a design value goes in a code span"
    )


@pytest.mark.parametrize("name", HAND_WRITTEN)
def test_generated_blocks_are_what_the_committed_run_gives(name: str) -> None:
    path = REPO / name
    text = path.read_text()
    if doc_blocks.BLOCK.search(text):
        assert BENCHMARKS in doc_figures.page(path).sources
    assert doc_blocks.fill(text, load(BENCHMARKS), path) == text, (
        f"{name}: a generated block is not what bench/results/benchmarks.json gives: "
        ".venv/bin/python bench/bench_doc.py rewrites them"
    )


@pytest.mark.parametrize("name", ["docs/BENCHMARKS.md", "docs/ENCODERS.md"])
def test_whole_pages_are_what_their_run_gives(name: str) -> None:
    path = REPO / name
    source = doc_figures.page(path).sources[0]
    result = load(source)
    if not current(result):
        pytest.skip(
            f"{source.relative_to(REPO)} predates the report split: "
            f"{doc_figures.page(path).generated_by} regenerates it and {name}"
        )
    if name == "docs/BENCHMARKS.md":
        assert bench_doc.render(result, path, source) == path.read_text()
    else:
        assert encoders.markdown(result) == path.read_text()


def disagreements(bench: dict[str, Any], enc: dict[str, Any]) -> list[str]:
    """Where ENCODERS.md's row of a bundle differs from BENCHMARKS.md's figures of it."""
    by_id = {b["encoder_id"]: k for k, b in bench["bundles"].items()}
    shared = [r for r in enc["rows"] if r["encoder_id"] in by_id]
    if not shared:
        return ["ENCODERS.md measures none of make bench's bundles"]
    out = []
    for r in shared:
        key = by_id[r["encoder_id"]]
        if r["lfw_accuracy"] != bench["pairs"][key]["accuracy_ci"]:
            out.append(f"{r['key']}: LFW accuracy")
        for d, o in r["openset"].items():
            rule = bench["openset"][key][d]["rules"]["default rule"]
            for rate in ("dir", "wrong", "fpir"):
                if o[rate] != rule[rate]:
                    out.append(f"{r['key']}: {d} {rate}")
    return out


def test_encoders_and_benchmarks_agree_on_a_bundle_in_both() -> None:
    bench, enc = load(BENCHMARKS), load(ENCODERS)
    if not current(bench) or not current(enc):
        pytest.skip("a result predates the report split (see above)")
    assert disagreements(bench, enc) == []


def test_the_two_benchmarks_agree_when_run_on_the_same_inputs() -> None:
    """bench/encoders.py and make bench, both reduced the same way (tests/unit/data)."""
    small, enc = load(SMALL), load(SMALL_ENCODERS)
    assert disagreements(small, enc) == []
    text = encoders.markdown(enc)
    assert text.splitlines()[0].startswith("<!-- figures: bench/results/encoders.json;")
    assert "(auto)" in text and "DIR at FPIR 1%" in text


def test_the_thresholds_by_gallery_size_are_the_default_bundles() -> None:
    for result in (load(BENCHMARKS), load(SMALL)):
        if not current(result):
            continue
        default = result["bundles"][result["default_bundle"]]
        wanted = next(f.default for f in fields(BuildOptions) if f.name == "encoder")
        assert default["encoder_source"] == wanted
        text = doc_blocks.render("recognition-thresholds", result, REPO / "docs" / "RECOGNITION.md")
        assert f"The default bundle `{default['name']}`" in text
        assert f"{default['identify']['tau'][0][0]:.3f}" in text


# The checker itself, and the generators on a reduced run's result (tests/unit/data).


def test_figures_are_percentages_and_numbers_with_a_decimal_point() -> None:
    text = "72% of 500 at 0.671, 98.7 ± 0.44 %, 1.3x, 3.7e-6, 0.05-0.09, 1e-3, 2,020 in 2026"
    assert doc_figures.figures(text) == [
        "72",
        "0.671",
        "98.7",
        "0.44",
        "1.3",
        "3.7e-6",
        "0.05",
        "0.09",
    ]


def test_code_comments_links_versions_and_blocks_are_not_checked() -> None:
    text = (
        "a `0.6` b <!-- 0.5 --> [x](a1.5.png) Python 3.11, tflite-runtime 2.14, Apache-2.0\n"
        "```\ndistance 0.4459\n```\n"
        "<!-- begin generated: x -->\n12.5%\n<!-- end generated: x -->\nkept 9.5%"
    )
    assert doc_figures.figures(doc_figures.visible(text)) == ["9.5"]


def test_a_figure_the_sources_do_not_hold_is_reported(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text(json.dumps({"acc": 0.98733, "ms": 5.214, "d": [0.4321] * 30}))
    page = tmp_path / "P.md"
    page.write_text(
        f"<!-- figures: {tmp_path / 'r.json'} -->\n"
        "98.73% and 98.7% and 0.987 and 5.2 ms agree; 98.74% does not; 0.4321 is only in a "
        "long list\n"
    )
    assert doc_figures.unfound(doc_figures.page(page)) == ["98.74", "0.4321"]


def test_a_page_must_name_its_sources(tmp_path: Path) -> None:
    page = tmp_path / "P.md"
    page.write_text("# no sources\n")
    with pytest.raises(ValueError, match="first line"):
        doc_figures.page(page)
    page.write_text("<!-- figures: a.json, b.json; generated whole by bench/x.py: rerun -->\n")
    p = doc_figures.page(page)
    assert [s.name for s in p.sources] == ["a.json", "b.json"] and p.generated_by == "bench/x.py"


def test_a_result_before_the_report_split_gives_pending_blocks() -> None:
    text = "<!-- begin generated: readme-pick -->\nold 12.3%\n<!-- end generated: readme-pick -->"
    filled = doc_blocks.fill(text, {"schema": 1}, REPO / "README.md")
    assert "12.3" not in filled and "Pending" in filled


@pytest.mark.parametrize("name", HAND_WRITTEN)
def test_generated_blocks_print_only_the_runs_figures(name: str) -> None:
    """Filled from a (reduced) run, every figure of a page, its blocks included, is one of
    that run's values or of the page's other sources."""
    small, path = load(SMALL), REPO / name
    text = doc_blocks.fill(path.read_text(), small, path)
    others = [
        v
        for s in doc_figures.page(path).sources
        if s != BENCHMARKS
        for v in doc_figures.values(load(s))
    ]
    known = doc_figures.shown_as([*doc_figures.values(small), *others])
    shown = doc_figures.figures(
        doc_figures.visible(text.replace("<!-- begin", "<!--").replace("<!-- end", "<!--"))
    )
    assert [f for f in shown if f not in known] == []


def test_the_benchmarks_page_renders_from_a_run() -> None:
    small = load(SMALL)
    text = bench_doc.render(small, REPO / "docs" / "BENCHMARKS.md", BENCHMARKS)
    assert text.splitlines()[0] == bench_doc.SOURCE_LINE
    assert "DIR at FPIR 1%" in text and "not held out" in text and "[" in text
