"""The build cache key's code: the modules ``model_export/build.py`` really imports,
found by reading import statements (``model_export.bundle.build_modules``), not a list
kept by hand."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

from model_export.bundle import BUILD_DATA, ROOT, build_modules, code_files, code_hash

# The hand-kept list the key used to hash. Modules moved since (edge's are another
# team's to move) are looked for under their old path only while it exists.
OLD_LIST = [
    "edge/align.py",
    "edge/boxmap.py",
    "edge/chip.py",
    "edge/landmarks.py",
    "edge/embedder.py",
    "edge/detect/yunet.py",
    "edge/images.py",
    "edge/bundle.py",
    "model_export/build.py",
    "model_export/bundle.py",
    "model_export/calibration.py",
    "model_export/dlib_arch.py",
    "model_export/dlib_import.py",
    "model_export/dlib_serialize.py",
    "model_export/encoders.py",
    "model_export/evaluate.py",
    "model_export/export.py",
    "model_export/faces.py",
    "model_export/golden.py",
    "model_export/impostors.py",
    "edge/decision.py",  # was edge/matcher.py, and edge/engine.py for distance()
    "model_export/keras_models.py",
    "model_export/landmark_import.py",
    "model_export/metrics.py",
    "model_export/onnx_import.py",
    "model_export/quantize.py",
    "edge/tflite.py",
]


def members() -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in build_modules().values()}


def test_the_old_list_and_bundle_py_are_covered() -> None:
    found = members()
    assert "model_export/bundle.py" in found
    assert "model_export/build.py" in found
    for name in OLD_LIST:
        if name.startswith("model_export/"):
            assert (ROOT / name).is_file(), name
        if (ROOT / name).is_file():
            assert name in found, name
    files = {p.relative_to(ROOT).as_posix() for p in code_files()}
    assert files >= found | set(BUILD_DATA)
    assert "model_export/boxmap.json" in files
    assert [p.relative_to(ROOT).as_posix() for p in code_files()] == sorted(files)


def _project_imports(path: Path, name: str) -> set[str]:
    """The module names a file's import statements name, resolved by importlib (another
    way than build_modules' own)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in ("edge", "model_export")}


def _file_of(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:  # a.b.c where a.b is a module: c is a name in it
        return None
    return None if spec is None or spec.origin is None else Path(spec.origin).resolve()


def test_the_set_is_closed() -> None:
    """Every project import of every member (inside functions too) is a member."""
    modules = build_modules()
    files = set(modules.values())
    for name, path in modules.items():
        for imported in _project_imports(path, name):
            file = _file_of(imported)
            if file is not None:
                assert file in files, f"{name} imports {imported} ({file}), not in the key"


def test_what_importing_the_build_loads_is_covered() -> None:
    """The project modules importing model_export.build really loads are all members."""
    code = (
        "import sys, model_export.build\n"
        "for m in sorted(sys.modules):\n"
        "    if m.split('.')[0] in ('edge', 'model_export'):\n"
        "        print(sys.modules[m].__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    loaded = {Path(line).resolve() for line in out.stdout.split()}
    assert Path(ROOT / "edge" / "bundle.py") in loaded
    assert loaded <= set(build_modules().values())


def test_modules_the_build_does_not_import_are_left_out() -> None:
    found = members()
    for name in ("edge/tracker.py", "edge/cli.py", "model_export/train.py", "model_export/cli.py"):
        assert (ROOT / name).is_file(), name
        assert name not in found, name


def test_imports_inside_functions_and_relative_ones(tmp_path: Path) -> None:
    files = {
        "edge/__init__.py": "",
        "edge/a.py": "import os\nfrom edge import b\n",
        "edge/b.py": "",
        "edge/unused.py": "",
        "model_export/__init__.py": "from edge import a\n",
        "model_export/build.py": (
            "import numpy\n"
            "from . import near\n"
            "def f():\n"
            "    from model_export.sub.deep import g\n"
            "    import edge.a\n"
        ),
        "model_export/near.py": "from .sub import other\n",
        "model_export/sub/__init__.py": "",
        "model_export/sub/deep.py": "from ..near import x\n",
        "model_export/sub/other.py": "from .. import near\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = {p.relative_to(tmp_path).as_posix() for p in build_modules(tmp_path).values()}
    assert found == set(files) - {"edge/unused.py"}


def test_code_hash_is_stable() -> None:
    assert code_hash() == code_hash()
    assert len(code_hash()) == 64


KEY_INPUTS = """
from pathlib import Path
from model_export.build import key_inputs
from model_export.data import Pair
people = {f"p{i}": [Path(f"/d/p{i}/{j}.jpg") for j in range(3)] for i in range(20)}
pairs = [Pair(0, Path(f"/d/q{i}/0.jpg"), Path(f"/d/q{i + 1}/1.jpg"), False) for i in range(40)]
print("\\n".join(map(str, key_inputs([Path("/m/encoder.onnx"), Path("/d/p0/0.jpg")], people, pairs))))
"""


def test_the_key_inputs_do_not_depend_on_the_hash_seed() -> None:
    """The key once hashed a set of pair photos in its iteration order, which changes with
    PYTHONHASHSEED: no build ever found its cached bundle again."""
    out = []
    for seed in ("1", "2", "3"):
        env = {"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}
        run = subprocess.run([sys.executable, "-c", KEY_INPUTS], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=True)  # fmt: skip
        out.append(run.stdout.split())
    assert out[0] == out[1] == out[2]
    files = out[0]
    assert files[:2] == ["/m/encoder.onnx", "/d/p0/0.jpg"]  # the fixed inputs first, once
    assert len(files) == len(set(files)) == 2 + 59 + 80  # every photo once
