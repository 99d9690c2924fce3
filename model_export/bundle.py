"""Writing model bundles, and the build cache keyed by the hashes of every input."""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from edge.bundle import FORMAT_VERSION, MANIFEST, load_bundle, sha256_file

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
# The code that decides a bundle's content: every module of the project's own packages that
# the build imports, directly or through other project modules (imports inside functions
# included), found by reading their import statements; and the package data the build
# reads. A change to any of them is a new key; code the build never imports (the daemon's
# tracker, the training loop) is not part of it.
PROJECT_PACKAGES = ("edge", "model_export")
BUILD_ENTRY = "model_export.build"
BUILD_DATA = ("model_export/boxmap.json",)


def _module_file(root: Path, name: str) -> Path | None:
    """The source of module ``name`` under ``root`` (None: not a module, e.g. a function)."""
    base = root.joinpath(*name.split("."))
    for path in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path, name: str) -> Iterator[str]:
    """Every module name an import statement of module ``name`` (file ``path``) may load:
    ``from X import Y`` gives X and X.Y (Y may be a submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{node.module}" if node.module else parent
            else:
                base = node.module or ""
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def build_modules(root: Path = ROOT, entry: str = BUILD_ENTRY) -> dict[str, Path]:
    """Module name -> source file of every project module ``entry`` imports, itself and
    the packages they sit in (their ``__init__`` runs first) included."""
    found: dict[str, Path] = {}
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in found or name.split(".")[0] not in PROJECT_PACKAGES:
            continue
        path = _module_file(root, name)
        if path is None:
            continue
        found[name] = path
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += _imports(path, name)
    return found


def code_files(root: Path = ROOT) -> list[Path]:
    """The files whose content the build cache key covers, sorted by path."""
    return sorted({*build_modules(root).values(), *(root / name for name in BUILD_DATA)})


def code_hash() -> str:
    digest = hashlib.sha256()
    for path in code_files(ROOT):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes() if path.is_file() else b"(missing)")
    return digest.hexdigest()


def cache_key(parts: dict[str, Any], files: Iterable[Path]) -> str:
    """A key from the options, the code, and the content of every input file."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    digest.update(code_hash().encode())
    for path in files:
        digest.update(str(path.name).encode())
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()[:24]


def finish_bundle(staging: Path, manifest: dict[str, Any], encoder_file: str) -> None:
    """Hash every file, derive the encoder id, write manifest.json (atomically)."""
    files = {
        p.name: sha256_file(p)
        for p in sorted(staging.iterdir())
        if p.is_file() and p.name != MANIFEST
    }
    manifest = {
        "format": FORMAT_VERSION,
        **manifest,
        "encoder_id": f"{manifest['name']}-{files[encoder_file][:16]}",
        "files": files,
    }
    tmp = staging / f"{MANIFEST}.part"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(staging / MANIFEST)


def publish(cached: Path, out: Path) -> Path:
    """Copy a finished bundle from the cache to ``out`` (replacing an old bundle there)."""
    load_bundle(cached)  # never hand out a bundle that does not verify
    if out.resolve() == cached.resolve():
        return out
    if out.exists():
        if not (out / MANIFEST).is_file() and any(out.iterdir()):
            raise FileExistsError(f"{out} exists and is not a model bundle: choose another --out")
        shutil.rmtree(out)
    shutil.copytree(cached, out)
    return out
