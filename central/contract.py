"""The MQTT contract as the central service reads it: topics and payload validation.

The central service depends on the contract only — the JSON Schemas in ``central/schemas/``
(byte-for-byte copies of ``docs/schemas/``, kept identical by a test) and the topic layout of
docs/mqtt.md — never on the agent's code. Validation compiles those schemas once into plain
checks (``central.schemacheck``, tested against ``jsonschema``): nothing is fetched.
"""

from __future__ import annotations

import enum
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
PAYLOADS = ("status", "health", "group", "component", "event")
NAMES = ("common", *PAYLOADS)

GROUP_STATES = ("redundant", "degraded", "failed", "unknown")
# worst first, as the agent ranks them: failed > degraded > unknown > redundant
SEVERITY = {"redundant": 0, "unknown": 1, "degraded": 2, "failed": 3, "offline": 4}
OFFLINE = "offline"  # the central service's own host state: the agent is not heard


class Kind(enum.StrEnum):
    """What a topic under ``<prefix>/<site>/<host>/`` carries."""

    STATUS = "status"
    HEALTH = "health"
    GROUP = "group"
    COMPONENT = "component"
    EVENT = "event"
    COMMAND = "command"  # inbound to an agent: not ours to read


@dataclass(frozen=True, slots=True)
class Topic:
    site: str
    host: str
    kind: Kind
    item: str = ""  # groups/<item>, components/<item>: the id as topic levels


class Rejected(ValueError):
    """A payload the service will not take; ``reason`` is the counter it is filed under."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def id_topic(item_id: str) -> str:
    """A group or component id as topic levels, as docs/mqtt.md defines it (not reversible)."""
    levels = (lv.replace("+", "_").replace("#", "_") for lv in item_id.split("/"))
    return "/".join(lv or "_" for lv in levels)


# (the level after <site>/<host>, whether more levels follow) -> what the topic carries
_TOPIC_KINDS = {
    ("status", False): Kind.STATUS,
    ("health", False): Kind.HEALTH,
    ("events", False): Kind.EVENT,
    ("groups", True): Kind.GROUP,
    ("components", True): Kind.COMPONENT,
    ("cmd", True): Kind.COMMAND,
}
_SCHEMA_OF = {kind: kind.value for kind in Kind} | {Kind.EVENT: "event"}


def parse_topic(prefix: str, topic: str) -> Topic | None:
    """The site, host and kind of a topic under ``prefix``; None when it is not ours."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1 :].split("/")
    if len(parts) < 3 or not parts[0] or not parts[1]:
        return None
    rest = parts[3:]
    kind = _TOPIC_KINDS.get((parts[2], bool(rest)))
    return None if kind is None else Topic(parts[0], parts[1], kind, "/".join(rest))


@functools.cache
def _checkers() -> dict[str, Any]:
    from .schemacheck import Compiler

    compiler = Compiler(SCHEMA_DIR)
    return {n: compiler.checker(n) for n in PAYLOADS}


def decode(kind: Kind, topic: Topic, payload: bytes, max_bytes: int) -> dict[str, Any]:
    """The payload as a dict, checked against its schema and its topic; raises Rejected."""
    if len(payload) > max_bytes:
        raise Rejected("oversized", f"{len(payload)} bytes, more than the limit of {max_bytes}")
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise Rejected("not_json", f"not JSON: {e}") from None
    name = _SCHEMA_OF[kind]
    error = _checkers()[name](doc, "")
    if error is not None:
        raise Rejected("schema", f"does not match {name}.schema.json: {error}")
    if kind != Kind.STATUS and (doc["site"], doc["host"]) != (topic.site, topic.host):
        raise Rejected(
            "topic_mismatch",
            f"payload names {doc['site']}/{doc['host']}, the topic {topic.site}/{topic.host}",
        )
    return doc
