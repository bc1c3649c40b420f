"""What every RAID controller tool's parser produces, and how it becomes Readings and groups.

The vendor parsers (``storcli``, ``megacli``, ``ssacli``, ``arcconf``, ``sasircu``) turn a
tool's text into these frozen dataclasses, each vendor word mapped through a table of its
own. ``snapshot`` turns them into components and redundancy groups the same way for all:

* Controller ``raid/<ctl>`` (kind OTHER): the controller's own status; a failed or missing
  cache battery/capacitor or a disabled cache makes it a WARNING (data is still served,
  but writes are no longer protected), never FAILED.
* Drive ``raid/<ctl>/pd/<address>`` (kind DISK), address in the tool's words
  (``252:1``, ``1I:1:3``, ``0,1``). A rebuilding drive carries the progress as its value.
* Virtual drive (logical drive, IR volume) -> group ``raid/<ctl>/vd<id>`` (kind RAID).
  Members are the drives of its drive group/array that hold a slot (online, failed,
  offline, missing); drives being rebuilt and hot spares are ``spares`` (no margin until
  they are in sync). ``total`` is the number of slots where the tool says it, so a
  missing drive the tool does not list still counts as lost. ``required`` comes from
  the RAID level (``LOSSES_TOLERATED``). The tool's own verdict on the virtual drive
  (Optimal / Degraded / Offline ...) is the group's ``stated`` verdict; the worse of it
  and the member count wins. A tool that lists no drives for a virtual drive (short
  ``ssacli`` status output) yields a group without members: its stated verdict decides.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from collectors.base import GroupKind, GroupSpec, Kind, Reading, Snapshot, State, Verdict


class RaidError(ValueError):
    """The text is not what the tool prints; names the line where there is one."""


class Role(enum.StrEnum):
    """What a physical drive does."""

    MEMBER = "member"  # holds a slot of a virtual drive (in sync, or failed/missing)
    REBUILDING = "rebuilding"  # being rebuilt into a slot: not yet serving
    SPARE = "spare"  # hot spare: global, or dedicated to one drive group
    OTHER = "other"  # unconfigured, JBOD, pass-through: not part of a group


@dataclass(frozen=True, slots=True)
class Drive:
    address: str  # in the tool's words: "252:1", "1I:1:3", "0,1", "ld0-g1s1"
    state: State
    role: Role
    words: str  # the tool's state text, e.g. "Onln", "Online, Spun Up"
    group: str | None = None  # drive group / array / logical device it belongs to
    progress: float | None = None  # rebuild percent
    device: str = ""  # the disk name smartctl would use (megaraid,<device id>)


@dataclass(frozen=True, slots=True)
class VirtualDrive:
    id: str  # "0", "239"
    level: str  # normalised: raid0, raid1, raid5, raid6, raid10, raid50, raid60, raid1e ...
    words: str  # the tool's state text
    verdict: Verdict | None  # the tool's state mapped; None when we do not know the word
    group: str | None = None  # drive group / array the VD lives on
    slots: int | None = None  # number of drives, when the tool says it
    task: str = ""  # a running task the tool names: "rebuild", "recovering"
    percent: float | None = None  # its progress


@dataclass(frozen=True, slots=True)
class Battery:
    """A cache battery/capacitor or the cache module itself."""

    id: str  # "bbu", "cache"
    state: State
    words: str


@dataclass(frozen=True, slots=True)
class Controller:
    id: str  # "c0", "slot0"
    model: str
    state: State
    words: str
    vds: tuple[VirtualDrive, ...] = ()
    drives: tuple[Drive, ...] = ()
    batteries: tuple[Battery, ...] = ()


def lookup(table: Mapping[str, Any], words: str, default: Any) -> Any:
    """A vendor word's meaning: exact (case-insensitive) match first, then the longest prefix."""
    key = words.strip().lower()
    if key in table:
        return table[key]
    for prefix in sorted(table, key=len, reverse=True):
        if prefix and key.startswith(prefix):
            return table[prefix]
    return default


# --- RAID levels ---------------------------------------------------------------------------


def _none(slots: int) -> int:
    return 0


def _one(slots: int) -> int:
    return 1


def _two(slots: int) -> int:
    return 2


# How many slots a level can always lose and keep serving (a nested level: its worst case).
LOSSES_TOLERATED: Mapping[str, Callable[[int], int]] = {
    "raid0": _none,
    "raid00": _none,
    "spanned": _none,
    "simple": _none,
    "jbod": _none,
    "raid1": _one,  # controllers mirror pairs: a "RAID1" of more drives is 1E/10
    "raid1e": _one,
    "raid10": _one,
    "raid1adm": _two,  # triple mirror
    "raid10adm": _two,
    "raid5": _one,
    "raid50": _one,
    "raid6": _two,
    "raid60": _two,
}


def required(level: str, slots: int) -> int:
    """How many of ``slots`` must serve; unknown levels tolerate no loss."""
    if slots <= 0:
        return 0
    tolerated = LOSSES_TOLERATED.get(level, _none)(slots)
    return max(1, slots - max(0, tolerated))


# --- the snapshot --------------------------------------------------------------------------

_BATTERY_WORST = {State.FAILED: State.WARNING, State.ABSENT: State.WARNING}
_SEVERITY = {State.OK: 0, State.ABSENT: 1, State.WARNING: 2, State.UNKNOWN: 3, State.FAILED: 4}


def controller_reading(ctl: Controller, now: float) -> Reading:
    """The controller: its status, worsened to WARNING by a failed battery or cache."""
    states = [ctl.state]
    words = [ctl.words]
    for b in ctl.batteries:
        states.append(_BATTERY_WORST.get(b.state, b.state))
        words.append(f"{b.id}: {b.words}")
    state = max(states, key=_SEVERITY.__getitem__)
    return Reading(
        id=f"raid/{ctl.id}",
        kind=Kind.OTHER,
        state=state,
        observed_at=now,
        detail="; ".join(w for w in [ctl.model, *words] if w),
    )


def drive_id(ctl: Controller, drive: Drive) -> str:
    return f"raid/{ctl.id}/pd/{drive.address}"


def _with_vd_progress(ctl: Controller, drive: Drive) -> Drive:
    """A rebuilding drive without progress of its own shows its virtual drive's."""
    if drive.role is not Role.REBUILDING or drive.progress is not None:
        return drive
    for vd in ctl.vds:
        if vd.group is not None and vd.group == drive.group and vd.percent is not None:
            return replace(drive, progress=vd.percent)
    return drive


def drive_reading(ctl: Controller, drive: Drive, now: float) -> Reading:
    drive = _with_vd_progress(ctl, drive)
    words = drive.words if drive.role is Role.OTHER else f"{drive.words} ({drive.role})"
    if drive.progress is not None:
        words = f"{words}, {drive.progress:g}%"
    return Reading(
        id=drive_id(ctl, drive),
        kind=Kind.DISK,
        state=drive.state,
        observed_at=now,
        detail=words,
        value=drive.progress,
        unit=None if drive.progress is None else "%",
        device=drive.device,
    )


def _group(ctl: Controller, vd: VirtualDrive) -> GroupSpec:
    def on_vd(d: Drive) -> bool:
        return vd.group is not None and d.group == vd.group

    members = tuple(drive_id(ctl, d) for d in ctl.drives if d.role is Role.MEMBER and on_vd(d))
    rebuilding = tuple(
        drive_id(ctl, d) for d in ctl.drives if d.role is Role.REBUILDING and on_vd(d)
    )
    spares = tuple(
        drive_id(ctl, d)
        for d in ctl.drives
        if d.role is Role.SPARE and (d.group is None or on_vd(d))
    )
    slots = vd.slots if vd.slots is not None else len(members) + len(rebuilding)
    detail = " ".join(w for w in (vd.level, vd.words) if w)
    return GroupSpec(
        id=f"raid/{ctl.id}/vd{vd.id}",
        kind=GroupKind.RAID,
        required=required(vd.level, slots) if members else 0,
        members=members,
        spares=rebuilding + spares,
        total=slots if members else None,
        detail=f"{detail}, {vd.task} {vd.percent:g}%" if vd.percent is not None else detail,
        stated=vd.verdict,
        stated_reason=vd.words,
    )


def snapshot(controllers: Iterable[Controller], now: float) -> Snapshot:
    readings: list[Reading] = []
    groups: list[GroupSpec] = []
    for ctl in controllers:
        readings.append(controller_reading(ctl, now))
        readings.extend(drive_reading(ctl, d, now) for d in ctl.drives)
        groups.extend(_group(ctl, vd) for vd in ctl.vds)
    return Snapshot(readings=tuple(readings), groups=tuple(groups))


def summary(controllers: Iterable[Controller]) -> dict[str, Any]:
    """A compact view for ground-truth tables: states per controller, VD, battery; drive counts."""
    out: dict[str, Any] = {"controllers": {}, "vds": {}, "batteries": {}, "drives": {}}
    for ctl in controllers:
        out["controllers"][ctl.id] = ctl.state.value
        for vd in ctl.vds:
            verdict = vd.verdict.value if vd.verdict is not None else "?"
            out["vds"][f"{ctl.id}/vd{vd.id}"] = f"{vd.level} {verdict}"
        for b in ctl.batteries:
            out["batteries"][f"{ctl.id}/{b.id}"] = b.state.value
        for d in ctl.drives:
            key = f"{d.state.value} {d.role.value}"
            out["drives"][key] = out["drives"].get(key, 0) + 1
    return out
