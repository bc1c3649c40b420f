"""The JSON Schemas of the MQTT payloads (docs/schemas/), for tests.

``validate("health", payload)`` raises ``jsonschema.ValidationError`` when a payload
(a dict, or the raw bytes/str of a received MQTT message) does not match. ``$ref``
between the schema files resolves from this directory only: nothing is fetched.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"
BASE_ID = "https://hotspare.invalid/schemas/"
PAYLOADS = ("status", "health", "group", "component", "event")  # one schema per payload
NAMES = ("common", *PAYLOADS)


def path(name: str) -> Path:
    return SCHEMA_DIR / f"{name}.schema.json"


@functools.cache
def _load(name: str) -> dict[str, Any]:
    return json.loads(path(name).read_text())


def schema(name: str) -> dict[str, Any]:
    """The schema ``name`` (e.g. "health") as a dict; do not modify it."""
    return _load(name)


@functools.cache
def registry() -> Registry:
    """Every schema file under its ``$id``; unknown references fail instead of being fetched."""
    resources = [
        (
            _load(name)["$id"],
            Resource.from_contents(_load(name), default_specification=DRAFT202012),
        )
        for name in NAMES
    ]
    return Registry().with_resources(resources).crawl()


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """A validator for the payload schema ``name``: status, health, group, component or event."""
    if name not in NAMES:
        raise ValueError(f"no schema {name!r}; expected one of {', '.join(NAMES)}")
    return Draft202012Validator(_load(name), registry=registry())


def validate(name: str, payload: dict[str, Any] | bytes | str) -> dict[str, Any]:
    """Check ``payload`` against the schema ``name``; returns it decoded, raises on mismatch."""
    if isinstance(payload, bytes | str):
        payload = json.loads(payload)
    validator(name).validate(payload)
    return payload
