"""Plain NICs declared as a redundancy group: link state from sysfs.

For uplinks that are redundant without a bond (two routed uplinks, ECMP, a storage
network with multipath), the configuration names the interfaces and how many must be up.
One ``[[collectors.nic]]`` entry is one group ``nic/<name>`` (or the id given in
``group``); its members are ``nic/<ifname>`` (kind NIC).

A link's state comes from ``/sys/class/net/<ifname>/operstate`` (RFC 2863 operational
state, see the kernel's ``Documentation/networking/operstates.rst``) through
``OPERSTATE``; where the driver reports ``unknown`` the ``carrier`` file decides. An
interface that is administratively down has no readable carrier (EINVAL) and reads down.
A named interface that does not exist is ABSENT: it counts as lost.

``parse_link`` is pure; ``NicCollector`` reads the files under a configurable sysfs root.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    option_values,
)

OPTIONS: dict[str, Option] = {
    "interfaces": Option(
        list,
        None,
        "The interfaces that back each other up, e.g. the two uplinks of a host.",
        required=True,
        example=["eno1", "eno2"],
    ),
    "required": Option(int, 1, "How many of the interfaces must have a link."),
    "group": Option(str, "", "Group id. Empty: nic/<collector name>."),
    "sysfs": Option(str, "/sys", "Root of the sysfs tree (interfaces under class/net)."),
}

# operstate -> state; None: the driver does not track it, the carrier decides
OPERSTATE: Mapping[str, State | None] = {
    "up": State.OK,
    "dormant": State.WARNING,  # up, waiting for an external event (802.1X, ...)
    "testing": State.WARNING,
    "down": State.FAILED,
    "lowerlayerdown": State.FAILED,
    "notpresent": State.ABSENT,
    "unknown": None,
}
CARRIER: Mapping[str, State] = {"1": State.OK, "0": State.FAILED}


@dataclass(frozen=True, slots=True)
class Link:
    """What sysfs says of one interface; ``exists`` False when it has no directory."""

    name: str
    exists: bool
    operstate: str | None = None
    carrier: str | None = None  # None: unreadable (administratively down)
    speed: str | None = None


def parse_link(link: Link) -> tuple[State, str]:
    """An interface's state and the words behind it."""
    if not link.exists:
        return State.ABSENT, "no such interface"
    oper = (link.operstate or "unknown").lower()
    state = OPERSTATE.get(oper, State.UNKNOWN)
    words = f"operstate {oper}"
    if state is None or oper == "unknown":
        if link.carrier is None:
            state, words = State.FAILED, f"{words}, administratively down (no carrier file)"
        else:
            state = CARRIER.get(link.carrier, State.UNKNOWN)
            words = f"{words}, carrier {link.carrier}"
    elif link.carrier == "0" and state is State.OK:
        state, words = State.FAILED, f"{words}, carrier 0"
    if state is State.OK and link.speed and link.speed.isdigit() and int(link.speed) > 0:
        words = f"{words}, {link.speed} Mb/s"
    return state, words


def snapshot(group_id: str, required: int, links: tuple[Link, ...], now: float) -> Snapshot:
    readings = []
    for link in links:
        state, words = parse_link(link)
        readings.append(
            Reading(
                id=f"nic/{link.name}", kind=Kind.NIC, state=state, observed_at=now, detail=words
            )
        )
    members = tuple(r.id for r in readings)
    group = GroupSpec(
        id=group_id,
        kind=GroupKind.BOND,
        required=min(required, len(members)),
        members=members,
        detail=f"{len(members)} interface(s), {required} required",
    )
    return Snapshot(tuple(readings), (group,))


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class NicCollector:
    name: str
    interfaces: tuple[str, ...]
    required: int = 1
    group: str = ""
    sysfs: str = "/sys"

    def link(self, ifname: str) -> Link:
        d = Path(self.sysfs) / "class" / "net" / ifname
        if not d.is_dir():
            return Link(ifname, exists=False)
        return Link(
            ifname,
            exists=True,
            operstate=_read(d / "operstate"),
            carrier=_read(d / "carrier"),
            speed=_read(d / "speed"),
        )

    def owns(self, device: str) -> bool:
        """Whether an event about ``device`` (an interface name) concerns this group."""
        return device in self.interfaces

    def collect(self, now: float) -> Snapshot:
        links = tuple(self.link(i) for i in self.interfaces)
        return snapshot(self.group or f"nic/{self.name}", self.required, links, now)


def create(name: str, options: Mapping[str, Any]) -> NicCollector:
    o = option_values(options, OPTIONS)
    interfaces = tuple(o["interfaces"] or ())
    required = int(o["required"])
    if not interfaces:
        raise ValueError(f"{name}: interfaces: expected at least one interface name")
    if len(set(interfaces)) != len(interfaces):
        raise ValueError(f"{name}: interfaces: an interface is listed twice")
    if not 1 <= required <= len(interfaces):
        raise ValueError(
            f"{name}: required: expected 1 to {len(interfaces)} (the number of interfaces), "
            f"got {required}"
        )
    return NicCollector(
        name=name,
        interfaces=interfaces,
        required=required,
        group=o["group"],
        sysfs=o["sysfs"],
    )
