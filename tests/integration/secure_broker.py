"""Brokers that check who connects, for the tests of what a refused connection says: a
mosquitto with a password file (``mosquitto_passwd``, from the mosquitto package), and one
with a TLS listener whose certificates ``openssl`` makes here (a CA, a server certificate
for the names given)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from broker import Broker


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"this test needs {name} (apt-get install -y mosquitto openssl)")
    return found


def _listener_lines(broker: Broker) -> list[str]:
    """The broker's config without its anonymous access line."""
    return [line for line in broker.conf.read_text().splitlines() if not line.startswith("allow_")]


def password_broker(workdir: Path, users: dict[str, str]) -> Broker:
    """A mosquitto that lets in only ``users`` (name -> password), no anonymous client."""
    broker = Broker(workdir)
    passwords = workdir / "passwords"
    passwords.touch(mode=0o600)
    for user, password in users.items():
        subprocess.run([_tool("mosquitto_passwd"), "-b", str(passwords), user, password],
                       check=True, capture_output=True)  # fmt: skip
    lines = [*_listener_lines(broker), "allow_anonymous false", f"password_file {passwords}"]
    broker.conf.write_text("\n".join(lines) + "\n")
    return broker


def make_ca(workdir: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    workdir.mkdir(parents=True, exist_ok=True)
    crt, key = workdir / f"{name}.crt", workdir / f"{name}.key"
    subprocess.run([_tool("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "2", "-subj", f"/CN={name}", "-addext",
                    "basicConstraints=critical,CA:TRUE", "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign"], check=True, capture_output=True)  # fmt: skip
    return crt, key


def make_server_certificate(workdir: Path, ca: tuple[Path, Path], names: str) -> tuple[Path, Path]:
    """A server certificate signed by ``ca`` for ``names`` (a subjectAltName value, such
    as ``IP:127.0.0.1`` or ``DNS:broker.example``): (certificate, key)."""
    crt, key, csr = workdir / "server.crt", workdir / "server.key", workdir / "server.csr"
    ext = workdir / "server.ext"
    ext.write_text(f"subjectAltName={names}\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                   "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n")  # fmt: skip
    openssl = _tool("openssl")
    subprocess.run([openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=mqtt broker"],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run([openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey",
                    str(ca[1]), "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile",
                    str(ext)], check=True, capture_output=True)  # fmt: skip
    return crt, key


def tls_broker(workdir: Path, certificate: tuple[Path, Path]) -> Broker:
    """A mosquitto whose only listener speaks TLS with ``certificate`` (anonymous)."""
    broker = Broker(workdir)
    crt, key = certificate
    lines = [*_listener_lines(broker), "allow_anonymous true", f"certfile {crt}", f"keyfile {key}"]
    broker.conf.write_text("\n".join(lines) + "\n")
    return broker
