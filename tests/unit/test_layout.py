"""The shape of the house (docs/ARCHITECTURE.md): small modules, no import cycles, the
decision in one pure module, the device never importing TensorFlow."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIMITS = {"edge": 300, "model_export": 500}


def modules(package: str) -> dict[str, Path]:
    root = REPO / package
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def top_level_imports(path: Path, known: set[str]) -> set[str]:
    """The project modules a module imports when it is imported (not inside functions,
    not under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        out |= {n for n in names if n in known}
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


@pytest.mark.parametrize("package", ["edge", "model_export"])
def test_modules_stay_small(package: str) -> None:
    long = {
        name: n
        for name, path in modules(package).items()
        if (n := len(path.read_text().splitlines())) > LIMITS[package]
    }
    assert not long, f"modules over {LIMITS[package]} lines: {long}"


def test_no_import_cycles() -> None:
    found = {**modules("edge"), **modules("model_export")}
    known = set(found)
    graph = {name: top_level_imports(path, known) - {name} for name, path in found.items()}
    # importing a package runs its __init__: a module importing edge.x also imports edge
    assert cycles(graph) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_the_decision_is_pure_and_the_device_never_imports_tensorflow() -> None:
    decision = top_level_imports(REPO / "edge" / "decision.py", set(modules("edge")))
    assert decision <= {"edge.types", "edge.open_set"}, decision
    table = top_level_imports(REPO / "edge" / "open_set.py", set(modules("edge")))
    assert not table, table  # the table module is numpy only, too
    for pure in ("decision.py", "open_set.py"):
        source = (REPO / "edge" / pure).read_text()
        assert "import cv2" not in source and "sqlite3" not in source
    for name, path in modules("edge").items():
        assert "tensorflow" not in path.read_text(), name


def test_test_files_have_unique_basenames() -> None:
    """tests/ has no __init__.py, so pytest imports test files by basename: two files of one
    name in unit/ and integration/ stop the whole collection (as CI did once)."""
    seen: dict[str, Path] = {}
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        assert path.name not in seen, f"{path} and {seen[path.name]} share a basename"
        seen[path.name] = path


def test_mutation_testing_can_collect_every_unit_test_it_runs() -> None:
    """mutmut runs the unit tests in its own copy of the tree: a test that imports bench/
    (or reads docs/) fails to collect there unless that folder is copied, and stops
    ``make mutate`` before any mutant runs (as test_bench_feedback.py once did)."""
    import tomllib

    conf = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]
    ignored = {a.removeprefix("--ignore=") for a in conf["pytest_add_cli_args_test_selection"]}
    copied = set(conf["also_copy"]) | set(conf["source_paths"])
    for path in sorted((REPO / "tests" / "unit").glob("test_*.py")):
        if f"tests/unit/{path.name}" in ignored:
            continue
        text = path.read_text()
        for folder in ("bench", "docs"):
            if f'/ "{folder}"' in text:
                assert folder in copied, f"{path.name} reads {folder}/: copy it or ignore the test"
