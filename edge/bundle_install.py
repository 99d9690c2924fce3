"""Installing a model bundle built elsewhere: a folder or a tarball, checked as ``run``
loads it (every file's sha256, plausible values, the signature when a public key is
set) and by the TFLite runtime of this machine, then put in place atomically.

The old bundle stays in place until the new one is complete: the new files are copied
beside it and swapped in with two renames, so a power cut leaves one or the other.
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edge.bundle import MANIFEST, Bundle, BundleError, load_bundle

logger = logging.getLogger(__name__)

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2")


@dataclass(frozen=True, slots=True)
class Installed:
    bundle: Bundle  # as loaded from its new place
    replaced: str | None  # the encoder id of the bundle it replaced (None: there was none)


def is_tarball(path: Path) -> bool:
    return path.is_file() and path.name.endswith(TAR_SUFFIXES)


def _unpack(tarball: Path, into: Path) -> Path:
    """Extract ``tarball`` (only plain files and folders, nothing outside ``into``) and
    return the folder that holds its manifest."""
    try:
        with tarfile.open(tarball) as tar:
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
                tar.extractall(into, filter="data")
            else:  # Debian 12's 3.11.2: the same rules, checked here
                tar.extractall(into, members=_safe_members(tar, tarball))
    except tarfile.ReadError as exc:
        raise BundleError(
            f"{tarball}: not a readable tarball (tar, gzip, bzip2 or xz): re-copy it"
        ) from exc
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"{tarball}: cannot unpack it: {exc}") from exc
    found = sorted(p.parent for p in into.rglob(MANIFEST) if len(p.relative_to(into).parts) <= 2)
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} bundles' "
        raise BundleError(
            f"{tarball}: {what} {MANIFEST} found at its top or one folder down: pack one "
            "bundle folder (`tar czf bundle.tgz -C build bundle-sface`)"
        )
    return found[0]


def _safe_members(tar: tarfile.TarFile, tarball: Path) -> list[tarfile.TarInfo]:
    """Plain files and folders that stay inside the target (tarfile's ``data`` filter,
    for a Python without it): anything else refuses the whole tarball."""
    members = tar.getmembers()
    for m in members:
        parts = Path(m.name).parts
        if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir()):
            raise BundleError(
                f"{tarball}: {m.name!r} is not a plain file inside the tarball: refused"
            )
    return members


def _check_runtime(bundle: Bundle) -> None:
    """Load the models with this machine's runtime: a bundle it cannot run is refused
    before it replaces one that works."""
    from edge.engine import load_engine

    load_engine(bundle)


def install_bundle(source: Path, dest: Path, public_key: Path | None = None) -> Installed:
    """Check the bundle at ``source`` (a folder or a tarball) and put it at ``dest``."""
    if not source.exists():
        raise BundleError(f"{source}: no such file or folder")
    dest = dest.absolute()
    with tempfile.TemporaryDirectory(prefix="edge-face-bundle-") as tmp:
        folder = _unpack(source, Path(tmp)) if is_tarball(source) else source
        if not folder.is_dir():
            raise BundleError(
                f"{source}: neither a bundle folder nor a tarball ({', '.join(TAR_SUFFIXES)})"
            )
        if folder.resolve() == dest.resolve():
            raise BundleError(f"{source} is already the configured bundle ({dest})")
        _check_runtime(load_bundle(folder, public_key=public_key))
        replaced = _encoder_id(dest)
        staging: Path | None = None
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new-", dir=dest.parent))
            shutil.copytree(folder, staging, dirs_exist_ok=True)
            staging.chmod(0o755)
            _swap(staging, dest)
        except OSError as exc:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            raise BundleError(
                f"cannot write {dest}: {exc.strerror or exc} (install as the owner of "
                f"{dest.parent}, e.g. with sudo, or set [model] bundle to a folder you own)"
            ) from exc
    bundle = load_bundle(dest, public_key=public_key)
    logger.info("installed bundle %s (encoder %s) at %s", bundle.manifest.name,
                bundle.manifest.encoder_id, dest)  # fmt: skip
    return Installed(bundle, replaced)


def _encoder_id(dest: Path) -> str | None:
    try:
        return load_bundle(dest, verify_hashes=False).manifest.encoder_id
    except BundleError:
        return None


def _swap(staging: Path, dest: Path) -> None:
    """Put ``staging`` at ``dest``; an old bundle there is moved aside, then deleted."""
    old = dest.with_name(f".{dest.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        if dest.is_dir() and not (dest / MANIFEST).is_file() and any(dest.iterdir()):
            shutil.rmtree(staging)
            raise BundleError(f"{dest} exists and is not a model bundle: it is left alone")
        dest.rename(old)
    staging.rename(dest)
    if old.exists():
        shutil.rmtree(old)
