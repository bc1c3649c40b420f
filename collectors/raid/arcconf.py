"""Adaptec / Microsemi ``arcconf`` text: ``GETCONFIG <n> AL`` and ``GETSTATUS <n>``.

Members of a logical device are its segments (``Segment 1 : Missing``, ``Group 1, Segment 0 :
Rebuilding (Controller:1,Enclosure:0,Slot:3)``, or in newer versions ``Device 4 : Present
(..., Connector:1, Device:4)``), addressed by the drive location they name; a missing
segment has no location and is addressed ``ld<N>-seg<M>``. A physical device at the same
location is folded into the segment (the worse of the two states, both words kept).
``GETSTATUS`` adds the running task (``Rebuild``, 1 %) to its logical device.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from collectors.base import State, Verdict

from .model import Battery, Controller, Drive, RaidError, Role, VirtualDrive, lookup

COMMANDS: tuple[tuple[str, ...], ...] = (("GETCONFIG", "{n}", "AL"), ("GETSTATUS", "{n}"))

LD_STATES: Mapping[str, Verdict] = {
    "optimal": Verdict.REDUNDANT,
    "okay": Verdict.REDUNDANT,
    "degraded": Verdict.DEGRADED,
    "suboptimal": Verdict.DEGRADED,
    "impacted": Verdict.DEGRADED,
    "rebuilding": Verdict.DEGRADED,
    "offline": Verdict.FAILED,
    "failed": Verdict.FAILED,
}

SEGMENT_STATES: Mapping[str, tuple[State, Role]] = {
    "present": (State.OK, Role.MEMBER),
    "rebuilding": (State.OK, Role.REBUILDING),
    "missing": (State.FAILED, Role.MEMBER),
    "inconsistent": (State.FAILED, Role.MEMBER),
    "failed": (State.FAILED, Role.MEMBER),
}

PD_STATES: Mapping[str, tuple[State, Role]] = {
    "online": (State.OK, Role.OTHER),
    "ready": (State.OK, Role.OTHER),
    "raw": (State.OK, Role.OTHER),
    "rebuilding": (State.OK, Role.OTHER),
    "global hot-spare": (State.OK, Role.SPARE),
    "dedicated hot-spare": (State.OK, Role.SPARE),
    "hot spare": (State.OK, Role.SPARE),
    "failed": (State.FAILED, Role.OTHER),
    "defunct": (State.FAILED, Role.OTHER),
}

CONTROLLER_STATES: Mapping[str, State] = {
    "optimal": State.OK,
    "okay": State.OK,
    "ok": State.OK,
    "failed": State.FAILED,
}

# Battery "Status" / "Backup Power Status"; None: no battery fitted (nothing to watch)
BATTERY_STATES: Mapping[str, State | None] = {
    "optimal": State.OK,
    "ok": State.OK,
    "charging": State.OK,
    "not installed": None,
    "zmm not installed": None,
    "not present": None,
    "degraded": State.FAILED,
    "failed": State.FAILED,
}

_LEVELS: Mapping[str, str] = {
    "0": "raid0",
    "1": "raid1",
    "1e": "raid1e",
    "10": "raid10",
    "5": "raid5",
    "50": "raid50",
    "6": "raid6",
    "60": "raid60",
    "simple_volume": "simple",
    "spanned_volume": "spanned",
}

_KV = re.compile(r"\s*(?P<key>\S.*?)\s+:\s*(?P<value>.*?)\s*")
_LD = re.compile(r"Logical (?:device|drive) number (?P<id>\d+)", re.IGNORECASE)
_LD_STATUS = re.compile(r"Status of logical (?:device|drive)", re.IGNORECASE)
_PD = re.compile(r"Device #(?P<n>\d+)")
_SEGMENT_KEY = re.compile(r"(?:Group (?P<g>\d+), )?Segment (?P<s>\d+)|Device (?P<d>\d+)")
_SEGMENT_VALUE = re.compile(
    r"(?P<state>[A-Za-z ]+?)\s*(?:\((?P<loc>[^)]*)\))?(?:\s+(?P<serial>\S+))?"
)
_LOCATIONS = (
    re.compile(r"Enclosure:(?P<a>\d+),\s*Slot:(?P<b>\d+)"),
    re.compile(r"Connector:(?P<a>\d+),\s*Device:(?P<b>\d+)"),
)
_CHANNEL = re.compile(r"(?P<a>\d+),(?P<b>\d+)$")
_REPORTED = re.compile(r"(?:Enclosure|Connector) (?P<a>\d+), (?:Slot|Device) (?P<b>\d+)")
_CH_DEV = re.compile(r"(?P<a>\d+),(?P<b>\d+)")
_SECTIONS = {
    "controller information": "controller",
    "controller battery information": "battery",
    "logical device information": "ld",
    "logical drive information": "ld",
    "physical device information": "pd",
    "array information": "array",
    "logical device task:": "task",
}


@dataclass
class _Parse:
    fields: dict[str, str] = field(default_factory=dict)
    battery: str = ""
    lds: dict[str, dict[str, str]] = field(default_factory=dict)
    segments: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    pds: list[dict[str, str]] = field(default_factory=list)
    tasks: dict[str, dict[str, str]] = field(default_factory=dict)


def _segment_location(loc: str | None) -> str | None:
    if not loc:
        return None
    for pattern in _LOCATIONS:
        if m := pattern.search(loc):
            return f"{m['a']}:{m['b']}"
    if m := _CHANNEL.fullmatch(loc.strip()):
        return f"{m['a']},{m['b']}"
    return None


def _pd_locations(raw: Mapping[str, str]) -> list[str]:
    """The drive's addresses, best first: enclosure:slot, then channel,device."""
    out = []
    if m := _REPORTED.search(raw.get("Reported Location", "")):
        out.append(f"{m['a']}:{m['b']}")
    for key in ("Reported Channel,Device(T:L)", "Reported Channel,Device"):
        if m := _CH_DEV.match(raw.get(key, "")):
            out.append(f"{m['a']},{m['b']}")
    return out or [f"dev{raw.get('_n', '?')}"]


def _read(text: str) -> _Parse:
    p = _Parse()
    section = ""
    block: dict[str, str] | None = None
    ld: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if (title := _SECTIONS.get(stripped.lower())) is not None:
            section, block = title, None
            if title == "task":
                block = {}
            continue
        if m := _LD.fullmatch(stripped):
            section, ld = "ld", m["id"]
            block = p.lds.setdefault(ld, {})
            continue
        if section == "pd" and (m := _PD.fullmatch(stripped)):
            block = {"_n": m["n"]}
            p.pds.append(block)
            continue
        kv = _KV.fullmatch(line)
        if kv is None:
            if section == "pd" and block is not None and stripped.startswith("Device is a"):
                block["_kind"] = stripped.removeprefix("Device is a").strip().lstrip("n ")
            continue
        key, value = kv["key"], kv["value"]
        if section == "controller":
            p.fields.setdefault(key, value)
        elif section == "battery" and key == "Status":
            p.battery = p.battery or value
        elif section == "ld" and ld is not None and _SEGMENT_KEY.fullmatch(key):
            p.segments.setdefault(ld, []).append((key, value))
        elif section in ("ld", "pd") and block is not None:
            block.setdefault(key, value)
        elif section == "task" and block is not None:
            block[key] = value
            if key.lower() == "logical device":
                p.tasks[value] = block
            if key.lower() == "percentage complete":
                block = {}
    return p


def _segments(ld: str, entries: list[tuple[str, str]]) -> list[Drive]:
    out = []
    for key, value in entries:
        m = _SEGMENT_VALUE.fullmatch(value)
        words = m["state"].strip() if m else value
        state, role = lookup(SEGMENT_STATES, words, (State.UNKNOWN, Role.MEMBER))
        km = _SEGMENT_KEY.fullmatch(key)
        name = key
        if km:
            name = km["d"] or (f"{km['g']}.{km['s']}" if km["g"] else km["s"])
        address = _segment_location(m["loc"] if m else None) or f"ld{ld}-seg{name}"
        serial = (m["serial"] or "") if m else ""
        out.append(Drive(address, state, role, f"segment {words}", group=ld, device=serial))
    return out


_SEVERITY = {State.OK: 0, State.WARNING: 1, State.UNKNOWN: 2, State.ABSENT: 3, State.FAILED: 4}


def _merge(drives: dict[str, Drive], raw: Mapping[str, str]) -> None:
    if raw.get("_kind", "Hard drive").lower() not in ("hard drive", "solid state drive", ""):
        return  # enclosures and their services devices are not drives
    words = raw.get("State", "")
    state, role = lookup(PD_STATES, words, (State.UNKNOWN, Role.OTHER))
    addresses = _pd_locations(raw)
    address = addresses[0]
    serial = raw.get("Serial number", "")
    by_serial = [k for k, d in drives.items() if serial and d.device == serial]
    key = next(iter(by_serial + [a for a in addresses if a in drives]), address)
    old = drives.get(key)
    if old is None:
        drives[address] = Drive(address, state, role, words)
        return
    worse = max(old.state, state, key=_SEVERITY.__getitem__)
    del drives[key]  # the drive's own location names it from now on
    drives[address] = replace(
        old, address=address, state=worse, words=f"{old.words}; drive {words}"
    )


def _battery(p: _Parse) -> tuple[Battery, ...]:
    out = []
    for name, words in (("battery", p.battery or p.fields.get("Backup Power Status", "")),):
        if words and (state := lookup(BATTERY_STATES, words, State.UNKNOWN)) is not None:
            out.append(Battery(name, state, words))
    return tuple(out)


def parse(text: str, number: str = "1") -> tuple[Controller, ...]:
    """One controller's GETCONFIG (and optionally GETSTATUS) output."""
    if "Controllers found: 0" in text:
        return ()
    p = _read(text)
    if not (p.fields or p.lds or p.pds or p.tasks or "Controllers found:" in text):
        raise RaidError("arcconf: neither controller, logical nor physical device information")
    drives: dict[str, Drive] = {}
    for ld, entries in p.segments.items():
        for d in _segments(ld, entries):
            drives.setdefault(d.address, d)
    for raw in p.pds:
        _merge(drives, raw)
    drives = {a: replace(d, device="") for a, d in drives.items()}  # serials matched: drop them
    vds = []
    for ld, raw in p.lds.items():
        words = next((v for k, v in raw.items() if _LD_STATUS.fullmatch(k)), "")
        task = p.tasks.get(ld, {})
        percent = task.get("Percentage complete", "")
        level = raw.get("RAID level", "").lower()
        vds.append(
            VirtualDrive(
                id=ld,
                level=_LEVELS.get(level, f"raid{level}" if level.isdigit() else level),
                words=words,
                verdict=lookup(LD_STATES, words, None),
                group=ld,
                slots=len(p.segments.get(ld, [])) or None,
                task=task.get("Current operation", "").lower() if percent else "",
                percent=float(percent) if percent.replace(".", "", 1).isdigit() else None,
            )
        )
    words = p.fields.get("Controller Status", "")
    return (
        Controller(
            id=f"c{number}",
            model=p.fields.get("Controller Model", ""),
            state=lookup(CONTROLLER_STATES, words, State.OK if not words else State.UNKNOWN),
            words=words,
            vds=tuple(vds),
            drives=tuple(drives.values()),
            batteries=_battery(p),
        ),
    )


_FOUND = re.compile(r"Controllers found:\s*(?P<n>\d+)")


def query(ask: Callable[[tuple[str, ...]], str]) -> tuple[Controller, ...]:
    """Ask about controller 1, then every further controller the tool says it found."""

    def one(n: int, config: str | None = None) -> tuple[str, str]:
        args = [tuple(a.format(n=n) for a in c) for c in COMMANDS]
        return config if config is not None else ask(args[0]), ask(args[1])

    first = ask(tuple(a.format(n=1) for a in COMMANDS[0]))
    found = _FOUND.search(first)
    count = int(found["n"]) if found else 1
    out: list[Controller] = []
    for n in range(1, count + 1):
        config, status = one(n, first if n == 1 else None)
        out.extend(parse(f"{config}\n{status}", str(n)))
    return tuple(out)
