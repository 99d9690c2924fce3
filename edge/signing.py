"""Signed model bundles: an Ed25519 signature over ``manifest.json``'s exact bytes.

The manifest lists every other file's sha256, so one signature covers the whole bundle:
the encoder, the detector, the cohort and every threshold. ``model-export build --sign
KEY`` (or ``model-export sign``) writes ``manifest.sig`` beside the manifest; a device with
``[model] public_key`` set refuses a bundle that has no signature, or one that does not
verify with that key. Keys are Ed25519, in PEM (``model-export keygen``) or OpenSSH form
(``ssh-keygen -t ed25519``): a private key never has to be on the device.

``cryptography`` is imported only when a key is read, so nothing here costs at import time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.errors import EdgeError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

SIGNATURE = "manifest.sig"
SIGNATURE_FORMAT = 1
ALGORITHM = "ed25519"
PRIVATE_NAME = "bundle-signing.key"
PUBLIC_NAME = "bundle-signing.pub"


class SignatureError(EdgeError):
    """A key that cannot be used, or a bundle whose signature is missing or wrong."""


def _raw_public(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint of a public key: the first 16 hex digits of its sha256."""
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SignatureError(f"{path}: no such {what} file") from None
    except OSError as exc:
        raise SignatureError(f"{path}: cannot read the {what}: {exc.strerror}") from exc


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file or an OpenSSH ``ssh-ed25519`` line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read(path, "public key")
    try:
        if data.lstrip().startswith(b"ssh-"):
            key: Any = serialization.load_ssh_public_key(data.strip())
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SignatureError(
            f"{path}: not a public key ({exc}): give the .pub file `model-export keygen` "
            "wrote, or an `ssh-keygen -t ed25519` public key"
        ) from exc
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for odd key types
        raise SignatureError(f"{path}: not a usable public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(
            f"{path}: a {type(key).__name__.removeprefix('_')}, not an Ed25519 key: "
            "bundles are signed with Ed25519 (`model-export keygen`)"
        )
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An unencrypted Ed25519 private key from a PEM (PKCS#8) or OpenSSH file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read(path, "private key")
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key: Any = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # a passphrase-protected key
        raise SignatureError(
            f"{path}: the key is protected by a passphrase; sign with an unencrypted copy "
            "kept offline (`model-export keygen` writes one)"
        ) from exc
    except ValueError as exc:
        raise SignatureError(
            f"{path}: not a private key ({exc}): give the .key file `model-export keygen` wrote"
        ) from exc
    except Exception as exc:
        raise SignatureError(f"{path}: not a usable private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path}: not an Ed25519 key: make one with `model-export keygen`")
    return key


def generate_keys(out: Path) -> tuple[Path, Path]:
    """A new key pair in ``out``: the private key (mode 0600, for the build machine) and
    the public key (for every device's ``[model] public_key``)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private, public = out / PRIVATE_NAME, out / PUBLIC_NAME
    taken = [p for p in (private, public) if p.exists()]
    if taken:
        raise SignatureError(
            f"{taken[0]} exists: keygen never overwrites a key (bundles signed with it would "
            "stop verifying); choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def sign_bundle(root: Path, private_key: Path) -> str:
    """Sign ``root``'s manifest.json with the key; write manifest.sig; return the key id."""
    key = load_private_key(private_key)
    manifest = _read(root / "manifest.json", "manifest")
    record = {
        "format": SIGNATURE_FORMAT,
        "algorithm": ALGORITHM,
        "key_id": key_id(key.public_key()),
        "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
        "signature": base64.b64encode(key.sign(manifest)).decode("ascii"),
    }
    tmp = root / f"{SIGNATURE}.part"
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(root / SIGNATURE)
    return str(record["key_id"])


def signature_key_id(root: Path) -> str | None:
    """The key id a bundle says it is signed with (None: not signed, or unreadable)."""
    try:
        record = json.loads((root / SIGNATURE).read_text(encoding="utf-8"))
        return str(record["key_id"]) if isinstance(record, dict) else None
    except (OSError, ValueError, KeyError):
        return None


def verify_bundle(root: Path, manifest: bytes, public_key: Path) -> str:
    """Check ``manifest`` (manifest.json's bytes as read) against ``root``'s manifest.sig
    and the public key; return the key id, or raise :class:`SignatureError`."""
    from cryptography.exceptions import InvalidSignature

    key = load_public_key(public_key)
    wanted = key_id(key)
    path = root / SIGNATURE
    if not path.is_file():
        raise SignatureError(
            f"{root}: the bundle is not signed ({SIGNATURE} missing) and [model] public_key "
            f"is set: sign it on the build machine with `model-export sign --bundle DIR --key "
            "KEY` (or build with --sign KEY), or unset public_key"
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        signature = base64.b64decode(record["signature"], validate=True)
        found = str(record.get("key_id", "?"))
        algorithm = record.get("algorithm")
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise SignatureError(f"{path}: not a readable signature ({exc}): sign again") from exc
    if algorithm != ALGORITHM:
        raise SignatureError(f"{path}: algorithm {algorithm!r}, expected {ALGORITHM!r}")
    try:
        key.verify(signature, manifest)
    except InvalidSignature:
        if found != wanted:
            raise SignatureError(
                f"{root}: signed with key {found}, [model] public_key is key {wanted}: "
                "install a bundle signed with your key, or set the matching public key"
            ) from None
        raise SignatureError(
            f"{root}: the signature does not match manifest.json: the manifest was changed "
            "after signing (edge-face never runs a model it cannot verify); re-copy the bundle"
        ) from None
    return wanted
