"""Broadcom/LSI ``storcli`` and Dell ``perccli`` JSON: ``/call show all J``.

Also reads the drive documents of ``/cX/eall/sall show all J`` and the HBA (IT mode)
layout with ``Physical Device Information``, so every document those tools print for a
controller parses. Drives join a virtual drive through the drive group (``DG`` of the
PD LIST and the ``DG/VD`` of the VD LIST); the number of slots is the number of DRIVE
rows of that drive group in the TOPOLOGY (a missing drive keeps its row, as ``Msng``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from collectors.base import State, Verdict

from .model import Battery, Controller, Drive, RaidError, Role, VirtualDrive, lookup

COMMANDS: tuple[tuple[str, ...], ...] = (("/call", "show", "all", "J"),)

# VD LIST "State" (storcli's legend: Optl=Optimal, Pdgd=Partially Degraded, Dgrd=Degraded,
# OfLn=OffLine, Rec=Recovery, Cac=CacheCade)
VD_STATES: Mapping[str, Verdict] = {
    "optl": Verdict.REDUNDANT,
    "pdgd": Verdict.DEGRADED,
    "dgrd": Verdict.DEGRADED,
    "rec": Verdict.DEGRADED,
    "ofln": Verdict.FAILED,
}

# PD LIST "State" -> (state, role). Legend: Onln Online, Offln Offline, Rbld Rebuild,
# Cpybck Copyback, GHS global / DHS dedicated hot spare, UGood/UBad unconfigured good/bad,
# Msng missing, JBOD, Sntze sanitize, UGUnsp/UBUnsp unsupported.
PD_STATES: Mapping[str, tuple[State, Role]] = {
    "onln": (State.OK, Role.MEMBER),
    "offln": (State.FAILED, Role.MEMBER),
    "failed": (State.FAILED, Role.MEMBER),
    "msng": (State.FAILED, Role.MEMBER),
    "rbld": (State.OK, Role.REBUILDING),
    "cpybck": (State.OK, Role.MEMBER),
    "ghs": (State.OK, Role.SPARE),
    "dhs": (State.OK, Role.SPARE),
    "ugood": (State.OK, Role.OTHER),
    "ugunsp": (State.OK, Role.OTHER),
    "ubad": (State.FAILED, Role.OTHER),
    "ubunsp": (State.FAILED, Role.OTHER),
    "jbod": (State.OK, Role.OTHER),
    "sntze": (State.OK, Role.OTHER),
}

CONTROLLER_STATES: Mapping[str, State] = {
    "optimal": State.OK,
    "ok": State.OK,
    "needs attention": State.WARNING,
    "degraded": State.WARNING,
    "failed": State.FAILED,
}

# BBU_Info / Cachevault_Info "State"
BATTERY_STATES: Mapping[str, State] = {
    "optimal": State.OK,
    "learning": State.OK,
    "charging": State.OK,
    "dgd": State.FAILED,  # degraded: replace
    "degraded": State.FAILED,
    "failed": State.FAILED,
    "missing": State.ABSENT,
}

_DRIVE_KEY = re.compile(r"Drive /c\d+/e?(\d*)/?s(\d+)")


def _rows(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    rows = data.get(key, [])
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _drive(row: Mapping[str, Any]) -> Drive:
    words = str(row.get("State", "")).strip()
    state, role = lookup(PD_STATES, words, (State.UNKNOWN, Role.OTHER))
    dg = row.get("DG")
    group = str(dg) if isinstance(dg, int) else None
    did = row.get("DID")
    return Drive(
        address=str(row.get("EID:Slt", "?")).strip(),
        state=state,
        role=role,
        words=words,
        group=group,
        device=f"megaraid,{did}" if isinstance(did, int) else "",
    )


def _drive_rows(data: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """PD LIST rows, or the one-row tables of per-drive documents."""
    yield from _rows(data, "PD LIST")
    sources = [data, data.get("Physical Device Information", {})]
    for source in sources:
        if not isinstance(source, dict):
            continue
        for key, value in source.items():
            if _DRIVE_KEY.fullmatch(key) and isinstance(value, list):
                yield from (r for r in value if isinstance(r, dict))


def _slots(data: Mapping[str, Any]) -> dict[str, int]:
    """Drive group -> number of DRIVE rows in the TOPOLOGY (missing drives included)."""
    out: dict[str, int] = {}
    for row in _rows(data, "TOPOLOGY"):
        if str(row.get("Type", "")).upper() == "DRIVE" and isinstance(row.get("DG"), int):
            out[str(row["DG"])] = out.get(str(row["DG"]), 0) + 1
    return out


def _level(text: str) -> str:
    return text.strip().lower().replace("-", "")


def _vds(data: Mapping[str, Any]) -> list[VirtualDrive]:
    slots = _slots(data)
    out = []
    for row in _rows(data, "VD LIST"):
        dg, _, vd = str(row.get("DG/VD", "")).partition("/")
        words = str(row.get("State", "")).strip()
        out.append(
            VirtualDrive(
                id=vd or dg,
                level=_level(str(row.get("TYPE", ""))),
                words=words,
                verdict=lookup(VD_STATES, words, None),
                group=dg,
                slots=slots.get(dg),
            )
        )
    return out


def _batteries(data: Mapping[str, Any]) -> list[Battery]:
    out = []
    for key, name in (("BBU_Info", "bbu"), ("Cachevault_Info", "cachevault")):
        for row in _rows(data, key):
            words = str(row.get("State", "")).strip()
            out.append(Battery(name, lookup(BATTERY_STATES, words, State.UNKNOWN), words))
    return out


def _controller(entry: Mapping[str, Any]) -> Controller | None:
    status = entry.get("Command Status", {})
    if status.get("Status") != "Success":
        if "no controller" in str(status.get("Description", "")).lower():
            return None
        raise RaidError(f"storcli: {status.get('Status')}: {status.get('Description')}")
    data = entry.get("Response Data", {})
    basics = data.get("Basics", {})
    number = basics.get("Controller", status.get("Controller", 0))
    words = str(data.get("Status", {}).get("Controller Status", "")).strip()
    return Controller(
        id=f"c{number}",
        model=str(basics.get("Model", "")).strip(),
        state=lookup(CONTROLLER_STATES, words, State.OK if not words else State.UNKNOWN),
        words=words,
        vds=tuple(_vds(data)),
        drives=tuple(_drive(r) for r in _drive_rows(data)),
        batteries=tuple(_batteries(data)),
    )


def parse(text: str) -> tuple[Controller, ...]:
    """A storcli/perccli JSON document. "No Controller found" is an empty answer, not an error."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise RaidError(f"storcli: output is not JSON: {e}") from None
    entries = doc.get("Controllers") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise RaidError("storcli: no 'Controllers' list in the output")
    return tuple(c for e in entries if isinstance(e, dict) and (c := _controller(e)) is not None)


def query(ask: Callable[[tuple[str, ...]], str]) -> tuple[Controller, ...]:
    """Ask the tool (``ask(args) -> stdout``) and parse the answer."""
    return parse(ask(COMMANDS[0]))
