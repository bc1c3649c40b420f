"""Linux bonding: each bond a redundancy group, its slaves the members.

Sources, under configurable roots so that fixture trees can stand in for the machine:

``/proc/net/bonding/<bond>``
    The bonding driver's status file (format: the kernel's
    ``Documentation/networking/bonding.rst``, section "Querying Bonding Configuration",
    printed by ``drivers/net/bonding/bond_procfs.c``): mode, currently active slave, MII
    status, 802.3ad ``Min links`` and active aggregator, and per slave its MII status,
    link failure count and aggregator id.
``/sys/class/net/bonding_masters`` and ``/sys/class/net/<bond>/bonding/*``
    The list of bonds and, per bond, ``mode``, ``slaves``, ``active_slave``,
    ``min_links``, ``mii_status``; per slave ``bonding_slave/mii_status``,
    ``bonding_slave/link_failure_count``, ``bonding_slave/state`` and ``operstate``
    (reached through ``<bond>/slave_<slave>``, ``<bond>/lower_<slave>`` or ``<slave>``).

The status file wins where both say something; sysfs fills what it lacks (and is all
there is when ``/proc/net/bonding`` is not readable).

Three layers, as in every collector: ``parse_proc_bonding`` and ``bond_from_sysfs`` are pure
parsers to frozen dataclasses, ``snapshot`` turns bonds into Readings and groups, and
``BondCollector`` does the reading.

How bonds become groups
-----------------------
* Group ``bond/<bond>`` (kind BOND); members ``bond/<bond>/<slave>`` (kind NIC).
* ``required`` comes from the mode through ``REQUIRED_BY_MODE``: every mode serves on one
  slave except 802.3ad, which drops the bond's carrier below ``min_links`` (at least 1).
* A slave's state comes from its MII status through ``SLAVE_STATE``. In 802.3ad a slave
  whose link is up but which sits in another aggregator than the active one carries no
  traffic: FAILED, with both aggregator ids in the detail.
* The active slave, the mode and the bond's own MII status go into the group detail; the
  link failure count is the slave reading's value.
* A bond whose own MII status is down (no carrier: e.g. 802.3ad without an active
  aggregator) serves nothing whatever its slaves say: the group carries the stated verdict
  FAILED, and the worse of it and the slave count wins.
* A bond without slaves (e.g. the ``bond0`` the driver creates when it loads) is not a
  redundancy group unless the configuration names it in ``bonds``; a named bond that is
  missing or has no slaves is a FAILED group.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
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
    Verdict,
    option_values,
)

OPTIONS: dict[str, Option] = {
    "sysfs": Option(str, "/sys", "Root of the sysfs tree (bonds under class/net)."),
    "procfs": Option(str, "/proc", "Root of the proc tree (status files under net/bonding)."),
    "bonds": Option(
        list,
        [],
        "Bond names to watch. Empty: every bond in bonding_masters that has slaves. A named "
        "bond that is missing or has no slaves is reported as a failed group.",
    ),
}


# --- the model -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slave:
    name: str
    mii_status: str | None = None  # up | going down | down | going back
    link_failures: int | None = None
    aggregator_id: int | None = None  # 802.3ad only
    operstate: str | None = None
    role: str | None = None  # sysfs bonding_slave/state: active | backup


@dataclass(frozen=True, slots=True)
class Bond:
    name: str
    mode: str | None = None  # the sysfs name: active-backup, 802.3ad, ...
    active_slave: str | None = None
    mii_status: str | None = None
    min_links: int | None = None
    active_aggregator: int | None = None  # 802.3ad: the active aggregator's id
    slaves: tuple[Slave, ...] = ()


# sysfs mode name -> (mode number, the status file's words for it; bond_mode_name())
MODES: Mapping[str, tuple[int, str]] = {
    "balance-rr": (0, "load balancing (round-robin)"),
    "active-backup": (1, "fault-tolerance (active-backup)"),
    "balance-xor": (2, "load balancing (xor)"),
    "broadcast": (3, "fault-tolerance (broadcast)"),
    "802.3ad": (4, "IEEE 802.3ad Dynamic link aggregation"),
    "balance-tlb": (5, "transmit load balancing"),
    "balance-alb": (6, "adaptive load balancing"),
}
_MODE_BY_WORDS = {words: name for name, (_, words) in MODES.items()}
_MODE_BY_NUMBER = {str(number): name for name, (number, _) in MODES.items()}


def _one_slave(bond: Bond) -> int:
    return 1


def _min_links(bond: Bond) -> int:
    return max(1, bond.min_links or 0)


# mode -> how many slaves must serve. balance-rr, balance-xor, broadcast, balance-tlb and
# balance-alb spread traffic over the slaves that are up and keep serving on one;
# active-backup uses one slave at a time; 802.3ad asserts carrier only while the active
# aggregator has at least min_links ports (bonding.rst, "min_links"). Unknown mode: one.
REQUIRED_BY_MODE: Mapping[str, Callable[[Bond], int]] = {
    "balance-rr": _one_slave,
    "active-backup": _one_slave,
    "balance-xor": _one_slave,
    "broadcast": _one_slave,
    "802.3ad": _min_links,
    "balance-tlb": _one_slave,
    "balance-alb": _one_slave,
}

# a slave's MII status (bond_slave_link_status()) -> state. "going down": the link is down
# but downdelay has not run out, the bond still sends on it; "going back": the link is up
# but updelay has not run out, the bond does not use it yet.
SLAVE_STATE: Mapping[str, State] = {
    "up": State.OK,
    "going down": State.WARNING,
    "down": State.FAILED,
    "going back": State.FAILED,
}


class BondError(ValueError):
    """A status file that is not the bonding driver's."""


# --- the status file -----------------------------------------------------------------------

_LINE = re.compile(r"(?P<key>[^:]+):\s*(?P<value>.*)")


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    match = re.match(r"\s*(-?[0-9]+)", text)
    return int(match[1]) if match else None


def _mode_from_words(words: str) -> str | None:
    # "fault-tolerance (active-backup) (fail_over_mac active)" -> active-backup
    for text, name in _MODE_BY_WORDS.items():
        if words.startswith(text):
            return name
    return None


def parse_proc_bonding(name: str, text: str) -> Bond:
    """``/proc/net/bonding/<name>`` -> Bond. Raises BondError when it is not that file."""
    head: dict[str, str] = {}
    slaves: list[dict[str, str]] = []
    section = "master"
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("Ethernet Channel Bonding Driver"):
            continue
        if line == "802.3ad info":
            section = "ad"
            continue
        if line == "Active Aggregator Info:":
            section = "active_agg"
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            continue  # "bond0 has no active aggregator", lacp pdu details, ...
        key, value = match["key"].strip(), match["value"].strip()
        if key == "Slave Interface":
            slaves.append({"name": value})
            section = "slave"
            continue
        if section == "slave":
            slaves[-1].setdefault(key, value)
        elif section == "active_agg":
            head.setdefault(f"active {key}", value)
        else:
            head.setdefault(key, value)
    if "Bonding Mode" not in head:
        raise BondError(f"{name}: no 'Bonding Mode:' line: not a bonding status file")
    active = head.get("Currently Active Slave")
    return Bond(
        name=name,
        mode=_mode_from_words(head["Bonding Mode"]),
        active_slave=None if active in (None, "None") else active,
        mii_status=head.get("MII Status"),
        min_links=_int(head.get("Min links")),
        active_aggregator=_int(head.get("active Aggregator ID")),
        slaves=tuple(
            Slave(
                name=s["name"],
                mii_status=s.get("MII Status"),
                link_failures=_int(s.get("Link Failure Count")),
                aggregator_id=_int(s.get("Aggregator ID")),
            )
            for s in slaves
        ),
    )


# --- sysfs ---------------------------------------------------------------------------------

# Reader: a path relative to class/net -> the file's text stripped, or None when unreadable.
Reader = Callable[[str], str | None]


def _slave_attr(read: Reader, bond: str, slave: str, attr: str) -> str | None:
    for base in (f"{bond}/slave_{slave}", f"{bond}/lower_{slave}", slave):
        value = read(f"{base}/{attr}")
        if value is not None:
            return value
    return None


def bond_from_sysfs(name: str, read: Reader) -> Bond:
    """A bond from ``class/net/<name>/bonding`` and its slaves' attributes."""
    mode_text = read(f"{name}/bonding/mode")  # "active-backup 1"
    mode = None
    if mode_text:
        first, *rest = mode_text.split()
        mode = first if first in MODES else _MODE_BY_NUMBER.get(rest[0] if rest else "")
    active = read(f"{name}/bonding/active_slave")
    slaves = []
    for slave in (read(f"{name}/bonding/slaves") or "").split():
        slaves.append(
            Slave(
                name=slave,
                mii_status=_slave_attr(read, name, slave, "bonding_slave/mii_status"),
                link_failures=_int(
                    _slave_attr(read, name, slave, "bonding_slave/link_failure_count")
                ),
                aggregator_id=_int(
                    _slave_attr(read, name, slave, "bonding_slave/ad_aggregator_id")
                ),
                operstate=_slave_attr(read, name, slave, "operstate"),
                role=_slave_attr(read, name, slave, "bonding_slave/state"),
            )
        )
    return Bond(
        name=name,
        mode=mode,
        active_slave=active or None,
        mii_status=read(f"{name}/bonding/mii_status"),
        min_links=_int(read(f"{name}/bonding/min_links")),
        active_aggregator=None,
        slaves=tuple(slaves),
    )


def merge(proc: Bond | None, sysfs: Bond | None) -> Bond | None:
    """The status file's view, with what only sysfs says filled in."""
    if proc is None or sysfs is None:
        return proc or sysfs
    by_name = {s.name: s for s in sysfs.slaves}
    slaves = []
    for s in proc.slaves:
        other = by_name.get(s.name)
        if other is not None:
            s = replace(
                s,
                mii_status=s.mii_status or other.mii_status,
                link_failures=s.link_failures
                if s.link_failures is not None
                else other.link_failures,
                aggregator_id=s.aggregator_id
                if s.aggregator_id is not None
                else other.aggregator_id,
                operstate=other.operstate,
                role=other.role,
            )
        slaves.append(s)
    return replace(
        proc,
        mode=proc.mode or sysfs.mode,
        active_slave=proc.active_slave or sysfs.active_slave,
        mii_status=proc.mii_status or sysfs.mii_status,
        min_links=proc.min_links if proc.min_links is not None else sysfs.min_links,
        slaves=tuple(slaves),
    )


# --- evaluation ----------------------------------------------------------------------------


def required_slaves(bond: Bond) -> int:
    return REQUIRED_BY_MODE.get(bond.mode or "", _one_slave)(bond)


def slave_state(bond: Bond, slave: Slave) -> tuple[State, str]:
    """A slave's state and the words behind it."""
    mii = slave.mii_status
    if mii is None:  # no bonding_slave directory: fall back to the interface's operstate
        state = {"up": State.OK, None: State.UNKNOWN}.get(slave.operstate, State.FAILED)
        words = f"operstate {slave.operstate or 'unknown'}"
    else:
        state = SLAVE_STATE.get(mii, State.UNKNOWN)
        words = f"MII {mii}"
    if (
        bond.mode == "802.3ad"
        and state.serving
        and bond.active_aggregator is not None
        and slave.aggregator_id is not None
        and slave.aggregator_id != bond.active_aggregator
    ):
        state = State.FAILED
        words += (
            f", in aggregator {slave.aggregator_id}, not the active aggregator "
            f"{bond.active_aggregator}: carries no traffic"
        )
    if slave.name == bond.active_slave:
        words += ", active slave"
    elif slave.role:
        words += f", {slave.role}"
    if slave.link_failures:
        words += f", {slave.link_failures} link failure(s)"
    return state, words


def group_detail(bond: Bond) -> str:
    words = [bond.mode or "mode unknown"]
    if bond.mode == "802.3ad":
        words.append(f"min_links {bond.min_links or 0}")
        if bond.active_aggregator is not None:
            words.append(f"active aggregator {bond.active_aggregator}")
    if bond.active_slave:
        words.append(f"active slave {bond.active_slave}")
    if bond.mii_status:
        words.append(f"MII {bond.mii_status}")
    if not bond.slaves:
        words.append("no slaves")
    return ", ".join(words)


def snapshot(bonds: Mapping[str, Bond | None], now: float, named: tuple[str, ...] = ()) -> Snapshot:
    """Readings and one group per bond. ``named`` bonds are reported even when missing."""
    readings: list[Reading] = []
    groups: list[GroupSpec] = []
    for name, bond in bonds.items():
        if bond is None or not bond.slaves:
            if name in named:
                groups.append(
                    GroupSpec(
                        id=f"bond/{name}",
                        kind=GroupKind.BOND,
                        required=1,
                        members=(),
                        total=1,
                        detail="no such bond" if bond is None else group_detail(bond),
                    )
                )
            continue
        ids = []
        for slave in bond.slaves:
            state, words = slave_state(bond, slave)
            cid = f"bond/{name}/{slave.name}"
            ids.append(cid)
            readings.append(
                Reading(
                    id=cid,
                    kind=Kind.NIC,
                    state=state,
                    observed_at=now,
                    detail=words,
                    value=None if slave.link_failures is None else float(slave.link_failures),
                    unit=None if slave.link_failures is None else "link failures",
                )
            )
        down = bond.mii_status == "down"  # the bond itself has no carrier: it serves nothing
        groups.append(
            GroupSpec(
                id=f"bond/{name}",
                kind=GroupKind.BOND,
                required=min(required_slaves(bond), len(ids)),
                members=tuple(ids),
                detail=group_detail(bond),
                stated=Verdict.FAILED if down else None,
                stated_reason="the bond's own MII status is down (no carrier)" if down else "",
            )
        )
    return Snapshot(tuple(readings), tuple(groups))


# --- the collector -------------------------------------------------------------------------


def _reader(root: Path) -> Reader:
    def read(rel: str) -> str | None:
        try:
            return (root / rel).read_text(encoding="utf-8", errors="replace").strip()
        except OSError:  # missing, or EINVAL from an attribute of a down interface
            return None

    return read


@dataclass(frozen=True, slots=True)
class BondCollector:
    name: str
    sysfs: str = "/sys"
    procfs: str = "/proc"
    bonds: tuple[str, ...] = ()

    def read_bonds(self) -> dict[str, Bond | None]:
        net = Path(self.sysfs) / "class" / "net"
        proc_dir = Path(self.procfs) / "net" / "bonding"
        read = _reader(net)
        names = list(self.bonds) or (read("bonding_masters") or "").split()
        if not self.bonds and proc_dir.is_dir():
            names += sorted(p.name for p in proc_dir.iterdir() if p.name not in names)
        found: dict[str, Bond | None] = {}
        for name in names:
            proc = None
            try:
                text = (proc_dir / name).read_text(encoding="utf-8", errors="replace")
            except OSError:
                pass
            else:
                proc = parse_proc_bonding(name, text)
            sysfs = bond_from_sysfs(name, read) if (net / name / "bonding").is_dir() else None
            found[name] = merge(proc, sysfs)
        return found

    def collect(self, now: float) -> Snapshot:
        """One poll. No bonding driver and no bonds named: not applicable (empty)."""
        return snapshot(self.read_bonds(), now, self.bonds)


def create(name: str, options: Mapping[str, Any]) -> BondCollector:
    o = option_values(options, OPTIONS)
    return BondCollector(name=name, sysfs=o["sysfs"], procfs=o["procfs"], bonds=tuple(o["bonds"]))
