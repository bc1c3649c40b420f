"""Signed commands from the dashboard and the API to an agent: promote, demote, failback.

The ``[commands]`` section names the service's Ed25519 private key (``hotspare keygen``
writes a pair) and the sender name the agents know its public key by (``<sender>.pub``
in their ``[promotion] trusted_keys``). Without the section, commands are off.

``Commander.send`` signs one command exactly as ``hotspare promote`` does (the agent cannot
tell them apart but by the sender), publishes it on ``<prefix>/<site>/<host>/cmd/<verb>``
and waits for the agent's answer among the events the ingest receives: the ``command``
event carrying the same nonce (accepted, or rejected with the reason), then the
promotion events of a command that was accepted, until one is final. The outcome has the
shape of ``hotspare promote --json``'s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import agent.promotion.signing as signing
from agent.tomlfile import ConfigError, typed

log = logging.getLogger("hotspare.central.commands")

VERBS = ("promote", "demote", "failback")
FINAL = frozenset({"engaged", "released", "failed", "suppressed", "dry_run"})

OPTIONS: Mapping[str, tuple[type, Any, str]] = {
    "signing_key": (
        str,
        "",
        "The service's Ed25519 private key (PEM, PKCS#8; `hotspare keygen` writes one), "
        "readable by the service only.",
    ),
    "sender": (
        str,
        "central",
        "The name the agents know the key by: <sender>.pub in their [promotion] trusted_keys.",
    ),
    "wait": (
        float,
        10.0,
        "Seconds to wait for the agent's answer (and, once accepted, for its action's result).",
    ),
}


@dataclass(frozen=True, slots=True)
class Settings:
    signing_key: str
    sender: str
    wait: float
    key: Any = field(repr=False, compare=False)  # the loaded private key; never shown


def parse(file: Path, value: Any) -> Settings:
    """The ``[commands]`` section (registered in central.config.SECTION_PARSERS)."""
    if not isinstance(value, dict):
        raise ConfigError(file, "commands", "expected a table")
    unknown = sorted(set(value) - set(OPTIONS))
    if unknown:
        raise ConfigError(
            file, f"commands.{unknown[0]}", f"unknown key; expected one of: {', '.join(OPTIONS)}"
        )
    v = {
        key: typed(file, f"commands.{key}", t, value[key]) if key in value else default
        for key, (t, default, _help) in OPTIONS.items()
    }
    if not v["signing_key"]:
        raise ConfigError(file, "commands.signing_key", "required: the service's private key")
    if not v["sender"] or any(c in v["sender"] for c in "/\\ ") or v["sender"].startswith("."):
        raise ConfigError(
            file, "commands.sender", f"expected a name for <sender>.pub, got {v['sender']!r}"
        )
    if v["wait"] <= 0:
        raise ConfigError(file, "commands.wait", f"expected a number > 0, got {v['wait']!r}")
    try:
        key = signing.load_private_key(v["signing_key"])
    except (OSError, signing.KeyFileError) as e:
        raise ConfigError(file, "commands.signing_key", str(e)) from None
    return Settings(v["signing_key"], v["sender"], v["wait"], key)


@dataclass(slots=True)
class _Waiter:
    site: str
    host: str
    done: asyncio.Event = field(default_factory=asyncio.Event)
    command: dict[str, Any] | None = None
    promotion: list[dict[str, Any]] = field(default_factory=list)


class Commander:
    """Signs and publishes commands; an event subscriber of the ingest resolves them."""

    def __init__(
        self,
        settings: Settings,
        topic_prefix: str,
        publish: Callable[[str, bytes], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.prefix = topic_prefix
        self.publish = publish  # False when the broker is not connected
        self.clock = clock
        self._waiting: dict[str, _Waiter] = {}  # nonce -> waiter

    async def send(self, site: str, host: str, verb: str, policy: str = "") -> dict[str, Any]:
        if verb not in VERBS:
            raise ValueError(f"verb: expected one of {', '.join(VERBS)}, got {verb!r}")
        s = self.settings
        doc = signing.sign(s.key, verb, host, site, s.sender, self.clock(), {"policy": policy})
        nonce = doc["command"]["nonce"]
        outcome: dict[str, Any] = {"target": f"{site}/{host}", "verb": verb, "nonce": nonce}
        waiter = self._waiting[nonce] = _Waiter(site, host)
        try:
            topic = f"{self.prefix}/{site}/{host}/cmd/{verb}"
            if not self.publish(topic, json.dumps(doc).encode()):
                return {
                    **outcome,
                    "command": None,
                    "promotion": [],
                    "error": "broker not connected",
                }
            log.info("%s sent to %s/%s (nonce %s)", verb, site, host, nonce)
            try:
                await asyncio.wait_for(waiter.done.wait(), s.wait)
                error = ""
            except TimeoutError:
                error = (
                    f"no answer from {site}/{host} within {s.wait:g} s"
                    if waiter.command is None
                    else f"no final result within {s.wait:g} s"
                )
            return {
                **outcome,
                "command": waiter.command,
                "promotion": waiter.promotion,
                "error": error,
            }
        finally:
            del self._waiting[nonce]

    def on_event(self, event: dict[str, Any]) -> None:
        """The ingest's event subscriber (runs in the event loop)."""
        kind = event.get("type")
        if kind == "command":
            waiter = self._waiting.get(event.get("nonce", ""))
            if waiter is not None and (event["site"], event["host"]) == (waiter.site, waiter.host):
                waiter.command = event
                if event["decision"] != "accepted":
                    waiter.done.set()
        elif kind == "promotion" and event.get("manual"):
            for waiter in self._waiting.values():
                if (
                    waiter.command is not None
                    and (event["site"], event["host"]) == (waiter.site, waiter.host)
                    and not waiter.done.is_set()
                ):
                    waiter.promotion.append(event)
                    if event.get("decision") in FINAL:
                        waiter.done.set()
