from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import Config, env_overrides, find_config_file, load_config, parse_config
from edge.config_check import check_config
from edge.errors import ConfigError
from edge.secrets import mqtt_password


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env=env or {})
    return info.value.problems


def test_documented_config_equals_the_built_in_defaults(repo_root: Path) -> None:
    from_file = load_config(repo_root / "config.toml", env={})
    assert dataclasses.replace(from_file, source=None) == parse_config("", env={})
    assert from_file.source == (repo_root / "config.toml").resolve()


def test_every_key_of_every_section_is_documented(repo_root: Path) -> None:
    text = (repo_root / "config.toml").read_text()
    for section in (
        "camera",
        "model",
        "gallery",
        "recognition",
        "tracking",
        "pipeline",
        "mqtt",
        "logging",
    ):
        assert f"[{section}]" in text
        for f in dataclasses.fields(getattr(Config(), section)):
            assert f"{f.name} =" in text, f"[{section}] {f.name} is not documented in config.toml"


def test_valid_file_values() -> None:
    cfg = parse_config(
        '[camera]\nsource = "rtsp://cam/stream"\n[recognition]\ntau = 0.42\n'
        '[mqtt]\nhost = "broker"\nport = 8883\ntls = true\ndevice_id = "front-door"\n',
        env={},
    )
    assert cfg.camera.source == "rtsp://cam/stream"
    assert cfg.recognition.tau == pytest.approx(0.42)
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.tls) == ("broker", 8883, True)
    assert cfg.mqtt.device_id == "front-door"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.mqtt.port = 1  # type: ignore[misc]


def test_wrong_type_names_file_section_key_and_value() -> None:
    assert problems('[mqtt]\nport = "abc"\n') == [
        'config.toml: [mqtt] port: expected an integer 1-65535, got "abc"'
    ]


def test_out_of_range_values() -> None:
    out = problems("[mqtt]\nport = 70000\nkeepalive = 1\n[recognition]\ntau = -0.1\n")
    assert any("[mqtt] port: expected an integer 1-65535, got 70000" in p for p in out)
    assert any("[mqtt] keepalive: expected an integer 5-3600, got 1" in p for p in out)
    assert any("[recognition] tau: expected a number > 0 and <= 4" in p for p in out)


def test_misspelt_key_names_key_section_and_suggests() -> None:
    [line] = problems("[mqtt]\nprot = 1883\n")
    assert line.startswith("config.toml: [mqtt] prot: unknown key (did you mean 'port'?)")


def test_password_in_the_config_is_refused_with_the_way_to_do_it() -> None:
    [line] = problems('[mqtt]\npassword = "hunter2"\n')
    assert "[mqtt] password" in line and "password_file" in line
    assert "hunter2" not in line


def test_unknown_section_and_key_outside_a_section() -> None:
    assert "[mqt]: unknown section (did you mean [mqtt]?)" in problems("[mqt]\nport = 1\n")[0]
    assert "tau: a key outside any section" in problems("tau = 0.5\n")[0]


def test_invalid_toml_and_other_kinds() -> None:
    assert "not valid TOML" in problems("[mqtt\n")[0]
    out = problems(
        '[camera]\nsource = -1\n[logging]\nlevel = "LOUD"\n[mqtt]\ntls = "maybe"\n'
        'topic_prefix = "home/#"\n'
    )
    text = "\n".join(out)
    assert "[camera] source: expected a device number >= 0, got -1" in text
    assert (
        '[logging] level: expected one of "DEBUG", "INFO", "WARNING", "ERROR", got "LOUD"' in text
    )
    assert '[mqtt] tls: expected true or false, got "maybe"' in text
    assert "[mqtt] topic_prefix" in text and "wildcards" in text
    assert len(out) == 4


def test_environment_overrides_with_types() -> None:
    cfg = parse_config(
        "[mqtt]\nport = 1883\n",
        env={
            "EDGE_FACE_MQTT_PORT": "1884",
            "EDGE_FACE_CAMERA_SOURCE": "2",
            "EDGE_FACE_RECOGNITION_TAU": "0.5",
            "EDGE_FACE_MQTT_TLS": "true",
            "EDGE_FACE_MQTT_TOPIC_PREFIX": "home/faces",
            "EDGE_FACE_DATA": "/not/a/key",
            "EDGE_FACE_CONFIG": "/ignored/here",
        },
    )
    assert cfg.mqtt.port == 1884 and cfg.mqtt.tls is True
    assert cfg.camera.source == 2 and isinstance(cfg.camera.source, int)
    assert cfg.recognition.tau == 0.5
    assert cfg.mqtt.topic_prefix == "home/faces"


def test_empty_environment_value_unsets_the_key() -> None:
    cfg = parse_config("[recognition]\ntau = 0.3\n", env={"EDGE_FACE_RECOGNITION_TAU": ""})
    assert cfg.recognition.tau is None


def test_bad_environment_value_names_the_variable() -> None:
    out = problems("", env={"EDGE_FACE_MQTT_PORT": "abc", "EDGE_FACE_MQTT_PROT": "1"})
    assert "environment variable EDGE_FACE_MQTT_PORT: [mqtt] port: expected an integer" in out[0]
    assert "environment variable EDGE_FACE_MQTT_PROT: [mqtt] prot: unknown key" in out[1]


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "edge.toml"
    path.parent.mkdir()
    path.write_text('[model]\nbundle = "bundle"\n[gallery]\npath = "../data/g.db"\n')
    cfg = load_config(path, env={})
    assert cfg.model.bundle == tmp_path / "conf" / "bundle"
    assert cfg.gallery.path == tmp_path / "data" / "g.db"


def test_config_file_lookup_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    assert find_config_file(a, {"EDGE_FACE_CONFIG": str(b)}) == a
    assert find_config_file(None, {"EDGE_FACE_CONFIG": str(b)}) == b
    (tmp_path / "config.toml").write_text("")
    assert (
        find_config_file(None, {"CONFIGURATION_DIRECTORY": str(tmp_path)})
        == tmp_path / "config.toml"
    )


def test_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml", env={})


def test_password_file_first_line(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\nignored\n")
    cfg = parse_config(f'[mqtt]\nusername = "u"\npassword_file = "{secret}"\n', env={})
    assert mqtt_password(cfg.mqtt, env={}) == "s3cret"
    assert "s3cret" not in repr(cfg)


def test_password_from_systemd_credential(tmp_path: Path) -> None:
    (tmp_path / "mqtt_password").write_text("from-systemd")
    cfg = parse_config("", env={})
    assert mqtt_password(cfg.mqtt, env={"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "from-systemd"
    assert mqtt_password(cfg.mqtt, env={}) is None


def test_unreadable_or_empty_password_file(tmp_path: Path) -> None:
    cfg = parse_config(f'[mqtt]\npassword_file = "{tmp_path / "missing"}"\n', env={})
    with pytest.raises(ConfigError, match=r"\[mqtt\] password_file: cannot read"):
        mqtt_password(cfg.mqtt, env={})
    (tmp_path / "empty").write_text("")
    cfg = parse_config(f'[mqtt]\npassword_file = "{tmp_path / "empty"}"\n', env={})
    with pytest.raises(ConfigError, match="is empty"):
        mqtt_password(cfg.mqtt, env={})


def test_check_config_reports_missing_files(tmp_path: Path) -> None:
    cfg = parse_config(
        f'[mqtt]\ntls = true\ntls_ca_file = "{tmp_path / "ca.crt"}"\n'
        f'tls_cert_file = "{tmp_path / "c.crt"}"\n',
        env={},
    )
    report = check_config(cfg, env={})
    text = "\n".join(report.problems)
    assert "[mqtt] tls_ca_file: no such file" in text
    assert "set both or neither" in text


def test_empty_systemd_credential_means_no_password(tmp_path: Path) -> None:
    (tmp_path / "mqtt_password").write_text("")
    cfg = parse_config("", env={})
    assert mqtt_password(cfg.mqtt, env={"CREDENTIALS_DIRECTORY": str(tmp_path)}) is None


def test_device_id_defaults_to_the_hostname_made_topic_safe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "Pi.Front door_2")
    assert parse_config("", env={}).mqtt.device_id == "Pi-Front-door_2"
    assert parse_config('[mqtt]\ndevice_id = ""\n', env={}).mqtt.device_id == "Pi-Front-door_2"
    env = {"EDGE_FACE_MQTT_DEVICE_ID": ""}
    assert parse_config('[mqtt]\ndevice_id = "x"\n', env=env).mqtt.device_id == "Pi-Front-door_2"
    monkeypatch.setattr("socket.gethostname", lambda: "")
    assert parse_config("", env={}).mqtt.device_id == "edge-face"


def test_only_section_and_key_variables_are_overrides() -> None:
    env = {
        "EDGE_FACE_MQTT": "no key",
        "EDGE_FACE_MQTT_": "no key either",
        "EDGE_FACE_CACHE_DIR": "no such section",
        "EDGE_FACE_DATA": "/faces",
        "HOME": "/root",
        "EDGE_FACE_MQTT_PORT": "1884",
        "EDGE_FACE_Logging_Level": "DEBUG",
    }
    assert env_overrides(env) == (
        {"mqtt": {"port": "1884"}, "logging": {"level": "DEBUG"}},
        {("mqtt", "port"): "EDGE_FACE_MQTT_PORT", ("logging", "level"): "EDGE_FACE_Logging_Level"},
    )
    cfg = parse_config("", env=env)
    assert (cfg.mqtt.port, cfg.logging.level) == (1884, "DEBUG")


def test_an_empty_variable_for_a_key_the_file_leaves_out_changes_nothing() -> None:
    cfg = parse_config("[mqtt]\nport = 1884\n", env={"EDGE_FACE_RECOGNITION_TAU": ""})
    assert cfg == parse_config("[mqtt]\nport = 1884\n", env={})


def test_an_unknown_section_names_the_file() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("[mqt]\nport = 1\n", filename="/etc/edge-face/config.toml", env={})
    assert info.value.problems[0].startswith(
        "/etc/edge-face/config.toml: [mqt]: unknown section (did you mean [mqtt]?)"
    )


def test_configuration_directory_comes_before_etc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemd's ConfigurationDirectory= (a ':'-separated list: the first one counts),
    then /etc/edge-face/config.toml; None when neither has a file."""
    etc = tmp_path / "etc" / "config.toml"
    monkeypatch.setattr("edge.config.DEFAULT_PATHS", (etc,))
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (etc.parent, first, second):
        folder.mkdir()
        (folder / "config.toml").write_text("")
    env = {"CONFIGURATION_DIRECTORY": f"{first}:{second}"}
    assert find_config_file(None, env) == first / "config.toml"
    (first / "config.toml").unlink()
    assert find_config_file(None, env) == etc
    etc.unlink()
    assert find_config_file(None, env) is None
    assert find_config_file(None, {}) is None


def test_no_file_at_all_means_the_defaults_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("edge.config.DEFAULT_PATHS", (tmp_path / "missing.toml",))
    assert load_config() == parse_config("", env={})
    assert load_config().source is None
    cfg = load_config(env={"EDGE_FACE_MQTT_PORT": "1884"})
    assert cfg.mqtt.port == 1884 and cfg.source is None


def test_a_file_that_is_not_utf8_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[camera]\nname = "caf\xe9"\n')  # Latin-1
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    [line] = info.value.problems
    assert line.startswith(f"{path}: cannot read: 'utf-8' codec can't decode byte 0xe9")


def test_the_file_is_read_as_utf8_whatever_the_locale(tmp_path: Path, repo_root: Path) -> None:
    """A service may run under the C locale (ASCII when Python's UTF-8 coercion is off)."""
    path = tmp_path / "config.toml"
    path.write_text('[camera]\nname = "Café"\n', encoding="utf-8")
    # here too: mutmut runs for a mutant only the tests that call its function in-process
    assert load_config(path, env={}).camera.name == "Café"
    code = (
        "import sys; from pathlib import Path; from edge.config import load_config; "
        "print(ascii(load_config(Path(sys.argv[1]), env={}).camera.name))"
    )
    env = {**os.environ, "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    env["PYTHONPATH"] = str(repo_root)
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True
    )
    assert (out.returncode, out.stdout) == (0, "'Caf\\xe9'\n"), out.stderr


def test_nul_characters_and_deep_nesting_are_said_where_they_are() -> None:
    from edge.config import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_config('[mqtt]\nhost = "a\\u0000b"\n[camera]\nzones = [[0.1, "x\\u0000"]]\n', env={})
    assert err.value.problems == [
        "config.toml: [mqtt] host: a NUL character (\\u0000) is not allowed",
        "config.toml: [camera] zones: a NUL character (\\u0000) is not allowed",
    ]
    with pytest.raises(ConfigError) as err:  # a NUL inside an inline table, from the env
        parse_config('[mqtt]\nauth = {user = "u\\u0000"}\n', env={"EDGE_FACE_MQTT_HOST": "h\0"})
    assert err.value.problems == [
        "config.toml: [mqtt] auth: a NUL character (\\u0000) is not allowed",
        "environment variable EDGE_FACE_MQTT_HOST: [mqtt] host: a NUL character (\\u0000) is not allowed",
    ]  # fmt: skip
    with pytest.raises(ConfigError) as err:
        parse_config("x = " + "[" * 5000 + "]" * 5000, filename="deep.toml", env={})
    assert err.value.problems == ["deep.toml: not valid TOML: nested too deeply"]
    with pytest.raises(ConfigError) as err:
        parse_config("x = [", filename="bad.toml", env={})
    assert err.value.problems[0].startswith("bad.toml: not valid TOML: ")
    assert "nested" not in err.value.problems[0]
