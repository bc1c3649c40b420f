"""Text for people: the status table and the monitoring-plugin line.

Both render the wire ``health`` document (a dict), so ``hotspare status``,
``hotspare check`` and the live ``hotspare watch`` view agree with what MQTT carries.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

# Monitoring-plugin exit codes (OK, WARNING, CRITICAL, UNKNOWN).
CHECK_CODES = {"redundant": 0, "degraded": 1, "failed": 2, "unknown": 3}
CHECK_WORDS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}
_PRECEDENCE = ("failed", "degraded", "unknown")

_COLOURS = {
    "redundant": "32",
    "ok": "32",
    "degraded": "33",
    "warning": "33",
    "failed": "31;1",
    "unknown": "35",
    "absent": "36",
    "online": "32",
    "offline": "31;1",
}


def paint(text: str, state: str, colour: bool) -> str:
    code = _COLOURS.get(state)
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


def _columns(rows: list[list[str]], states: list[str], colour: bool, state_col: int) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        if n:
            cells[state_col] = paint(cells[state_col], states[n - 1], colour)
        out.append("  ".join(cells).rstrip())
    return out


def table(health: Mapping[str, Any], colour: bool = False, components: bool = True) -> str:
    """The groups and components of one host, as aligned columns."""
    groups = health["groups"]
    when = time.strftime("%H:%M:%S", time.localtime(health["ts"]))
    title = (
        f"{health['host']} ({health['site']}): "
        f"{paint(health['state'].upper(), health['state'], colour)}  "
        f"{len(groups)} group(s), {len(health['components'])} component(s), at {when}"
    )
    lines = [title]
    if groups:
        rows = [["GROUP", "KIND", "STATE", "SERVING", "REQUIRED", "MARGIN", "DETAIL"]]
        for g in groups:
            detail = "; ".join(x for x in (g["detail"], g["reason"]) if x)
            rows.append(
                [
                    g["id"],
                    g["kind"],
                    g["state"],
                    f"{g['healthy']}/{g['total']}",
                    str(g["required"]),
                    str(g["margin"]),
                    detail,
                ]
            )
        lines += ["", *_columns(rows, [g["state"] for g in groups], colour, 2)]
    else:
        lines.append("no redundancy groups found")
    for c in health.get("collectors", ()):
        if not c["ok"]:
            lines.append(paint(f"collector {c['name']} failed: {c['error']}", "failed", colour))
    if components and health["components"]:
        rows = [["COMPONENT", "KIND", "STATE", "DETAIL"]]
        rows += [[c["id"], c["kind"], c["state"], c["detail"]] for c in health["components"]]
        lines += ["", *_columns(rows, [c["state"] for c in health["components"]], colour, 2)]
    return "\n".join(lines)


def check(health: Mapping[str, Any]) -> tuple[int, str]:
    """Exit code and the one-line plugin output with perfdata.

    failed -> 2, else degraded -> 1, else unknown -> 3, else 0.
    """
    groups = health["groups"]
    states = {g["state"] for g in groups}
    worst = next((s for s in _PRECEDENCE if s in states), "redundant")
    code = CHECK_CODES[worst]
    failed = [c for c in health.get("collectors", ()) if not c["ok"]]
    if failed and code == 0:
        code = 3  # nothing known to be lost, but a source could not be read
    bad = [g for g in groups if g["state"] != "redundant"]
    bad.sort(key=lambda g: _PRECEDENCE.index(g["state"]))
    if bad:
        summary = "; ".join(f"{g['id']} {g['state']} ({g['reason']})" for g in bad)
    else:
        summary = f"{len(groups)} group(s) redundant" if groups else "no redundancy groups found"
    # healthy: critical below `required`; margin: warning below 1 (no redundancy left).
    perf = " ".join(
        f"{_label(g['id'] + '_healthy')}={g['healthy']};;{g['required']}:;0;{g['total']} "
        f"{_label(g['id'] + '_margin')}={g['margin']};1:;0:"
        for g in groups
    )
    if failed:
        summary += "; " + "; ".join(f"collector {c['name']} failed: {c['error']}" for c in failed)
    line = f"HOTSPARE {CHECK_WORDS[code]} - {health['host']}: {summary}"
    return code, f"{line} | {perf}" if perf else line


def _label(text: str) -> str:
    return f"'{text}'" if any(c in text for c in " '=") else text
