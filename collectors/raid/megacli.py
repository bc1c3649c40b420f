"""LSI ``MegaCli`` text: ``-LdPdInfo``, ``-LDInfo``, ``-PDList`` and ``-AdpBbuCmd`` output.

The collector runs ``-LdPdInfo -aALL`` (each virtual drive followed by its drives, marked
``PD: n Information``), ``-PDList -aALL`` (spares and unconfigured drives too) and
``-AdpBbuCmd -GetBbuStatus -aALL``; the parser takes any of them, alone or concatenated.
A drive joins a virtual drive when it follows it under ``PD: n Information``, else through
``Drive's position: DiskGroup: n`` (virtual drive n on drive group n, the layout of one
virtual drive per drive group), else, on an adapter with a single virtual drive, every
drive in a member state belongs to it (old MegaCli versions print no position).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from collectors.base import State, Verdict

from .model import Battery, Controller, Drive, RaidError, Role, VirtualDrive, lookup

COMMANDS: tuple[tuple[str, ...], ...] = (
    ("-LdPdInfo", "-aALL", "-NoLog"),
    ("-PDList", "-aALL", "-NoLog"),
    ("-AdpBbuCmd", "-GetBbuStatus", "-aALL", "-NoLog"),
)

VD_STATES: Mapping[str, Verdict] = {
    "optimal": Verdict.REDUNDANT,
    "partially degraded": Verdict.DEGRADED,
    "degraded": Verdict.DEGRADED,
    "offline": Verdict.FAILED,
    "failed": Verdict.FAILED,
}

# "Firmware state" (the words before the first comma) -> (state, role)
PD_STATES: Mapping[str, tuple[State, Role]] = {
    "online": (State.OK, Role.MEMBER),
    "rebuild": (State.OK, Role.REBUILDING),
    "copyback": (State.OK, Role.MEMBER),
    "failed": (State.FAILED, Role.MEMBER),
    "offline": (State.FAILED, Role.MEMBER),
    "missing": (State.FAILED, Role.MEMBER),
    "hotspare": (State.OK, Role.SPARE),
    "unconfigured(good)": (State.OK, Role.OTHER),
    "unconfigured(bad)": (State.FAILED, Role.OTHER),
    "jbod": (State.OK, Role.OTHER),
}

BATTERY_STATES: Mapping[str, State] = {
    "optimal": State.OK,
    "operational": State.OK,
    "non operational": State.FAILED,
    "failed": State.FAILED,
    "degraded": State.FAILED,
}

# "Primary-X, Secondary-Y": (primary, spanned?) -> level
_LEVELS: Mapping[tuple[str, bool], str] = {
    ("0", False): "raid0",
    ("0", True): "raid00",
    ("1", False): "raid1",
    ("1", True): "raid10",
    ("5", False): "raid5",
    ("5", True): "raid50",
    ("6", False): "raid6",
    ("6", True): "raid60",
}

_KV = re.compile(r"\s*(?P<key>[^:]+?)\s*:\s*(?P<value>.*?)\s*")
_ADAPTER = re.compile(
    r"(?:Adapter\s*#?\s*(?P<a>\d+)\b.*|BBU status for Adapter:\s*(?P<b>\d+)|"
    r"Adapter (?P<c>\d+) -- Virtual Drive Information:)"
)
_VD = re.compile(r"Virtual (?:Drive|Disk):\s*(?P<id>\d+)\b.*")
_PD_INFO = re.compile(r"PD:\s*\d+\s+Information")
_POSITION = re.compile(r"DiskGroup:\s*(?P<dg>\d+)")


@dataclass
class _Adapter:
    id: str
    vds: list[dict[str, str]] = field(default_factory=list)
    drives: list[dict[str, str]] = field(default_factory=list)
    battery: dict[str, str] = field(default_factory=dict)


def _level(vd: Mapping[str, str]) -> str:
    primary = re.search(r"Primary-(\d+)", vd.get("RAID Level", ""))
    depth = re.search(r"\d+", vd.get("Span Depth", "1"))
    spanned = depth is not None and int(depth.group()) > 1
    if primary is None:
        return "unknown"
    return _LEVELS.get((primary.group(1), spanned), f"raid{primary.group(1)}")


def _slots(vd: Mapping[str, str]) -> int | None:
    if (n := vd.get("Number Of Drives")) and n.isdigit():
        return int(n)
    per_span, depth = vd.get("Number Of Drives per span", ""), vd.get("Span Depth", "")
    if per_span.isdigit() and depth.isdigit():
        return int(per_span) * int(depth)
    return None


def _read(text: str) -> list[_Adapter]:
    adapters: dict[str, _Adapter] = {}
    current: _Adapter | None = None
    block: dict[str, str] | None = None
    vd_id: str | None = None  # the virtual drive whose drives follow (LdPdInfo)
    in_pd_info = False
    for line in text.splitlines():
        stripped = line.strip()
        if m := _ADAPTER.fullmatch(stripped):
            number = m["a"] or m["b"] or m["c"]
            current = adapters.setdefault(number, _Adapter(number))
            block, vd_id, in_pd_info = None, None, False
            if m["b"] is not None:
                block = current.battery
            continue
        if current is None:
            continue
        if m := _VD.fullmatch(stripped):
            block = {"_id": m["id"]}
            current.vds.append(block)
            vd_id, in_pd_info = m["id"], False
            continue
        if _PD_INFO.fullmatch(stripped):
            in_pd_info = True
            continue
        kv = _KV.fullmatch(line)
        if kv is None:
            continue
        key, value = kv["key"], kv["value"]
        if key == "Enclosure Device ID":
            block = {"_vd": vd_id or ""} if in_pd_info else {}
            current.drives.append(block)
        if block is not None:
            block.setdefault(key, value)
    return list(adapters.values())


def _drive(raw: Mapping[str, str], group: str | None) -> Drive:
    words = raw.get("Firmware state", "")
    state, role = lookup(PD_STATES, words.split(",")[0], (State.UNKNOWN, Role.OTHER))
    did = raw.get("Device Id", "")
    return Drive(
        address=f"{raw.get('Enclosure Device ID', '?')}:{raw.get('Slot Number', '?')}",
        state=state,
        role=role,
        words=words,
        group=group if role is not Role.OTHER else None,
        device=f"megaraid,{did}" if did.isdigit() else "",
    )


def _group_of(raw: Mapping[str, str], single_vd: str | None) -> str | None:
    if raw.get("_vd"):
        return raw["_vd"]
    if m := _POSITION.search(raw.get("Drive's position", "")):
        return m["dg"]
    return single_vd


def _battery(raw: Mapping[str, str]) -> Battery | None:
    if not raw:
        return None
    words = raw.get("Battery State", "") or raw.get("Battery state", "")
    if raw.get("Battery Pack Missing", "").lower() == "yes":
        return Battery("bbu", State.ABSENT, "battery pack missing")
    if raw.get("Battery Replacement required", "").lower() == "yes":
        return Battery("bbu", State.FAILED, f"{words or 'battery'}: replacement required")
    if not words:  # old MegaCli: no state line; the firmware status lines say all is well
        return Battery("bbu", State.OK, "no replacement required")
    return Battery("bbu", lookup(BATTERY_STATES, words, State.UNKNOWN), words)


def _unique(drives: list[Drive]) -> tuple[Drive, ...]:
    """A drive listed twice (LdPdInfo and PDList): the listing that places it wins."""
    seen: dict[str, Drive] = {}
    for d in drives:
        old = seen.get(d.address)
        if old is None or (old.group is None and d.group is not None):
            seen[d.address] = d
    return tuple(seen.values())


def parse(text: str) -> tuple[Controller, ...]:
    adapters = _read(text)
    if not adapters and text.strip():
        raise RaidError("MegaCli: no 'Adapter' line in the output")
    out = []
    for a in adapters:
        vds = tuple(
            VirtualDrive(
                id=raw["_id"],
                level=_level(raw),
                words=raw.get("State", ""),
                verdict=lookup(VD_STATES, raw.get("State", ""), None),
                group=raw["_id"],
                slots=_slots(raw),
            )
            for raw in a.vds
        )
        single = vds[0].id if len(vds) == 1 else None
        drives = _unique([_drive(raw, _group_of(raw, single)) for raw in a.drives])
        battery = _battery(a.battery)
        out.append(
            Controller(
                id=f"a{a.id}",
                model="",
                state=State.OK,
                words="",
                vds=vds,
                drives=tuple(replace(d) for d in drives),
                batteries=() if battery is None else (battery,),
            )
        )
    return tuple(out)


def query(ask: Callable[[tuple[str, ...]], str]) -> tuple[Controller, ...]:
    """Ask the tool (``ask(args) -> stdout``) each command and parse the answers together."""
    return parse("\n".join(ask(c) for c in COMMANDS))
