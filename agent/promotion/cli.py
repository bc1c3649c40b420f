"""``hotspare promote|demote|failback HOST`` and ``hotspare keygen PATH``.

A command is signed with ``[promotion] signing_key`` (or ``--key``), published to the
target agent's ``cmd/<verb>`` topic, and audited by the target: the CLI waits for the
target's ``command`` event (accepted / rejected, matched by nonce) and the ``promotion``
events that follow, and prints them (``--json``: one JSON document).

Exit status: 0 the command was accepted and its action worked (or was a dry run), 1 it was
rejected or the action failed or was suppressed, 69 no answer from the target within
``--wait`` seconds, 78 a configuration or key problem.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .. import config, wire
from . import signing

EXIT_UNAVAILABLE = 69
FINAL = {"engaged", "released", "failed", "suppressed", "dry_run"}


def register(sub: Any, with_config: Any) -> None:
    for verb, text in (
        ("promote", "make HOST take over: engage its promote policy (signed, audited)"),
        ("demote", "make HOST step down: engage its step_down policy (signed, audited)"),
        ("failback", "undo HOST's engaged policy: the manual failback (signed, audited)"),
    ):
        sp = sub.add_parser(verb, help=text)
        with_config(sp)
        sp.add_argument("host", help="the target agent's host name")
        sp.add_argument("--policy", default="", help="the target's policy (default: first fit)")
        sp.add_argument("--site", help="the target's site (default: [agent] site)")
        sp.add_argument("--url", help="broker URL (default: [mqtt] url)")
        sp.add_argument("--key", help="Ed25519 private key (default: [promotion] signing_key)")
        sp.add_argument("--sender", help="name the target trusts (default: [agent] host)")
        sp.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the outcome")
        sp.add_argument("--json", action="store_true", help="print the outcome as JSON")
        sp.set_defaults(func=cmd_verb, verb=verb)
    sp = sub.add_parser("keygen", help="write an Ed25519 key pair for signed commands")
    sp.add_argument("path", help="private key file to create (mode 0600); PATH.pub beside it")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_keygen)


def cmd_keygen(args: argparse.Namespace) -> int:
    try:
        pub = signing.generate(Path(args.path))
    except FileExistsError:
        print(f"hotspare: {args.path} exists; not overwriting a key", file=sys.stderr)
        return 73
    except OSError as e:
        print(f"hotspare: {args.path}: {e.strerror or e}", file=sys.stderr)
        return 73
    if args.json:
        print(json.dumps({"private_key": args.path, "public_key": str(pub)}))
    else:
        print(f"private key {args.path} (0600); public key {pub}")
        print("copy the .pub as <sender>.pub into each target's [promotion] trusted_keys directory")
    return 0


def _settings(args: argparse.Namespace) -> tuple[config.MqttSettings | None, str, str, str, str]:
    """(mqtt settings or None, url, site, key path, sender) from the config and the flags."""
    mqtt_settings, site, key, sender = None, "", "", ""
    if Path(args.config).exists() or not (args.url and args.site and args.key and args.sender):
        cfg = config.load(args.config)
        mqtt_settings, site, sender = cfg.mqtt, cfg.agent.site, cfg.agent.host
        key = cfg.promotion.signing_key if cfg.promotion else ""
    url = args.url or (mqtt_settings.url if mqtt_settings else "")
    return mqtt_settings, url, args.site or site, args.key or key, args.sender or sender


def cmd_verb(args: argparse.Namespace) -> int:
    try:
        mqtt_settings, url, site, key_path, sender = _settings(args)
        if not key_path:
            raise signing.KeyFileError("no signing key: set [promotion] signing_key or --key")
        key = signing.load_private_key(key_path)
    except (config.ConfigError, signing.KeyFileError) as e:
        print(f"hotspare: {e}", file=sys.stderr)
        return config.EXIT_CONFIG
    prefix = mqtt_settings.topic_prefix if mqtt_settings else "hotspare/v1"
    target_base = wire.base_topic(prefix, site, args.host)
    doc = signing.sign(
        key, args.verb, args.host, site, sender, time.time(), {"policy": args.policy}
    )
    nonce = doc["command"]["nonce"]
    outcome = _exchange(mqtt_settings, url, target_base, args.verb, doc, nonce, args.wait)
    code = _code(outcome)
    if args.json:
        print(json.dumps({"target": f"{site}/{args.host}", "verb": args.verb, **outcome}, indent=2))
    else:
        _print(args, site, outcome)
    return code


def _client(mqtt_settings: config.MqttSettings | None, url: str) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if mqtt_settings is not None and mqtt_settings.url == url:
        mqtt_settings.authenticate(client)
    return client


def _exchange(
    mqtt_settings: config.MqttSettings | None,
    url: str,
    target_base: str,
    verb: str,
    doc: dict[str, Any],
    nonce: str,
    wait: float,
) -> dict[str, Any]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    client = _client(mqtt_settings, url)
    cond = threading.Condition()
    seen: dict[str, Any] = {"command": None, "promotion": [], "error": ""}
    subscribed = threading.Event()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        try:
            event = json.loads(msg.payload)
        except ValueError:
            return
        with cond:
            if event.get("type") == "command" and event.get("nonce") == nonce:
                seen["command"] = event
            elif (
                event.get("type") == "promotion"
                and event.get("manual")
                and seen["command"] is not None
            ):
                seen["promotion"].append(event)
            cond.notify_all()

    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_connect = lambda c, *a: c.subscribe(f"{target_base}/events", qos=1)
    try:
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=30)
    except OSError as e:
        return {**seen, "error": f"cannot connect to {url}: {e.strerror or e}"}
    client.loop_start()
    try:
        if not subscribed.wait(min(wait, 10)):
            return {**seen, "error": f"no subscription acknowledgement from {url}"}
        info = client.publish(f"{target_base}/cmd/{verb}", json.dumps(doc).encode(), qos=1)
        info.wait_for_publish(timeout=min(wait, 10))
        deadline = time.monotonic() + wait
        with cond:
            while True:
                done = seen["command"] is not None and (
                    seen["command"]["decision"] == "rejected"
                    or any(e["decision"] in FINAL for e in seen["promotion"])
                )
                left = deadline - time.monotonic()
                if done or left <= 0:
                    break
                cond.wait(left)
        if seen["command"] is None:
            seen["error"] = f"no answer from {target_base} within {wait:g} s"
        return {**seen, "nonce": nonce}
    finally:
        client.disconnect()
        client.loop_stop()


def _code(outcome: dict[str, Any]) -> int:
    cmd = outcome.get("command")
    if cmd is None:
        return EXIT_UNAVAILABLE
    if cmd["decision"] != "accepted":
        return 1
    finals = [e["decision"] for e in outcome["promotion"] if e["decision"] in FINAL]
    if not finals:
        return EXIT_UNAVAILABLE
    return 0 if finals[-1] in ("engaged", "released", "dry_run") else 1


def _print(args: argparse.Namespace, site: str, outcome: dict[str, Any]) -> None:
    cmd = outcome.get("command")
    if cmd is None:
        print(f"hotspare: {args.verb} {site}/{args.host}: {outcome['error']}", file=sys.stderr)
        return
    print(f"{args.verb} {site}/{args.host}: {cmd['decision']} ({cmd['message']})")
    for e in outcome["promotion"]:
        print(f"  policy {e['id']}: {e['decision']} {e['direction']}: {e['message']}")
