"""ZFS pools and their vdevs from zpool status -p (OpenZFS, as zpool-status(8) documents it).

Three layers, each usable on its own:

``parse_status(text)``
    A pure parser from the command's text to frozen ``Pool``s, each with its vdev tree
    (``Vdev``: name, state, error counters, the note after them such as ``was /dev/sdb1``
    or ``(resilvering)``), its spares and the scan (scrub/resilver) line with its percent.

``snapshot(pools, now, device_of)``
    Readings and groups:

    * Group ``zfs/<pool>/<vdev>`` (kind RAID) per top-level vdev of the pool and of its
      ``logs``/``special``/``dedup`` classes (cache devices hold no data and form no group).
      Members are the vdev's slots, its direct children; ``required`` from the vdev type
      (``VDEV_LOSSES``: mirror all but one, raidzP / draidP: P, a plain disk none). The
      vdev's own state is the group's ``stated`` verdict (DEGRADED, FAULTED ...).
    * A slot held by a ``spare-N``/``replacing-N`` vdev is served by the child that is in
      sync (ONLINE, not resilvering); that child is the member, the others are readings
      only (the replaced disk) or spares (a disk still resilvering). A disk resilvering
      directly in a slot is a spare too, its slot counted as lost until it is in sync.
    * Hot spares of the pool (``spares`` section) are spares of every data vdev group:
      AVAIL adds no margin; INUSE shows up in the tree under ``spare-N`` as above.
    * Group ``zfs/<pool>`` (kind RAID): the pool needs all its top-level data vdevs, each a
      component ``zfs/<pool>/<vdev>``; the pool's state is the stated verdict.
    * Components ``zfs/<pool>/<vdev>/<disk>`` (kind DISK) with ``device`` set from the
      disk's name (``device_of``) so a SMART verdict on the disk counts against the vdev.

``ZfsCollector``
    Runs ``zpool status -p`` (argv, no shell). No ``zpool`` program: not applicable, said
    once in the log. ``no pools available``: an empty Snapshot.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
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
    disk_of,
    option_values,
)
from collectors.tool import NotApplicable, Runner, ToolError, ToolMissing, run_tool

OPTIONS: dict[str, Option] = {
    "path": Option(str, "zpool", "The zpool program (a name looked up in PATH, or a path)."),
    "command_timeout": Option(float, 20.0, "Seconds zpool status may take before it is killed."),
}


class ZfsError(ValueError):
    """The text is not zpool status output; names the line where there is one."""


# vdev/disk state (zpool-status(8), "Device states" in zpoolconcepts(7)) -> component state
STATES: Mapping[str, State] = {
    "ONLINE": State.OK,
    "DEGRADED": State.WARNING,  # serving, with errors or a lost child below it
    "FAULTED": State.FAILED,
    "UNAVAIL": State.FAILED,
    "OFFLINE": State.FAILED,  # taken offline by the administrator: not serving
    "REMOVED": State.ABSENT,  # physically removed
    "SPLIT": State.FAILED,
    "AVAIL": State.OK,  # hot spare, standing by
    "INUSE": State.OK,  # hot spare, in use
}

# vdev/pool state -> the verdict it states about its redundancy (None: states nothing bad)
VERDICTS: Mapping[str, Verdict | None] = {
    "ONLINE": None,
    "DEGRADED": Verdict.DEGRADED,
    "FAULTED": Verdict.FAILED,
    "UNAVAIL": Verdict.FAILED,
    "SUSPENDED": Verdict.FAILED,
    "OFFLINE": Verdict.FAILED,
    "REMOVED": Verdict.FAILED,
}

_TYPE = re.compile(r"(?P<type>mirror|raidz[123]?|draid[123]?)(?::[^-]*)?(?:-\d+)?")
_PARITY = re.compile(r"(?:raidz|draid)(?P<p>[123]?)")

# data classes of vdevs: the pool section itself and these headings
_DATA_CLASSES = {"", "logs", "special", "dedup"}
_ALL_CLASSES = _DATA_CLASSES | {"cache", "spares"}


def losses_tolerated(vdev: str, children: int) -> int:
    """How many children a vdev of this name's type can lose (0 for a plain disk)."""
    m = _TYPE.fullmatch(vdev)
    if m is None:
        return 0
    kind = m["type"]
    if kind == "mirror":
        return max(0, children - 1)
    parity = _PARITY.match(kind)
    return int(parity["p"] or 1) if parity else 0


@dataclass(frozen=True, slots=True)
class Vdev:
    name: str
    state: str
    read: int | None = None
    write: int | None = None
    cksum: int | None = None
    note: str = ""  # "was /dev/sdb1", "(resilvering)", "cannot open", "currently in use"
    children: tuple[Vdev, ...] = ()

    @property
    def resilvering(self) -> bool:
        return "(resilvering)" in self.note

    @property
    def in_sync(self) -> bool:
        return self.state == "ONLINE" and not self.resilvering and not self.children


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    state: str
    status: str = ""
    action: str = ""
    scan: str = ""
    scan_percent: float | None = None
    root: Vdev | None = None
    classes: Mapping[str, tuple[Vdev, ...]] = field(default_factory=dict)  # logs, cache ...
    spares: tuple[Vdev, ...] = ()
    errors: str = ""

    @property
    def resilvering(self) -> bool:
        return self.scan.startswith("resilver in progress")


_FIELD = re.compile(
    r"\s*(?P<key>pool|state|status|action|scan|config|errors|see|remove):\s?(?P<v>.*)"
)
_HEADER = re.compile(r"\s*NAME\s+STATE\s+READ\s+WRITE\s+CKSUM\s*")
_ROW = re.compile(
    r"(?P<indent>\s*)(?P<name>\S+)\s+(?P<state>[A-Z]+)"
    r"(?:\s+(?P<read>[0-9.]+[KMGTPE]?)\s+(?P<write>[0-9.]+[KMGTPE]?)\s+(?P<cksum>[0-9.]+[KMGTPE]?))?"
    r"(?:\s+(?P<note>.*?))?\s*"
)
_PERCENT = re.compile(r"(?P<p>[0-9]+(?:\.[0-9]+)?)% done")
_ERRS = re.compile(r"[0-9]+")


def _count(text: str | None) -> int | None:
    return int(text) if text is not None and _ERRS.fullmatch(text) else None


@dataclass
class _Node:
    depth: int
    row: dict[str, Any]
    children: list[_Node] = field(default_factory=list)

    def freeze(self) -> Vdev:
        r = self.row
        return Vdev(
            name=r["name"],
            state=r["state"],
            read=_count(r["read"]),
            write=_count(r["write"]),
            cksum=_count(r["cksum"]),
            note=(r["note"] or "").strip(),
            children=tuple(c.freeze() for c in self.children),
        )


def _tree(rows: list[tuple[int, dict[str, Any]]]) -> list[_Node]:
    """Rows with their indentation -> the forest they describe."""
    roots: list[_Node] = []
    stack: list[_Node] = []
    for depth, row in rows:
        node = _Node(depth, row)
        while stack and stack[-1].depth >= depth:
            stack.pop()
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)
    return roots


def _config(pool_name: str, lines: list[tuple[int, str]]) -> dict[str, Any]:
    """The config table -> root vdev, classes (logs, cache ...) and spares."""
    rows: list[tuple[int, dict[str, Any]]] = []
    sections: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    current = rows
    for number, line in lines:
        if not line.strip() or _HEADER.fullmatch(line):
            continue
        stripped = line.strip()
        if stripped in _ALL_CLASSES:
            current = sections.setdefault(stripped, [])
            continue
        m = _ROW.fullmatch(line)
        if m is None:
            raise ZfsError(f"line {number}: not a vdev row: {line!r}")
        current.append((len(m["indent"].expandtabs(8)), m.groupdict()))
    forest = _tree(rows)
    if not forest or forest[0].row["name"] != pool_name:
        raise ZfsError(f"pool {pool_name}: its config does not start with the pool's own row")
    classes = {
        name: tuple(n.freeze() for n in _tree(r))
        for name, r in sections.items()
        if name != "spares"
    }
    spares = tuple(n.freeze() for n in _tree(sections.get("spares", [])))
    return {"root": forest[0].freeze(), "classes": classes, "spares": spares}


def _pool(block: list[tuple[int, str]]) -> Pool:
    fields: dict[str, str] = {}
    config: list[tuple[int, str]] = []
    key = ""
    for number, line in block:
        m = _FIELD.fullmatch(line)
        if m and (key != "config" or m["key"] == "errors"):
            key = m["key"]
            fields[key] = m["v"].strip()
        elif key == "config":
            config.append((number, line))
        elif key and line.strip():
            fields[key] = f"{fields.get(key, '')} {line.strip()}".strip()
    if not fields.get("pool") or not fields.get("state"):
        raise ZfsError(f"line {block[0][0]}: a pool block without 'pool:' and 'state:'")
    scan = fields.get("scan", "")
    percent = _PERCENT.search(scan)
    return Pool(
        name=fields["pool"],
        state=fields["state"],
        status=fields.get("status", ""),
        action=fields.get("action", ""),
        scan=scan,
        scan_percent=float(percent["p"]) if percent else None,
        errors=fields.get("errors", ""),
        **(_config(fields["pool"], config) if config else {}),
    )


def parse_status(text: str) -> tuple[Pool, ...]:
    """Parse ``zpool status [-p]``. "no pools available" is an empty answer."""
    if text.strip() == "no pools available":
        return ()
    blocks: list[list[tuple[int, str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        m = _FIELD.fullmatch(line)
        if m and m["key"] == "pool":
            blocks.append([])
        if blocks:
            blocks[-1].append((number, line))
        elif line.strip():
            raise ZfsError(f"line {number}: expected 'pool:', got {line!r}")
    if not blocks:
        raise ZfsError("no 'pool:' line: not zpool status output")
    return tuple(_pool(b) for b in blocks)


# --- readings and groups -------------------------------------------------------------------

DeviceOf = Callable[[str, str], str]  # (disk name, its note) -> disk name for SMART matching


def default_device(name: str, note: str) -> str:
    """``sdb1`` -> ``sdb``; a missing disk named by its guid -> the disk of ``was /dev/...``."""
    if note.startswith("was "):
        name = os.path.basename(note.split()[1])
    elif name.isdigit():
        return ""
    return disk_of(name)


def _disk_reading(pool: Pool, top: str, disk: Vdev, now: float, device_of: DeviceOf) -> Reading:
    words = [disk.state]
    if disk.note:
        words.append(disk.note)
    errors = [
        f"{k} {v}"
        for k, v in (("read", disk.read), ("write", disk.write), ("cksum", disk.cksum))
        if v
    ]
    if errors:
        words.append("errors: " + ", ".join(errors))
    percent = pool.scan_percent if disk.resilvering and pool.resilvering else None
    if percent is not None:
        words.append(f"resilver {percent:g}%")
    return Reading(
        id=f"zfs/{pool.name}/{top}/{disk.name}",
        kind=Kind.DISK,
        state=STATES.get(disk.state, State.UNKNOWN),
        observed_at=now,
        detail=", ".join(words),
        value=percent,
        unit=None if percent is None else "%",
        device=device_of(disk.name, disk.note),
    )


def _leaves(vdev: Vdev) -> Iterable[Vdev]:
    if not vdev.children:
        yield vdev
    for child in vdev.children:
        yield from _leaves(child)


def _slot(child: Vdev) -> tuple[Vdev | None, list[Vdev]]:
    """A slot's member (the disk serving it, else the first) and its standby disks."""
    leaves = list(_leaves(child))
    if not child.children:
        return (None, leaves) if child.resilvering else (child, [])
    in_sync = [d for d in leaves if d.in_sync]
    member = in_sync[0] if in_sync else leaves[0]
    standby = [d for d in leaves if d is not member and d.resilvering]
    return member, standby


def _vdev_group(
    pool: Pool, top: Vdev, spares: tuple[str, ...], now: float, device_of: DeviceOf
) -> tuple[list[Reading], GroupSpec]:
    # a plain disk as a top-level vdev: one slot, no redundancy
    slots = list(top.children) if top.children else [top]
    readings = [_disk_reading(pool, top.name, d, now, device_of) for s in slots for d in _leaves(s)]
    members, standby = [], []
    for s in slots:
        member, waiting = _slot(s)
        if member is not None:
            members.append(f"zfs/{pool.name}/{top.name}/{member.name}")
        standby += [f"zfs/{pool.name}/{top.name}/{d.name}" for d in waiting]
    total = len(slots)
    detail = f"{top.name} {top.state}"
    if pool.resilvering and pool.scan_percent is not None:
        detail += f", resilver {pool.scan_percent:g}%"
    verdict = VERDICTS.get(top.state)
    group = GroupSpec(
        id=f"zfs/{pool.name}/{top.name}",
        kind=GroupKind.RAID,
        required=max(1, total - losses_tolerated(top.name, total)),
        members=tuple(members),
        spares=tuple(standby) + spares,
        total=total,
        detail=detail,
        stated=verdict,
        stated_reason=top.state if verdict else "",
    )
    return readings, group


def _vdev_reading(pool: Pool, top: Vdev, now: float) -> Reading:
    return Reading(
        id=f"zfs/{pool.name}/{top.name}",
        kind=Kind.OTHER,
        state=STATES.get(top.state, State.UNKNOWN),
        observed_at=now,
        detail=" ".join(w for w in (top.state, top.note) if w),
    )


def _spare_reading(pool: Pool, spare: Vdev, now: float, device_of: DeviceOf) -> Reading:
    return Reading(
        id=f"zfs/{pool.name}/spares/{spare.name}",
        kind=Kind.DISK,
        state=STATES.get(spare.state, State.UNKNOWN),
        observed_at=now,
        detail=" ".join(w for w in (spare.state, spare.note) if w),
        device=device_of(spare.name, spare.note),
    )


def pool_snapshot(pool: Pool, now: float, device_of: DeviceOf = default_device) -> Snapshot:
    readings: list[Reading] = []
    groups: list[GroupSpec] = []
    if pool.root is None:
        verdict = VERDICTS.get(pool.state)
        groups.append(
            GroupSpec(
                f"zfs/{pool.name}",
                GroupKind.RAID,
                0,
                (),
                stated=verdict,
                stated_reason=pool.state if verdict else "",
            )
        )
        return Snapshot(groups=tuple(groups))
    spare_readings = [_spare_reading(pool, s, now, device_of) for s in pool.spares]
    readings += spare_readings
    available = tuple(
        r.id for r, s in zip(spare_readings, pool.spares, strict=True) if s.state == "AVAIL"
    )
    data_tops = list(pool.root.children)
    for name in ("logs", "special", "dedup"):
        tops = pool.classes.get(name, ())
        for top in tops:
            r, g = _vdev_group(pool, top, (), now, device_of)
            readings += r
            groups.append(g)
    for top in data_tops:
        r, g = _vdev_group(pool, top, available, now, device_of)
        readings += r
        groups.append(g)
        readings.append(_vdev_reading(pool, top, now))
    for cache in pool.classes.get("cache", ()):
        for d in _leaves(cache):
            readings.append(_disk_reading(pool, "cache", d, now, device_of))
    verdict = VERDICTS.get(pool.state)
    words = " ".join(w for w in (pool.state, pool.root.note) if w)
    groups.append(
        GroupSpec(
            id=f"zfs/{pool.name}",
            kind=GroupKind.RAID,
            required=len(data_tops),
            members=tuple(f"zfs/{pool.name}/{t.name}" for t in data_tops),
            detail=f"pool {words}" + (f"; {pool.scan}" if pool.scan else ""),
            stated=verdict,
            stated_reason=words if verdict else "",
        )
    )
    return Snapshot(readings=tuple(readings), groups=tuple(groups))


def snapshot(pools: Iterable[Pool], now: float, device_of: DeviceOf = default_device) -> Snapshot:
    readings: list[Reading] = []
    groups: list[GroupSpec] = []
    for pool in pools:
        s = pool_snapshot(pool, now, device_of)
        readings += s.readings
        groups += s.groups
    return Snapshot(readings=tuple(readings), groups=tuple(groups))


# --- the collector -------------------------------------------------------------------------

_LINK_DIRS = ("/dev/disk/by-id", "/dev/disk/by-path", "/dev/disk/by-vdev", "/dev/disk/by-partuuid")


def resolving_device(name: str, note: str) -> str:
    """Like ``default_device``, but a by-id/by-path name is followed to its kernel disk."""
    base = os.path.basename(note.split()[1]) if note.startswith("was ") else name
    for folder in _LINK_DIRS:
        link = os.path.join(folder, base)
        if os.path.islink(link):
            return disk_of(os.path.realpath(link))
    return default_device(name, note)


@dataclass(slots=True)
class ZfsCollector:
    name: str
    path: str = OPTIONS["path"].default
    command_timeout: float = OPTIONS["command_timeout"].default
    run: Runner = run_tool
    device_of: DeviceOf = resolving_device
    missing: NotApplicable = field(init=False)

    def __post_init__(self) -> None:
        self.missing = NotApplicable(self.name)

    def collect(self, now: float) -> Snapshot:
        argv = (self.path, "status", "-p")
        try:
            result = self.run(argv, self.command_timeout)
        except ToolMissing as e:
            self.missing.note(e)
            return Snapshot()
        self.missing.reset()
        text = result.stdout if result.stdout.strip() else result.stderr
        if not text.strip():
            raise ToolError(f"{' '.join(argv)}: no output (exit status {result.returncode})")
        return snapshot(parse_status(text), now, self.device_of)


def create(name: str, options: Mapping[str, Any]) -> ZfsCollector:
    """A collector from its configuration options (see OPTIONS)."""
    o = option_values(options, OPTIONS)
    return ZfsCollector(
        name=name,
        path=o["path"] or OPTIONS["path"].default,
        command_timeout=o["command_timeout"] or OPTIONS["command_timeout"].default,
    )
