"""What the log says when the broker will not have us, against real mosquittos: a wrong
password is the credentials, a bad certificate is TLS, never "cannot reach the broker"
(which sends the user looking at the network); one line, not one per retry."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import Broker, wait_until
from secure_broker import make_ca, make_server_certificate, password_broker, tls_broker

from edge.config import MqttConfig
from edge.sinks.mqtt import MqttSink
from edge.sinks.outbox import Outbox

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def sinks(tmp_path: Path) -> Iterator[list[MqttSink]]:
    made: list[MqttSink] = []
    yield made
    for sink in made:
        sink.close(timeout=0.5)
        sink.outbox.close()


def start_sink(made: list[MqttSink], workdir: Path, config: MqttConfig,
               password: str | None = None) -> MqttSink:  # fmt: skip
    outbox = Outbox(workdir / f"outbox{len(made)}.db")
    sink = MqttSink(config, availability_topic="test/cam/availability", outbox=outbox,
                    password=password, reconnect_max_delay=1)  # fmt: skip
    made.append(sink)
    sink.start()
    return sink


def failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture
def password_protected(tmp_path: Path) -> Iterator[Broker]:
    broker = password_broker(tmp_path / "broker", {"edge-face": "right horse battery"})
    broker.start()
    yield broker
    broker.stop()


def test_a_wrong_password_says_the_broker_refused_the_credentials(
    password_protected: Broker, sinks: list[MqttSink], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    config = MqttConfig(host=password_protected.host, port=password_protected.port,
                        device_id="test", keepalive=5, username="edge-face")  # fmt: skip
    with caplog.at_level(logging.WARNING):
        sink = start_sink(sinks, tmp_path, config, password="wrong")
        assert wait_until(lambda: failures(caplog), 10)
        time.sleep(2.5)  # retries (every second here) that fail alike say nothing more
    assert not sink.connected
    lines = failures(caplog)
    assert len(lines) == 1, lines
    line = lines[0]
    assert "refused the credentials of user 'edge-face'" in line
    assert "Not authorized" in line or "Bad user name or password" in line
    assert "[mqtt] username" in line and "password_file" in line
    assert "wrong" not in line  # never the password
    assert "not reachable" not in caplog.text and "cannot reach" not in caplog.text
    right = start_sink(sinks, tmp_path, config, password="right horse battery")
    assert wait_until(lambda: right.connected, 10)  # the broker is sound: only the password


def test_no_username_for_a_broker_that_wants_one_says_so(
    password_protected: Broker, sinks: list[MqttSink], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    config = MqttConfig(host=password_protected.host, port=password_protected.port,
                        device_id="test", keepalive=5)  # fmt: skip
    with caplog.at_level(logging.WARNING):
        start_sink(sinks, tmp_path, config)
        assert wait_until(lambda: failures(caplog), 10)
    assert "an anonymous client" in caplog.text and "set [mqtt] username" in caplog.text


@pytest.mark.parametrize(
    ("case", "names", "trusted", "says"),
    [
        ("unknown CA", "IP:127.0.0.1", "other CA", "unable to get local issuer certificate"),
        ("hostname mismatch", "DNS:broker.example", "broker CA", "mismatch"),
    ],
)
def test_a_tls_failure_says_it_is_the_certificate(
    case: str, names: str, trusted: str, says: str, sinks: list[MqttSink], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    certs = tmp_path / "certs"
    broker_ca = make_ca(certs, "broker CA")
    other_ca = make_ca(certs, "other CA")
    broker = tls_broker(tmp_path / "broker", make_server_certificate(certs, broker_ca, names))
    broker.start()
    try:
        ca_file = broker_ca[0] if trusted == "broker CA" else other_ca[0]
        config = MqttConfig(host=broker.host, port=broker.port, device_id="test", keepalive=5,
                            tls=True, tls_ca_file=ca_file)  # fmt: skip
        with caplog.at_level(logging.WARNING):
            sink = start_sink(sinks, tmp_path, config)
            assert wait_until(lambda: failures(caplog), 10)
            time.sleep(2.5)
        assert not sink.connected
        lines = failures(caplog)
        assert len(lines) == 1, lines
        line = lines[0]
        assert "TLS certificate problem" in line and says in line, line
        assert f"tls_ca_file ({ca_file})" in line and "[mqtt] host ('127.0.0.1')" in line
        assert "cannot reach" not in caplog.text
    finally:
        broker.stop()


def test_the_tls_broker_of_these_tests_is_sound(sinks: list[MqttSink], tmp_path: Path) -> None:
    """The control: the right CA and a certificate for 127.0.0.1 connect."""
    certs = tmp_path / "certs"
    ca = make_ca(certs, "broker CA")
    broker = tls_broker(tmp_path / "broker", make_server_certificate(certs, ca, "IP:127.0.0.1"))
    broker.start()
    try:
        config = MqttConfig(host=broker.host, port=broker.port, device_id="test", keepalive=5,
                            tls=True, tls_ca_file=ca[0])  # fmt: skip
        sink = start_sink(sinks, tmp_path, config)
        assert wait_until(lambda: sink.connected, 10)
    finally:
        broker.stop()
