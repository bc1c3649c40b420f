"""Linux software RAID (md) arrays from the kernel's status file, ``/proc/mdstat``.

Three layers, each usable on its own:

``parse_mdstat(text)``
    A pure parser from the file's text to frozen dataclasses (``Mdstat``, ``MdArray``,
    ``MdMember``, ``MdSync``). It tolerates what real captures contain: shell prompt lines
    (``# cat /proc/mdstat``), a missing ``unused devices:`` line, unindented or
    whitespace-only block lines, systems without arrays, inactive arrays without a level,
    and external-metadata (IMSM/DDF) containers. Unknown extra lines inside an array's
    block are ignored. Anything else raises ``MdstatError`` naming the line number and the
    line.

``snapshot(mdstat, now)``
    A pure function from the parse to Readings and one RAID redundancy group per array.

``MdstatCollector``
    Reads the file (its only I/O) and calls the two functions above. A missing file means
    the host has no md driver loaded: not applicable, an empty Snapshot, not an error.

How arrays become groups
------------------------
* Group ``md/<array>`` (kind RAID), components ``md/<array>/<device>`` (kind DISK).
* ``total`` is the number of RAID slots, ``raid_disks`` from ``[n/m]``; raid0 and linear
  print no ``[n/m]``, so there it is the number of slot-holding members.
* ``required`` comes from the RAID level through ``_LOSSES_TOLERATED``: total minus the
  number of members the level can always lose (raid1/multipath: all but one; raid4/5: one;
  raid6: two; raid10: copies - 1, the copies read from "N near-/far-/offset-copies" and
  multiplied, two when the layout is not shown; raid0/linear and unknown levels: none).
* Members (slot holders) are the in-sync members and the faulty ``(F)`` ones; a faulty
  member reads FAILED, an in-sync one OK. Missing slots are covered by ``total`` being
  larger than the member count; no reading is invented for them.
* Spares are the ``(S)`` devices, replacement ``(R)`` devices and members being rebuilt.
  They read OK but add no margin until they are in sync.
* Rebuilding members: the status string (``[U_U]``) counts the in-sync members. When an
  array has more active members (not faulty, not spare, not journal, not replacement) than
  ``U``s, the excess ones are being rebuilt. The bracketed number is the device's number
  in the superblock, which for a member added later is usually at least ``raid_disks``; so
  the excess is taken first from devices whose number is ``>= raid_disks`` or points at a
  ``_`` in the status string, then from the highest numbers.
* Journal ``(J)`` devices get a reading (OK, or FAILED when faulty) but are neither slot
  holders nor spares.
* Inactive arrays are not assembled, so nothing in them serves: the group exists and every
  device in it is a member reading FAILED with the detail "array inactive". The group is
  therefore FAILED, however many devices are listed.
* External-metadata containers (``super external:imsm`` or ``external:ddf`` and no level)
  only hold the metadata; the arrays inside them are listed as arrays of their own. A
  container is not a redundancy group and produces neither a group nor readings.
* A device listed twice in one array (it cannot be in a real array) is reported once, as
  its first entry says.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.base import (
    GroupKind,
    GroupSpec,
    Kind,
    Option,
    Reading,
    Snapshot,
    State,
    disk_of,
    option_values,
)

OPTIONS: dict[str, Option] = {
    "path": Option(str, "/proc/mdstat", "The file to read: the kernel's md status file."),
}


class MdstatError(ValueError):
    """The text is not md status output. Names the offending line when there is one."""

    def __init__(self, message: str, number: int | None = None, line: str | None = None):
        if number is not None:
            message = f"line {number}: {message}: {line!r}"
        super().__init__(message)
        self.number = number
        self.line = line


# --- the parse ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MdMember:
    """One device of an array as the array line lists it, e.g. ``sdc1[3](F)``.

    ``slot`` is the number in brackets: the device's number in the array's superblock. For
    the members an array was created with it is also their position in the status string;
    a device added later usually gets a number of at least ``raid_disks``.
    """

    dev: str
    slot: int
    failed: bool = False  # (F) faulty
    spare: bool = False  # (S) not holding a RAID slot
    write_mostly: bool = False  # (W)
    journal: bool = False  # (J) raid4/5/6 write journal
    replacement: bool = False  # (R) being built to replace a member


@dataclass(frozen=True, slots=True)
class MdSync:
    """A resync, recovery, check, repair or reshape: running (with progress) or waiting."""

    action: str  # recovery | resync | check | reshape | repair
    percent: float | None = None
    done: int | None = None  # blocks done (1 KiB units)
    total: int | None = None
    finish: str | None = None  # e.g. "17.0min"
    speed: str | None = None  # e.g. "259783K/sec"
    pending: str | None = None  # DELAYED | PENDING when not running yet

    @property
    def text(self) -> str:
        """The progress in the file's own words, e.g. "recovery 8.5% (1/2) finish=1.0min"."""
        if self.pending is not None:
            return f"{self.action}={self.pending}"
        parts = [self.action]
        if self.percent is not None:
            parts.append(f"{self.percent}%")
        if self.done is not None and self.total is not None:
            parts.append(f"({self.done}/{self.total})")
        if self.finish is not None:
            parts.append(f"finish={self.finish}")
        if self.speed is not None:
            parts.append(f"speed={self.speed}")
        return " ".join(parts)

    @property
    def short(self) -> str:
        """The action and percentage only, e.g. "recovery 8.5%" or "resync=DELAYED"."""
        if self.pending is not None or self.percent is None:
            return self.text
        return f"{self.action} {self.percent}%"


@dataclass(frozen=True, slots=True)
class MdArray:
    """One md array: its line (``md0 : active raid1 sda1[0] sdb1[1]``) and block lines."""

    name: str
    state: str  # active | inactive
    read_only: str | None  # read-only | auto-read-only | None
    level: str | None  # raid1, raid5, linear, ...; None for inactive arrays and containers
    members: tuple[MdMember, ...]
    blocks: int | None = None
    super: str | None = None  # metadata version, e.g. "1.2" or "external:imsm"
    raid_disks: int | None = None  # n of [n/m]
    active_disks: int | None = None  # m of [n/m]
    status: str | None = None  # the [UU_] string without brackets
    sync: MdSync | None = None
    bitmap: str | None = None  # e.g. "0/2 pages [0KB], 65536KB chunk"
    chunk: str | None = None  # e.g. "64k"
    layout: str | None = None  # raid10 copies as written, e.g. "2 near-copies"
    copies: int | None = None  # raid10: number of copies of each block

    @property
    def member_count(self) -> int:
        return len(self.members)

    @property
    def status_up_count(self) -> int | None:
        """How many members the status string shows in sync."""
        return None if self.status is None else self.status.count("U")

    @property
    def failed_members(self) -> tuple[str, ...]:
        return tuple(m.dev for m in self.members if m.failed)

    @property
    def spare_members(self) -> tuple[str, ...]:
        return tuple(m.dev for m in self.members if m.spare)

    @property
    def missing_slots(self) -> int | None:
        if self.raid_disks is None or self.active_disks is None:
            return None
        return self.raid_disks - self.active_disks

    @property
    def degraded(self) -> bool | None:
        """Fewer active members than RAID slots; None when the level shows no ``[n/m]``."""
        if self.raid_disks is None or self.active_disks is None:
            return None
        return self.active_disks < self.raid_disks

    @property
    def is_container(self) -> bool:
        """An external-metadata container: holds metadata, not data (no level)."""
        return self.level is None and (self.super or "").startswith("external:")

    @property
    def health(self) -> str:
        """A label: inactive, degraded[+action], clean-with-failed-member or clean[+action]."""
        suffix = "" if self.sync is None else f"+{self.sync.action}"
        if self.state == "inactive":
            return "inactive"
        if self.degraded:
            return f"degraded{suffix}"
        if self.failed_members:
            return "clean-with-failed-member"
        return f"clean{suffix}"


@dataclass(frozen=True, slots=True)
class Mdstat:
    """The whole file: the loaded RAID personalities and the arrays, in file order."""

    personalities: tuple[str, ...]
    arrays: tuple[MdArray, ...]


_READ_ONLY: Mapping[str, str] = {
    "(read-only)": "read-only",
    "(auto-read-only)": "auto-read-only",
}
_FLAGS: Mapping[str, str] = {
    "F": "failed",
    "S": "spare",
    "W": "write_mostly",
    "J": "journal",
    "R": "replacement",
}
_SYNC_ACTIONS = "recovery|resync|check|reshape|repair"

_PERSONALITIES = re.compile(r"Personalities\s*:(?P<rest>.*)")
_PERSONALITY = re.compile(r"\[(?P<name>[^\[\]\s]+)\]")
_HEADER = re.compile(r"(?P<name>[^\s:]+)\s*:\s*(?P<state>active|inactive)(?P<rest>(?:\s.*)?)")
_UNUSED = re.compile(r"unused devices\s*:")
_PROMPT = re.compile(r"[#$]|.*[#$%>]\s*cat\s+\S*mdstat\b")
_LEVEL = re.compile(r"[a-z][a-z0-9_-]*")
_MEMBER = re.compile(r"(?P<dev>[^\s\[\]()]+)\[(?P<slot>[0-9]{1,9})\](?P<flags>(?:\([FSWJR]\))*)")
_BLOCKS = re.compile(r"(?P<blocks>[0-9]{1,30})\s+blocks\b(?P<rest>.*)")
_SUPER = re.compile(r"\bsuper\s+(?P<super>\S+)")
_CHUNK = re.compile(r"\b(?P<chunk>[0-9]{1,20}[kKmMgG]?)\s+chunks?\b")
_COPIES = re.compile(r"\b(?P<count>[0-9]{1,3})\s+(?P<kind>near|far|offset)-copies\b")
_COUNTS = re.compile(r"\[(?P<raid_disks>[0-9]{1,9})/(?P<active_disks>[0-9]{1,9})\]")
_STATUS = re.compile(r"\[(?P<status>[U_]+)\]")
_PROGRESS = re.compile(
    r"(?:\[[=>.]*\]\s*)?"
    rf"(?P<action>{_SYNC_ACTIONS})\s*=\s*"
    r"(?P<percent>[0-9]{1,3}(?:\.[0-9]{1,9})?)%"
    r"(?:\s*\((?P<done>[0-9]{1,30})/(?P<total>[0-9]{1,30})\))?"
    r"(?:\s+finish=(?P<finish>\S+))?"
    r"(?:\s+speed=(?P<speed>\S+))?"
)
_PENDING = re.compile(rf"(?P<action>{_SYNC_ACTIONS})\s*=\s*(?P<pending>DELAYED|PENDING)\b")
_BITMAP = re.compile(r"bitmap:\s*(?P<bitmap>.*?)\s*")


def _optional_int(text: str | None) -> int | None:
    return None if text is None else int(text)


def _personalities(number: int, line: str) -> tuple[str, ...]:
    """The names in ``Personalities : [raid1] [raid6]``."""
    match = _PERSONALITIES.fullmatch(line.strip())
    if match is None:
        raise MdstatError("expected the 'Personalities :' line", number, line)
    names = []
    for token in match["rest"].split():
        item = _PERSONALITY.fullmatch(token)
        if item is None:
            raise MdstatError(f"unrecognised personality {token!r}", number, line)
        names.append(item["name"])
    return tuple(names)


def _member(token: str) -> MdMember | None:
    """``sdc1[3](F)`` -> MdMember, or None when the token is not a device entry."""
    match = _MEMBER.fullmatch(token)
    if match is None:
        return None
    flags = {_FLAGS[flag]: True for flag in match["flags"][1::3]}
    return MdMember(dev=match["dev"], slot=int(match["slot"]), **flags)


def _header(number: int, line: str) -> dict[str, Any]:
    """The fields of an array line: name, state, read-only mode, level and members."""
    match = _HEADER.fullmatch(line.strip())
    if match is None:  # the caller only passes lines that matched
        raise MdstatError("expected an array line", number, line)
    tokens = match["rest"].split()
    read_only = _READ_ONLY.get(tokens[0]) if tokens else None
    if read_only is not None:
        tokens = tokens[1:]
    level = None
    if tokens and _LEVEL.fullmatch(tokens[0]):
        level, tokens = tokens[0], tokens[1:]
    members = []
    for token in tokens:
        member = _member(token)
        if member is None:
            raise MdstatError(f"unrecognised device entry {token!r}", number, line)
        members.append(member)
    return {
        "name": match["name"],
        "state": match["state"],
        "read_only": read_only,
        "level": level,
        "members": tuple(members),
    }


def _blocks_fields(match: re.Match[str]) -> dict[str, Any]:
    """The fields of the size line: ``8385664 blocks super 1.2 level 5, 64k chunk, ...``."""
    rest = match["rest"]
    fields: dict[str, Any] = {"blocks": int(match["blocks"])}
    if found := _SUPER.search(rest):
        fields["super"] = found["super"]
    if found := _CHUNK.search(rest):
        fields["chunk"] = found["chunk"]
    if copies := _COPIES.findall(rest):
        fields["layout"] = " ".join(f"{count} {kind}-copies" for count, kind in copies)
        fields["copies"] = math.prod(int(count) for count, _ in copies)
    if found := _COUNTS.search(rest):
        fields["raid_disks"] = int(found["raid_disks"])
        fields["active_disks"] = int(found["active_disks"])
    if found := _STATUS.search(rest):
        fields["status"] = found["status"]
    return fields


def _sync_fields(line: str) -> dict[str, Any]:
    """A progress line or a ``resync=DELAYED`` line as ``{"sync": MdSync}``, else {}."""
    if match := _PROGRESS.match(line):
        return {
            "sync": MdSync(
                action=match["action"],
                percent=float(match["percent"]),
                done=_optional_int(match["done"]),
                total=_optional_int(match["total"]),
                finish=match["finish"],
                speed=match["speed"],
            )
        }
    if match := _PENDING.match(line):
        return {"sync": MdSync(action=match["action"], pending=match["pending"])}
    return {}


def _block_line_fields(line: str) -> dict[str, Any]:
    """What one line below an array line says; {} for a line we do not know."""
    if match := _BLOCKS.fullmatch(line):
        return _blocks_fields(match)
    if match := _BITMAP.fullmatch(line):
        return {"bitmap": match["bitmap"]}
    return _sync_fields(line)


def _array(lines: list[tuple[int, str]]) -> MdArray:
    """An array from its array line and the lines of its block."""
    number, header = lines[0]
    fields = _header(number, header)
    for _, line in lines[1:]:
        for key, value in _block_line_fields(line.strip()).items():
            fields.setdefault(key, value)  # the first line that says something wins
    return MdArray(**fields)


def _is_prompt(stripped: str) -> bool:
    """A shell prompt or comment line left in a capture, e.g. ``# cat /proc/mdstat``."""
    return _PROMPT.match(stripped) is not None


def parse_mdstat(text: str) -> Mdstat:
    """Parse the text of ``/proc/mdstat``.

    Raises MdstatError (a ValueError) when the text has no ``Personalities`` line or has a
    line that belongs nowhere: outside an array's block, every line must be an array line,
    the ``unused devices`` line, a blank line or a shell prompt.
    """
    personalities: tuple[str, ...] | None = None
    arrays: list[MdArray] = []
    block: list[tuple[int, str]] = []

    def close() -> None:
        if block:
            arrays.append(_array(block))
            block.clear()

    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if personalities is None:
            if stripped and not _is_prompt(stripped):
                personalities = _personalities(number, line)
        elif _HEADER.fullmatch(stripped):
            close()
            block.append((number, line))
        elif not stripped or _UNUSED.match(stripped):
            close()
        elif block:
            block.append((number, line))
        elif not _is_prompt(stripped):
            raise MdstatError(
                "expected an array line ('md0 : active ...'), 'unused devices:' or a blank line",
                number,
                line,
            )
    close()
    if personalities is None:
        raise MdstatError("no 'Personalities :' line: not md status output")
    return Mdstat(personalities=personalities, arrays=tuple(arrays))


# --- the expected-values view --------------------------------------------------------------


def _sync_dict(sync: MdSync | None) -> dict[str, Any] | None:
    if sync is None:
        return None
    if sync.pending is not None:
        return {"action": sync.action, "pending": sync.pending}
    return {k: v for k, v in dataclasses.asdict(sync).items() if k != "pending"}


def _array_dict(array: MdArray) -> dict[str, Any]:
    return {
        "name": array.name,
        "state": array.state,
        "read_only": array.read_only,
        "level": array.level,
        "members": [dataclasses.asdict(m) for m in array.members],
        "blocks": array.blocks,
        "super": array.super,
        "raid_disks": array.raid_disks,
        "active_disks": array.active_disks,
        "status": array.status,
        "sync": _sync_dict(array.sync),
        "bitmap": array.bitmap,
        "chunk": array.chunk,
        "member_count": array.member_count,
        "status_up_count": array.status_up_count,
        "failed_members": list(array.failed_members),
        "spare_members": list(array.spare_members),
        "missing_slots": array.missing_slots,
        "degraded": array.degraded,
        "health": array.health,
    }


def to_dict(mdstat: Mdstat) -> dict[str, Any]:
    """Plain JSON-ready data in the layout of the test fixtures' ``.expected.json``.

    The raid10 ``layout``/``copies`` fields are not part of that layout and are left out.
    """
    return {
        "personalities": list(mdstat.personalities),
        "arrays": [_array_dict(a) for a in mdstat.arrays],
    }


# --- readings and groups -------------------------------------------------------------------


def _losses_none(slots: int, copies: int) -> int:
    return 0


def _losses_all_but_one(slots: int, copies: int) -> int:
    return slots - 1


def _losses_one(slots: int, copies: int) -> int:
    return 1


def _losses_two(slots: int, copies: int) -> int:
    return 2


def _losses_copies(slots: int, copies: int) -> int:
    return copies - 1


# How many slots each RAID level can always lose and keep serving. Unknown levels: none.
_LOSSES_TOLERATED: Mapping[str, Callable[[int, int], int]] = {
    "linear": _losses_none,
    "raid0": _losses_none,
    "faulty": _losses_none,
    "raid1": _losses_all_but_one,
    "multipath": _losses_all_but_one,
    "raid4": _losses_one,
    "raid5": _losses_one,
    "raid6": _losses_two,
    "raid10": _losses_copies,
}
_RAID10_DEFAULT_COPIES = 2


def required_members(level: str | None, slots: int, copies: int | None = None) -> int:
    """How many of ``slots`` must serve for an array of ``level`` to serve (at least 1)."""
    losses = _LOSSES_TOLERATED.get(level or "", _losses_none)
    tolerated = losses(slots, copies or _RAID10_DEFAULT_COPIES)
    return max(1, slots - max(0, tolerated))


class _Role(enum.Enum):
    """What a device does in an active array."""

    IN_SYNC = "in sync"
    FAILED = "faulty (F) in /proc/mdstat"
    SPARE = "hot spare"
    REBUILDING = "rebuilding"
    REPLACEMENT = "replacement (R)"
    JOURNAL = "journal (J)"


# Role -> whether the device holds a RAID slot (member), waits for one (spare), or neither.
_SLOT_HOLDERS = frozenset({_Role.IN_SYNC, _Role.FAILED})
_STANDBY = frozenset({_Role.SPARE, _Role.REBUILDING, _Role.REPLACEMENT})
_SYNCING = frozenset({_Role.REBUILDING, _Role.REPLACEMENT})


def _unique(members: Iterable[MdMember]) -> tuple[MdMember, ...]:
    """The members with each device once, as its first entry lists it."""
    seen: dict[str, MdMember] = {}
    for member in members:
        seen.setdefault(member.dev, member)
    return tuple(seen.values())


def _flag_role(member: MdMember) -> _Role | None:
    """The role the member's flags decide, or None for an active member."""
    if member.journal:
        return _Role.JOURNAL
    if member.failed:
        return _Role.FAILED
    if member.spare:
        return _Role.SPARE
    if member.replacement:
        return _Role.REPLACEMENT
    return None


def _rebuild_preference(array: MdArray, member: MdMember) -> tuple[bool, int]:
    """Sort key: likely rebuild targets first (number beyond the slots or at a '_')."""
    status = array.status or ""
    beyond = array.raid_disks is not None and member.slot >= array.raid_disks
    at_gap = member.slot < len(status) and status[member.slot] == "_"
    return (not (beyond or at_gap), -member.slot)


def _roles(array: MdArray, members: tuple[MdMember, ...]) -> dict[str, _Role]:
    """Device -> role in an active array, telling rebuilding members from in-sync ones."""
    roles = {m.dev: role for m in members if (role := _flag_role(m)) is not None}
    active = [m for m in members if m.dev not in roles]
    up = array.status_up_count
    excess = 0 if up is None else max(0, len(active) - up)
    ranked = sorted(active, key=lambda m: _rebuild_preference(array, m))
    rebuilding = {m.dev for m in ranked[:excess]}
    for member in active:
        roles[member.dev] = _Role.REBUILDING if member.dev in rebuilding else _Role.IN_SYNC
    return roles


def _detail(role: _Role, member: MdMember, sync: MdSync | None) -> str:
    words = role.value
    if role is _Role.REBUILDING and sync is None:
        words = "not in sync"
    elif role in _SYNCING and sync is not None:
        words = f"{words}, {sync.short}"
    if member.write_mostly:
        words = f"{words}, write-mostly (W)"
    return words


def _reading(array: MdArray, member: MdMember, role: _Role, now: float) -> Reading:
    """One device's reading; a syncing device carries the sync percentage as its value."""
    sync = array.sync
    percent = sync.percent if role in _SYNCING and sync is not None else None
    return Reading(
        id=f"md/{array.name}/{member.dev}",
        kind=Kind.DISK,
        state=State.FAILED if member.failed else State.OK,
        observed_at=now,
        detail=_detail(role, member, sync),
        value=percent,
        unit=None if percent is None else "%",
        device=disk_of(member.dev),
    )


def group_detail(array: MdArray) -> str:
    """The array in the file's words, e.g. "raid1 [2/1] [U_], recovery 8.5% (...) ..."."""
    words = [
        "inactive" if array.state == "inactive" else None,
        array.level,
        None if array.read_only is None else f"({array.read_only})",
        array.layout,
        None if array.raid_disks is None else f"[{array.raid_disks}/{array.active_disks}]",
        None if array.status is None else f"[{array.status}]",
    ]
    text = " ".join(w for w in words if w) or "unknown level"
    return text if array.sync is None else f"{text}, {array.sync.text}"


def _inactive_snapshot(array: MdArray, now: float) -> tuple[list[Reading], GroupSpec]:
    members = _unique(array.members)
    readings = [
        Reading(
            id=f"md/{array.name}/{m.dev}",
            kind=Kind.DISK,
            state=State.FAILED,
            observed_at=now,
            detail="array inactive" + (", faulty (F)" if m.failed else ""),
            device=disk_of(m.dev),
        )
        for m in members
    ]
    total = array.raid_disks if array.raid_disks is not None else len(members)
    group = GroupSpec(
        id=f"md/{array.name}",
        kind=GroupKind.RAID,
        required=required_members(array.level, total, array.copies),
        members=tuple(r.id for r in readings),
        total=total,
        detail=group_detail(array),
    )
    return readings, group


def _active_snapshot(array: MdArray, now: float) -> tuple[list[Reading], GroupSpec]:
    members = _unique(array.members)
    roles = _roles(array, members)
    readings = [_reading(array, m, roles[m.dev], now) for m in members]
    by_role = [(r.id, roles[m.dev]) for r, m in zip(readings, members, strict=True)]
    holders = tuple(i for i, role in by_role if role in _SLOT_HOLDERS)
    total = array.raid_disks if array.raid_disks is not None else len(holders)
    group = GroupSpec(
        id=f"md/{array.name}",
        kind=GroupKind.RAID,
        required=required_members(array.level, total, array.copies),
        members=holders,
        spares=tuple(i for i, role in by_role if role in _STANDBY),
        total=total,
        detail=group_detail(array),
    )
    return readings, group


def snapshot(mdstat: Mdstat, now: float) -> Snapshot:
    """Readings and one RAID group per array (containers skipped), observed at ``now``."""
    readings: list[Reading] = []
    groups: list[GroupSpec] = []
    for array in mdstat.arrays:
        if array.is_container:
            continue
        build = _inactive_snapshot if array.state == "inactive" else _active_snapshot
        array_readings, group = build(array, now)
        readings.extend(array_readings)
        groups.append(group)
    return Snapshot(readings=tuple(readings), groups=tuple(groups))


# --- the collector -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MdstatCollector:
    """Reads the md status file; all interpretation is in the pure functions above."""

    name: str
    path: str = OPTIONS["path"].default

    def collect(self, now: float) -> Snapshot:
        """One poll. No file: not applicable (empty Snapshot). Other errors propagate."""
        try:
            text = Path(self.path).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return Snapshot()
        return snapshot(parse_mdstat(text), now)


def create(name: str, options: Mapping[str, Any]) -> MdstatCollector:
    """A collector from its configuration options (see OPTIONS)."""
    path = option_values(options, OPTIONS)["path"]
    if not isinstance(path, str):
        raise TypeError(f"{name}: option 'path' must be a string, not {type(path).__name__}")
    return MdstatCollector(name=name, path=path)
