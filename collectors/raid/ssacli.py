"""HPE Smart Array ``ssacli`` / ``hpssacli`` / ``hpacucli`` text.

The collector runs ``ctrl all show config detail``; the parser also takes the short forms
(``ctrl all show config``, ``ctrl all show status``, ``logicaldrive all show``) that older
tools and scripts print. An ``array X (Failed)`` fails every logical drive on it, even when
the logical drive lines still say OK (the array has lost more drives than it can).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from collectors.base import State, Verdict

from .model import Battery, Controller, Drive, RaidError, Role, VirtualDrive, lookup

COMMANDS: tuple[tuple[str, ...], ...] = (("ctrl", "all", "show", "config", "detail"),)

LD_STATES: Mapping[str, Verdict] = {
    "ok": Verdict.REDUNDANT,
    "expanding": Verdict.REDUNDANT,
    "interim recovery mode": Verdict.DEGRADED,
    "recovering": Verdict.DEGRADED,
    "ready for rebuild": Verdict.DEGRADED,
    "degraded": Verdict.DEGRADED,
    "failed": Verdict.FAILED,
    "disabled": Verdict.FAILED,
}

ARRAY_STATES: Mapping[str, Verdict | None] = {
    "ok": None,
    "failed physical drive": Verdict.DEGRADED,
    "failed": Verdict.FAILED,
}

PD_STATES: Mapping[str, tuple[State, Role]] = {
    "ok": (State.OK, Role.MEMBER),
    "predictive failure": (State.WARNING, Role.MEMBER),
    "rebuilding": (State.OK, Role.REBUILDING),
    "failed": (State.FAILED, Role.MEMBER),
}

CONTROLLER_STATES: Mapping[str, State] = {"ok": State.OK, "failed": State.FAILED}

# "Cache Status" and "Battery/Capacitor Status"
CACHE_STATES: Mapping[str, State] = {
    "ok": State.OK,
    "not configured": State.OK,
    "temporarily disabled": State.FAILED,
    "permanently disabled": State.FAILED,
    "failed": State.FAILED,
}
BATTERY_STATES: Mapping[str, State] = {
    "ok": State.OK,
    "recharging": State.OK,
    "charging": State.OK,
    "failed": State.FAILED,
    "not present": State.ABSENT,
}

_LEVELS: Mapping[str, str] = {
    "0": "raid0",
    "1": "raid1",
    "1+0": "raid10",
    "5": "raid5",
    "6": "raid6",
    "adg": "raid6",
    "6 (adg)": "raid6",
    "50": "raid50",
    "60": "raid60",
    "1 (adm)": "raid1adm",
    "1+0 (adm)": "raid10adm",
}

_CONTROLLER = re.compile(r"(?P<model>\S[^:]*?) in (?P<where>[^:]+)")
_SLOT = re.compile(r"Slot (?P<n>\w+)")
_ARRAY = re.compile(r"\s*array (?P<name>\w+)(?: \((?P<words>[^)]*)\))?\s*")
_ARRAY_DETAIL = re.compile(r"\s*Array: (?P<name>\w+)\s*")
_LD_SHORT = re.compile(r"\s*logicaldrive (?P<id>\d+) \((?P<inner>.*)\)\s*")
_LD_DETAIL = re.compile(r"\s*Logical Drive: (?P<id>\d+)\s*")
_PD_SHORT = re.compile(r"\s*physicaldrive (?P<addr>\S+) \((?P<inner>.*)\)\s*")
_PD_DETAIL = re.compile(r"\s*physicaldrive (?P<addr>\S+)\s*")
_UNASSIGNED = re.compile(r"\s*(?:Unassigned|unassigned)\s*")
_KV = re.compile(r"\s*(?P<key>[^:]+?):\s*(?P<value>.*?)\s*")
_PERCENT = re.compile(r"(?P<p>\d+(?:\.\d+)?)% complete")


@dataclass
class _Ctl:
    id: str
    model: str
    fields: dict[str, str] = field(default_factory=dict)
    arrays: dict[str, str] = field(default_factory=dict)  # name -> state words
    lds: dict[str, dict[str, str]] = field(default_factory=dict)
    pds: dict[str, dict[str, str]] = field(default_factory=dict)


def _ctl_id(where: str) -> str:
    if m := _SLOT.search(where):
        return f"slot{m['n']}"
    return re.sub(r"[^a-z0-9]+", "-", where.lower()).strip("-")


def _level(words: str) -> str:
    key = words.strip().lower().removeprefix("raid").strip()
    return _LEVELS.get(key, "raid" + key.replace("+", "").replace(" ", ""))


def _read(text: str) -> list[_Ctl]:
    ctls: list[_Ctl] = []
    ctl: _Ctl | None = None
    block: dict[str, str] | None = None
    array: str | None = None
    for line in text.splitlines():
        if line and not line[0].isspace():
            m = _CONTROLLER.fullmatch(line.strip())
            if m and not line.startswith(("FIRMWARE", "#")):
                ctl = _Ctl(_ctl_id(m["where"]), m["model"])
                ctls.append(ctl)
                block, array = ctl.fields, None
            continue
        if ctl is None:
            continue
        if m := _ARRAY.fullmatch(line):
            array = m["name"]
            ctl.arrays[array] = m["words"] or "OK"
            block = None
        elif m := _ARRAY_DETAIL.fullmatch(line):
            array = m["name"]
            ctl.arrays.setdefault(array, "OK")
            block = {"_array": array}
        elif _UNASSIGNED.fullmatch(line):
            array, block = None, None
        elif m := _LD_SHORT.fullmatch(line):
            parts = [p.strip() for p in m["inner"].split(",")]
            ld = ctl.lds.setdefault(m["id"], {"_array": array or ""})
            ld.setdefault("Fault Tolerance", parts[1] if len(parts) > 1 else "")
            ld.setdefault("Status", ", ".join(parts[2:]))
            block = None
        elif m := _LD_DETAIL.fullmatch(line):
            block = ctl.lds.setdefault(m["id"], {"_array": array or ""})
        elif m := _PD_SHORT.fullmatch(line):
            parts = [p.strip() for p in m["inner"].split(",")]
            pd = ctl.pds.setdefault(m["addr"], {})
            if array is not None:
                pd.setdefault("_array", array)
            pd.setdefault("Status", parts[3] if len(parts) > 3 else "")
            if "spare" in (p.lower() for p in parts[4:]):
                pd["_spare"] = "yes"
            block = None
        elif m := _PD_DETAIL.fullmatch(line):
            block = ctl.pds.setdefault(m["addr"], {})
            if array is not None:
                block.setdefault("_array", array)
        elif (kv := _KV.fullmatch(line)) and block is not None:
            block.setdefault(kv["key"], kv["value"])
            if kv["key"] == "Status" and block.get("_array") == array and _is_array(block):
                ctl.arrays[array or ""] = kv["value"]
    return _unique_ids(ctls)


def _is_array(block: Mapping[str, str]) -> bool:
    """The block of an ``Array: X`` line (its own keys, not a drive's or logical drive's)."""
    return set(block) - {"_array"} <= {"Interface Type", "Unused Space", "Used Space", "Status"}


def _unique_ids(ctls: list[_Ctl]) -> list[_Ctl]:
    """Two controllers named alike (two "MSA1500 CS in MY STORAGE") get -2, -3 ..."""
    seen: dict[str, int] = {}
    for c in ctls:
        seen[c.id] = seen.get(c.id, 0) + 1
        if seen[c.id] > 1:
            c.id = f"{c.id}-{seen[c.id]}"
    return ctls


def _array_status(block_words: str) -> Verdict | None:
    return lookup(ARRAY_STATES, block_words, None)


def _vd(ctl: _Ctl, ld_id: str, raw: Mapping[str, str]) -> VirtualDrive:
    words = raw.get("Status", "")
    verdict = lookup(LD_STATES, words, None)
    array = raw.get("_array") or None
    array_verdict = _array_status(ctl.arrays.get(array or "", "OK"))
    if array_verdict is Verdict.FAILED or (array_verdict and verdict is Verdict.REDUNDANT):
        verdict = array_verdict
        words = f"{words}; array {array} {ctl.arrays[array or '']}"
    progress = _PERCENT.search(raw.get("Status", ""))
    return VirtualDrive(
        id=ld_id,
        level=_level(raw.get("Fault Tolerance", "")),
        words=words,
        verdict=verdict,
        group=array,
        task="recovering" if progress else "",
        percent=float(progress["p"]) if progress else None,
    )


def _drive(addr: str, raw: Mapping[str, str]) -> Drive:
    words = raw.get("Status", "")
    state, role = lookup(PD_STATES, words, (State.UNKNOWN, Role.MEMBER))
    spare = raw.get("_spare") == "yes" or "spare" in raw.get("Drive Type", "").lower()
    array = raw.get("_array")
    if spare:
        role = Role.SPARE
    elif array is None:
        role = Role.OTHER
    return Drive(address=addr, state=state, role=role, words=words, group=array)


def _batteries(fields: Mapping[str, str]) -> tuple[Battery, ...]:
    out = []
    if words := fields.get("Cache Status"):
        out.append(Battery("cache", lookup(CACHE_STATES, words, State.UNKNOWN), words))
    if words := fields.get("Battery/Capacitor Status"):
        out.append(Battery("battery", lookup(BATTERY_STATES, words, State.UNKNOWN), words))
    return tuple(out)


def parse(text: str) -> tuple[Controller, ...]:
    ctls = _read(text)
    if not ctls and text.strip():
        raise RaidError("ssacli: no controller line ('Smart Array ... in Slot N') in the output")
    out = []
    for c in ctls:
        words = c.fields.get("Controller Status", "")
        out.append(
            Controller(
                id=c.id,
                model=c.model,
                state=lookup(CONTROLLER_STATES, words, State.OK if not words else State.UNKNOWN),
                words=words,
                vds=tuple(_vd(c, i, raw) for i, raw in c.lds.items()),
                drives=tuple(_drive(a, raw) for a, raw in c.pds.items()),
                batteries=_batteries(c.fields),
            )
        )
    return tuple(out)


def query(ask: Callable[[tuple[str, ...]], str]) -> tuple[Controller, ...]:
    """Ask the tool (``ask(args) -> stdout``); "No controllers detected" is an empty answer."""
    text = ask(COMMANDS[0])
    if "no controllers detected" in text.lower():
        return ()
    return parse(text)
