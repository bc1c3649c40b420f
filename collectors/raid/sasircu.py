"""Broadcom/LSI ``sas2ircu`` / ``sas3ircu`` text: ``LIST`` and ``<n> DISPLAY``.

IR volumes become virtual drives; their members are the ``PHY[n] Enclosure#/Slot#`` lines
of the volume, the drive states come from the physical device section. The collector
runs ``LIST`` to find the controllers, then ``<n> DISPLAY`` for each.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from collectors.base import State, Verdict

from .model import Controller, Drive, RaidError, Role, VirtualDrive, lookup

LIST: tuple[str, ...] = ("LIST",)
DISPLAY: tuple[str, ...] = ("{n}", "DISPLAY")

# "Status of volume" (the abbreviation in brackets): Okay (OKY), Degraded (DGD), Failed (FLD),
# Missing (MIS), Initializing (INIT), Online (ONL)
VOLUME_STATES: Mapping[str, Verdict] = {
    "okay": Verdict.REDUNDANT,
    "online": Verdict.REDUNDANT,
    "initializing": Verdict.REDUNDANT,
    "degraded": Verdict.DEGRADED,
    "inactive": Verdict.FAILED,
    "failed": Verdict.FAILED,
    "missing": Verdict.FAILED,
}

# drive "State": Optimal (OPT), Ready (RDY), Rebuilding (RBLD), Hot Spare (HSP), Failed (FLD),
# Missing (MIS), Degraded (DGD), Available (AVL), Standby (SBY), Out of Sync (OSY)
DRIVE_STATES: Mapping[str, tuple[State, Role]] = {
    "optimal": (State.OK, Role.MEMBER),
    "online": (State.OK, Role.MEMBER),
    "ready": (State.OK, Role.MEMBER),
    "available": (State.OK, Role.OTHER),
    "standby": (State.OK, Role.OTHER),
    "rebuilding": (State.OK, Role.REBUILDING),
    "out of sync": (State.OK, Role.REBUILDING),
    "hot spare": (State.OK, Role.SPARE),
    "degraded": (State.WARNING, Role.MEMBER),
    "failed": (State.FAILED, Role.MEMBER),
    "missing": (State.FAILED, Role.MEMBER),
}

_KV = re.compile(r"\s*(?P<key>\S.*?)\s*:\s*(?P<value>.*?)\s*")
_VOLUME = re.compile(r"IR volume (?P<n>\d+)")
_PHY = re.compile(r"PHY\[\d+\] Enclosure#/Slot#")
_LIST_ROW = re.compile(r"\s*(?P<n>\d+)\s+(?P<type>\S+)\s+\S+h\s+\S+h\s+.*")
_SECTIONS = (
    "Controller information",
    "IR Volume information",
    "Physical device information",
    "Enclosure information",
)
_CONTROLLER = re.compile(r"Read configuration has been initiated for controller (?P<n>\d+)")


def parse_list(text: str) -> tuple[str, ...]:
    """The controller indexes of ``LIST``."""
    return tuple(m["n"] for line in text.splitlines() if (m := _LIST_ROW.fullmatch(line)))


def parse(text: str) -> tuple[Controller, ...]:
    """One controller's ``DISPLAY`` output; ``LIST`` output alone yields no controller."""
    if parse_list(text) and "Controller information" not in text:
        return ()
    number = "0"
    fields: dict[str, str] = {}
    volumes: list[dict[str, str]] = []
    members: dict[str, str] = {}  # "enclosure:slot" -> volume id
    drives: list[dict[str, str]] = []
    block: dict[str, str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if m := _CONTROLLER.fullmatch(stripped):
            number = m["n"]
        elif stripped in _SECTIONS:
            block = fields if stripped == "Controller information" else None
        elif m := _VOLUME.fullmatch(stripped):
            block = {"_n": m["n"]}
            volumes.append(block)
        elif stripped.startswith("Device is a"):
            block = {"_kind": stripped.removeprefix("Device is a").strip()}
            drives.append(block)
        elif (kv := _KV.fullmatch(line)) and block is not None:
            if _PHY.fullmatch(kv["key"]) and block is not fields:
                members[kv["value"]] = block["_n"]
            else:
                block.setdefault(kv["key"], kv["value"])
    if not fields and not volumes and not drives:
        raise RaidError("sas2ircu/sas3ircu: no controller information in the output")
    vds = []
    for v in volumes:
        words = v.get("Status of volume", "")
        level = v.get("RAID level", "").lower().replace(" ", "")
        slots = sum(1 for vol in members.values() if vol == v["_n"])
        vds.append(
            VirtualDrive(
                id=v.get("Volume ID", v["_n"]),
                level=level,
                words=words,
                verdict=lookup(VOLUME_STATES, words, None),
                group=v["_n"],
                slots=slots or None,
            )
        )
    out_drives = []
    for d in drives:
        if "hard disk" not in d["_kind"].lower():
            continue
        address = f"{d.get('Enclosure #', '?')}:{d.get('Slot #', '?')}"
        words = d.get("State", "")
        state, role = lookup(DRIVE_STATES, words, (State.UNKNOWN, Role.OTHER))
        group = members.get(address)
        if group is None and role in (Role.MEMBER, Role.REBUILDING):
            role = Role.OTHER  # a ready drive in no volume: not part of a group
        out_drives.append(Drive(address, state, role, words, group=group))
    return (
        Controller(
            id=f"c{number}",
            model=fields.get("Controller type", ""),
            state=State.OK,
            words="",
            vds=tuple(vds),
            drives=tuple(out_drives),
        ),
    )


def query(ask: Callable[[tuple[str, ...]], str]) -> tuple[Controller, ...]:
    """``LIST``, then ``<n> DISPLAY`` for every controller listed."""
    out: list[Controller] = []
    for n in parse_list(ask(LIST)):
        out.extend(parse(ask(tuple(a.format(n=n) for a in DISPLAY))))
    return tuple(out)
