"""A bundle's manifest is protected: implausible values are refused, a signature by the
configured key is required and checked, and check-config verifies what run verifies.
Everything on a copy of the committed real bundle models/edge-face-dlib-cut."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.bundle import BundleError, load_bundle
from edge.cli import main as edge_main
from edge.signing import SIGNATURE, SignatureError, generate_keys, sign_bundle, verify_bundle
from model_export.cli import main as export_main

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.fixture
def bundle(tmp_path: Path, repo_root: Path) -> Path:
    return Path(shutil.copytree(repo_root / "models" / "edge-face-dlib-cut", tmp_path / "bundle"))


def edit(root: Path, change: dict[str, object], drop: tuple[str, ...] = ()) -> Path:
    path = root / "manifest.json"
    data = json.loads(path.read_text())
    for key in drop:
        del data[key]
    for dotted, value in change.items():
        node = data
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    path.write_text(json.dumps(data, indent=2))
    return root


def test_the_real_bundle_is_plausible(bundle: Path) -> None:
    assert load_bundle(bundle).manifest.identify is not None


def test_the_issues_edit_is_refused(bundle: Path) -> None:
    """tau.identify 2.0 with the open-set table (and its cohort) deleted named strangers."""
    edit(bundle, {"tau.identify": 2.0}, drop=("identify", "cohort"))
    with pytest.raises(
        BundleError, match=r"implausible.*tau\.identify 2 is looser than tau\.verify"
    ):
        load_bundle(bundle)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"tau.verify": 0.95}, "tau.verify 0.95 is at or beyond 99% of the distances between two"),
        ({"tau.identify": 3.0}, "outside its open-set table"),
        ({"identify.tau": [[2.0] * 7] * 6}, "reaches the median score of a cohort stranger"),
    ],
)
def test_implausible_values_are_refused(bundle: Path, change: dict[str, object], why: str) -> None:
    with pytest.raises(BundleError, match=why):
        load_bundle(edit(bundle, change))


def test_a_table_that_loosens_with_gallery_size_is_refused(bundle: Path) -> None:
    table = json.loads((bundle / "manifest.json").read_text())["identify"]["tau"]
    with pytest.raises(BundleError, match="looser as the gallery grows"):
        load_bundle(edit(bundle, {"identify.tau": table[::-1]}))


def test_signed_bundle_verifies_and_any_edit_is_refused(bundle: Path, tmp_path: Path) -> None:
    private, public = generate_keys(tmp_path / "keys")
    assert private.stat().st_mode & 0o777 == 0o600
    kid = sign_bundle(bundle, private)
    assert load_bundle(bundle, public_key=public).manifest.encoder_id
    assert verify_bundle(bundle, (bundle / "manifest.json").read_bytes(), public) == kid
    # a plausible edit the value checks cannot see: the signature does
    edit(bundle, {"tau.verify": 0.5})
    assert load_bundle(bundle).manifest.tau.verify == 0.5
    with pytest.raises(BundleError, match="manifest was changed after signing"):
        load_bundle(bundle, public_key=public)


def test_unsigned_or_other_key_is_refused(bundle: Path, tmp_path: Path) -> None:
    _, public = generate_keys(tmp_path / "mine")
    other, _ = generate_keys(tmp_path / "theirs")
    with pytest.raises(BundleError, match="not signed"):
        load_bundle(bundle, public_key=public)
    sign_bundle(bundle, other)
    with pytest.raises(BundleError, match=r"signed with key .* public_key is key"):
        load_bundle(bundle, public_key=public)
    (bundle / SIGNATURE).write_text("garbage")
    with pytest.raises(BundleError, match="not a readable signature"):
        load_bundle(bundle, public_key=public)


def test_keys_are_checked(tmp_path: Path) -> None:
    generate_keys(tmp_path)
    with pytest.raises(SignatureError, match="exists: keygen never overwrites"):
        generate_keys(tmp_path)
    junk = tmp_path / "junk.pub"
    junk.write_text("not a key")
    with pytest.raises(SignatureError, match="not a public key"):
        verify_bundle(tmp_path, b"{}", junk)
    with pytest.raises(SignatureError, match="no such public key file"):
        verify_bundle(tmp_path, b"{}", tmp_path / "missing.pub")


def test_openssh_ed25519_keys_work(bundle: Path, tmp_path: Path) -> None:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    sign_bundle(bundle, key)
    load_bundle(bundle, public_key=key.with_suffix(".pub"))


def test_model_export_keygen_sign_and_check_config(bundle: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    keys = tmp_path / "keys"
    made = runner.invoke(export_main, ["keygen", "--out", str(keys)])
    assert made.exit_code == 0, made.output
    signed = runner.invoke(
        export_main, ["sign", "--bundle", str(bundle), "--key", str(keys / "bundle-signing.key")]
    )
    assert signed.exit_code == 0 and "signed with key" in signed.output, signed.output
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[model]\nbundle = "{bundle}"\npublic_key = "{keys / "bundle-signing.pub"}"\n'
        f'[gallery]\npath = "{tmp_path / "g.db"}"\n'
    )
    ok = runner.invoke(edge_main, ["--config", str(cfg), "check-config"])
    assert ok.exit_code == 0, ok.output
    # check-config verifies what run verifies: a flipped byte in the encoder...
    encoder = bundle / "encoder.tflite"
    data = bytearray(encoder.read_bytes())
    data[len(data) // 2] ^= 0xFF
    encoder.write_bytes(bytes(data))
    bad = runner.invoke(edge_main, ["--config", str(cfg), "check-config"])
    assert bad.exit_code == 2 and "does not match the manifest" in bad.output, bad.output
    assert "Traceback" not in bad.output


def test_check_config_notes_an_unchecked_signature(bundle: Path, tmp_path: Path) -> None:
    private, _ = generate_keys(tmp_path / "keys")
    sign_bundle(bundle, private)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[model]\nbundle = "{bundle}"\n[gallery]\npath = "{tmp_path / "g.db"}"\n')
    out = CliRunner().invoke(edge_main, ["--config", str(cfg), "check-config"])
    assert out.exit_code == 0 and "public_key is not set" in out.output, out.output


def test_run_refuses_an_unsigned_bundle_when_a_key_is_set(bundle: Path, tmp_path: Path) -> None:
    _, public = generate_keys(tmp_path / "keys")
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[model]\nbundle = "{bundle}"\npublic_key = "{public}"\n'
        f'[gallery]\npath = "{tmp_path / "g.db"}"\n[camera]\nsource = "{tmp_path / "none.mp4"}"\n'
    )
    out = CliRunner().invoke(edge_main, ["--config", str(cfg), "run", "--dry-run"])
    assert out.exit_code != 0 and "not signed" in out.output, out.output
    assert "Traceback" not in out.output
