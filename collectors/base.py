"""What every collector produces: Readings and the redundancy groups it discovered.

This module is the whole contract between the collectors and the agent. It imports
nothing else of ours, and collectors import nothing of ours but this module.

A collector module offers ``OPTIONS`` (its configuration keys, as ``Option``s), a
``create(name, options)`` that returns a ``Collector``, and optionally
``UNIQUE_ACROSS_INSTANCES`` (keys two instances may not share). Libraries that talk to
devices are imported inside the collector, never at module level, so a type that is
not configured costs nothing.
"""

from __future__ import annotations

import enum
import errno
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol


class State(enum.StrEnum):
    """What a source says about one component (and our conclusion about it, later)."""

    OK = "ok"
    WARNING = "warning"  # serving, but something is off (predictive failure, threshold)
    FAILED = "failed"  # not serving
    ABSENT = "absent"  # the slot is empty
    UNKNOWN = "unknown"  # the source could not tell (no answer, stale, unparsable)

    @property
    def serving(self) -> bool:
        """True when the component still does its job."""
        return self in (State.OK, State.WARNING)


class Kind(enum.StrEnum):
    """Component kinds."""

    PSU = "psu"
    FAN = "fan"
    DISK = "disk"
    NIC = "nic"
    SWITCH = "switch"
    PORT = "port"
    TEMPERATURE = "temperature"
    VOLTAGE = "voltage"
    OTHER = "other"


class GroupKind(enum.StrEnum):
    """Redundancy group kinds."""

    POWER = "power"
    COOLING = "cooling"
    RAID = "raid"
    BOND = "bond"
    SWITCHES = "switches"
    CUSTOM = "custom"


class Verdict(enum.StrEnum):
    """A device's own statement about a group's redundancy (an IPMI redundancy sensor)."""

    REDUNDANT = "redundant"
    DEGRADED = "degraded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Reading:
    """What a device said about one component at one moment."""

    id: str  # stable component id, e.g. "md/md0/sdb1"
    kind: Kind
    state: State
    observed_at: float  # UNIX time, seconds
    detail: str = ""  # the source's own words
    value: float | None = None
    unit: str | None = None
    # the disk this component lives on, as ``disk_of`` names it ("sdb", "nvme0", "megaraid,4")
    device: str = ""
    # this reading judges the whole disk (SMART): its WARNING/FAILED then applies to every
    # component with the same ``device`` (an md member, a controller drive, a ZFS disk)
    whole_disk: bool = False


# kernel block device names -> the whole disk: partitions and NVMe namespaces collapse
_DISK_NAMES = (
    (re.compile(r"(nvme[0-9]+)n[0-9]+(?:p[0-9]+)?"), r"\1"),
    (re.compile(r"(mmcblk[0-9]+)(?:p[0-9]+)?"), r"\1"),
    (re.compile(r"((?:s|v|xv|h)d[a-z]+)[0-9]*"), r"\1"),
)


def disk_of(name: str) -> str:
    """The whole-disk name of a block device or partition: ``/dev/sdb1`` -> ``sdb``.

    NVMe namespaces and their partitions name the controller (``nvme0n1p2`` -> ``nvme0``),
    as ``smartctl --scan`` does. Names of another form are returned without ``/dev/``.
    """
    base = name.removeprefix("/dev/")
    for pattern, disk in _DISK_NAMES:
        if pattern.fullmatch(base):
            return pattern.sub(disk, base)
    return base


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """A redundancy group as discovered by a collector (or declared in config).

    ``members`` are the component ids that fill the group's slots; ``total`` is the
    number of slots (defaults to the number of members; a larger value counts the
    unfilled slots as lost). ``spares`` are standby components that add no margin
    until they become members. ``required`` is how many slots must be serving.
    ``stated`` is what the device itself says of the group's redundancy, if it says
    anything (``stated_reason`` in its words); the worse of it and the counts wins.
    """

    id: str
    kind: GroupKind
    required: int
    members: tuple[str, ...]
    spares: tuple[str, ...] = ()
    total: int | None = None
    detail: str = ""
    stated: Verdict | None = None
    stated_reason: str = ""

    @property
    def slots(self) -> int:
        return len(self.members) if self.total is None else self.total


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one poll of one collector found."""

    readings: tuple[Reading, ...] = ()
    groups: tuple[GroupSpec, ...] = ()


def prefixed(snapshot: Snapshot, prefix: str) -> Snapshot:
    """The same snapshot with every component and group id under ``prefix/``."""
    if not prefix:
        return snapshot

    def p(cid: str) -> str:
        return f"{prefix}/{cid}"

    readings = tuple(replace(r, id=p(r.id)) for r in snapshot.readings)
    groups = tuple(
        replace(g, id=p(g.id), members=tuple(map(p, g.members)), spares=tuple(map(p, g.spares)))
        for g in snapshot.groups
    )
    return Snapshot(readings, groups)


@dataclass(frozen=True, slots=True)
class Option:
    """One configuration key: type, default, and the sentence the sample config shows.

    A required key has no default; ``example`` is what the sample config shows for it.
    """

    type: type
    default: Any
    help: str
    required: bool = False
    choices: tuple[Any, ...] = ()
    example: Any = None


def option_values(options: Mapping[str, Any], declared: Mapping[str, Option]) -> dict[str, Any]:
    """``options`` with every declared key present, a missing one at its default.

    The agent's configuration hands ``create`` every key already; tools and tests may not.
    """
    return {key: options.get(key, opt.default) for key, opt in declared.items()}


class Collector(Protocol):
    """A collector instance. ``collect`` may block (it runs in its own thread) or be a coroutine."""

    name: str

    def collect(self, now: float) -> Snapshot: ...


def read_secret(path: str) -> str:
    """The first line of a secrets file, which must not be readable by group or others.

    Raises ``PermissionError`` (naming the file and its mode, never its content) when the
    file is open to others, ``OSError`` when it cannot be read.
    """
    if not path:
        return ""
    st = os.stat(path)
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode = stat.S_IMODE(st.st_mode)
        raise PermissionError(
            errno.EACCES, f"{path} is readable by others (mode {mode:04o}); make it 0600 or 0400"
        )
    with open(path, encoding="utf-8") as fh:
        return fh.readline().rstrip("\r\n")


def secret_option(collector: str, key: str, path: str) -> str:
    """``read_secret(path)`` for a collector's ``key``; ValueError naming both when it fails.

    The message carries the OS's reason or the mode refusal, never the file's content.
    """
    try:
        return read_secret(path)
    except OSError as e:
        raise ValueError(f"collector {collector}: {key}: {e.strerror or e}") from None
