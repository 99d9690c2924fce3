"""``edge-face fleet status``: the devices that share this gallery through the broker
([fleet], docs/FLEET.md), each one's progress and what is still to publish."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import click

from edge.cli_state import EXIT_FAILURE, EXIT_USAGE, State, guarded


def _listen(config: Any, secret: bytes, wait: float) -> tuple[list[dict[str, Any]], str | None]:
    """The devices' retained statuses (verified), or the reason the broker gave none."""
    from edge.fleet_codec import FleetMessageError, devices_root, verified
    from edge.secrets import mqtt_password
    from edge.sinks.mqtt_client import configured_client

    root = devices_root(config.mqtt.topic_prefix, config.fleet.id)
    found: dict[str, dict[str, Any]] = {}
    subscribed = threading.Event()
    client = configured_client(
        config.mqtt, f"edge-face-status-{os.getpid()}", mqtt_password(config.mqtt)
    )

    def on_message(_c: Any, _u: Any, message: Any) -> None:
        device = message.topic.rsplit("/", 1)[-1]
        try:
            found[device] = verified(bytes(message.payload), secret, message.topic)
        except FleetMessageError:
            found[device] = {"device": device, "refused": "not signed with this fleet's key"}

    client.on_connect = lambda c, *_: c.subscribe(f"{root}/+", qos=1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = on_message
    try:
        client.connect(config.mqtt.host, config.mqtt.port, keepalive=10)
    except OSError as exc:
        return [], f"cannot reach the MQTT broker {config.mqtt.host}:{config.mqtt.port}: {exc}"
    client.loop_start()
    try:
        if not subscribed.wait(wait + 3):
            return [], f"the MQTT broker {config.mqtt.host}:{config.mqtt.port} did not answer"
        time.sleep(wait)  # the retained statuses come right after the subscription
    finally:
        client.disconnect()
        client.loop_stop()
    return [found[d] for d in sorted(found)], None


@click.group()
def fleet() -> None:
    """The devices that share this gallery through the MQTT broker ([fleet] enabled,
    docs/FLEET.md).

    \b
    Example:
      edge-face fleet status
    """


@fleet.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option("--wait", default=2.0, show_default=True, type=click.FloatRange(0.2, 60),
              help="Seconds to listen for the devices' statuses.")  # fmt: skip
@click.pass_obj
def status(state: State, as_json: bool, wait: float) -> None:
    """Every device seen: how far its gallery has got (the largest change counter it
    holds), how many changes it lags behind the furthest, its people and the changes it
    has still to publish; and this device's own side, read from its gallery file.

    \b
    Example:
      edge-face fleet status
      edge-face fleet status --json
    """
    from edge.fleet_store import summary
    from edge.gallery import Gallery
    from edge.secrets import fleet_key

    config = state.config()
    if not config.fleet.enabled:
        click.echo("error: [fleet] is not enabled in the configuration (docs/FLEET.md)", err=True)
        raise SystemExit(EXIT_USAGE)
    secret = guarded(lambda: fleet_key(config.fleet))
    with Gallery(config.gallery.path) as gallery:
        local = guarded(lambda: summary(gallery, None))
    devices, problem = _listen(config, secret, wait)
    furthest = max([local["counter"], *(int(d.get("counter", 0)) for d in devices)])
    for d in devices:
        if "counter" in d:
            d["lag"] = furthest - int(d["counter"])
            d["age_s"] = round(time.time() - float(d.get("time", 0)), 1)
    report = {"fleet": config.fleet.id, "this_device": config.mqtt.device_id,
              "local": local, "devices": devices, "furthest": furthest, "problem": problem}  # fmt: skip
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(f"fleet {config.fleet.id}: this device {config.mqtt.device_id}: "
                   f"{local['people']} people, counter {local['counter']}, "
                   f"{local['pending']} change(s) to publish")  # fmt: skip
        if local["other_encoder"]:
            click.echo(f"  {local['other_encoder']} person(s) held for another encoder: kept out")
        for d in devices:
            if "refused" in d and "counter" not in d:
                click.echo(f"  {d['device']}: refused ({d['refused']})")
                continue
            click.echo(f"  {d['device']}: counter {d['counter']} (lag {d['lag']}), {d['people']} people, "
                       f"{d['pending']} pending, updated {d['age_s']:.0f} s ago")  # fmt: skip
        if problem:
            click.echo(f"error: {problem}", err=True)
    if problem:
        raise SystemExit(EXIT_FAILURE)


COMMANDS = (fleet,)
