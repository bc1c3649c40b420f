"""Reading snmpsim recordings (``.snmprec``: ``OID|tag|value`` lines) for the SNMP tests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from collectors.snmp import octets

FIXTURES = Path(__file__).parent / "fixtures" / "snmprec"


def load(path: Path) -> dict[tuple[int, ...], Any]:
    """OID -> value as the collector's engine converts it (int, str, or OID tuple)."""
    out: dict[tuple[int, ...], Any] = {}
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        oid, tag, value = line.split("|", 2)
        key = tuple(int(x) for x in oid.strip(".").split("."))
        tag = tag.split(":")[0]
        if tag == "4x":
            value = octets(bytes.fromhex(value))
        elif tag == "6":
            value = tuple(int(x) for x in value.strip(".").split("."))
        elif tag in ("2", "65", "66", "67", "70"):
            value = int(value)
        out[key] = value
    return out


def walked(
    values: dict[tuple[int, ...], Any], columns: Iterable[str]
) -> dict[str, dict[tuple[int, ...], Any]]:
    """What a walk of ``columns`` returns from a recording."""
    result: dict[str, dict[tuple[int, ...], Any]] = {}
    for column in columns:
        prefix = tuple(int(x) for x in column.split("."))
        n = len(prefix)
        result[column] = {k[n:]: v for k, v in values.items() if k[:n] == prefix and len(k) > n}
    return result


def index() -> list[dict[str, Any]]:
    return json.loads((FIXTURES / "INDEX.json").read_text())
