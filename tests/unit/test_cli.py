from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from edge import __version__
from edge.cli import main
from model_export.cli import main as export_main

pytestmark = pytest.mark.usefixtures("clean_env")


def run(*args: str, env: dict[str, str] | None = None) -> click.testing.Result:
    return CliRunner().invoke(main, list(args), env=env)


def test_check_config_on_the_documented_file_exits_0(repo_root: Path) -> None:
    result = run("--config", str(repo_root / "config.toml"), "check-config")
    assert result.exit_code == 0, result.output
    assert "config.toml: OK" in result.output


def test_check_config_misspelt_key_exits_2_naming_key_and_section(tmp_path: Path) -> None:
    bad = tmp_path / "config.toml"
    bad.write_text('[mqtt]\nhots = "broker"\n')
    result = run("--config", str(bad), "check-config")
    assert result.exit_code == 2
    assert f"{bad}: [mqtt] hots: unknown key (did you mean 'host'?)" in result.output


def test_check_config_unreadable_password_file_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[mqtt]\nusername = "u"\npassword_file = "missing-secret"\n')
    result = run("--config", str(cfg), "check-config")
    assert result.exit_code == 2
    assert "[mqtt] password_file: cannot read" in result.output


def test_check_config_a_password_file_that_is_not_text_exits_2(tmp_path: Path) -> None:
    (tmp_path / "pw").write_bytes(b"\xff\xfe\x00secret")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[mqtt]\nusername = "u"\npassword_file = "{tmp_path / "pw"}"\n')
    result = run("--config", str(cfg), "check-config")
    assert result.exit_code == 2 and "is not UTF-8 text" in result.output
    assert "Traceback" not in result.output


def test_check_config_json_and_env_override(tmp_path: Path, repo_root: Path) -> None:
    result = run(
        "--config",
        str(repo_root / "config.toml"),
        "check-config",
        "--json",
        env={"EDGE_FACE_MQTT_PORT": "1884"},
    )
    out = json.loads(result.output)
    assert result.exit_code == 0 and out["ok"] is True
    assert out["config"]["mqtt"]["port"] == 1884
    bad = run("check-config", "--json", env={"EDGE_FACE_MQTT_PORT": "x"})
    assert bad.exit_code == 2 and json.loads(bad.output)["ok"] is False


def test_check_config_never_shows_a_camera_password(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[camera]\nsource = "rtsp://admin:secret@10.0.0.5/live"\n')
    for args in (["check-config"], ["check-config", "--json"]):
        result = run("--config", str(cfg), *args)
        assert "secret" not in result.output, result.output
    out = json.loads(run("--config", str(cfg), "check-config", "--json").output)
    assert out["config"]["camera"]["source"] == "rtsp://admin:***@10.0.0.5/live"


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[mqtt]\nport = 0\n")
    result = run("check-config", env={"EDGE_FACE_CONFIG": str(cfg)})
    assert result.exit_code == 2
    assert "[mqtt] port: expected an integer 1-65535, got 0" in result.output


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            found += all_commands(cmd, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("cli", [main, export_main], ids=["edge-face", "model-export"])
def test_help_of_every_verb_has_an_example(cli: click.Group) -> None:
    for verb in all_commands(cli):
        result = CliRunner().invoke(cli, [*verb, "--help"])
        assert result.exit_code == 0, (verb, result.output)
        assert "Example" in result.output, f"{' '.join(verb) or 'the group'}: no example in --help"


def test_unknown_verb_is_a_usage_error() -> None:
    assert run("enrol-typo").exit_code == 2


def test_help_imports_nothing_heavy() -> None:
    """--help must not load OpenCV, numpy, LiteRT or TensorFlow (slow on a Pi, maybe absent)."""
    code = (
        "import sys; from edge.cli import main; from model_export.cli import main as m\n"
        "heavy = [m for m in ('cv2', 'numpy', 'tensorflow', 'ai_edge_litert', 'tflite_runtime',"
        " 'paho', 'sqlite3') if m in sys.modules]\nprint(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
