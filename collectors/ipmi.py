"""IPMI: power supplies, fans, redundancy sensors, temperatures and voltages from a BMC.

Out-of-band over RMCP+ (lanplus) or in-band through the local ``/dev/ipmi0``, with
pyghmi. Three layers:

``SensorView`` and ``snapshot(views, now, layout)``
    Pure. A ``SensorView`` is what one sensor said, decoded by pyghmi (value, words,
    health) plus the facts of its SDR (IPMI sensor type, event/reading type, asserted
    state offsets). Declarative tables turn it into a component state; PSUs and fans
    become the ``power`` and ``cooling`` redundancy groups; redundancy sensors (event/
    reading type 0x0B) become the group's stated verdict.

``decode_sel_entry(data)``
    Pure. One System Event Log record.

``IpmiCollector``
    The I/O: one session per BMC, kept and re-established after a failure; the SDR read
    once and re-read when the BMC says its repository changed; the SEL read incrementally
    by record id; a circuit breaker that backs off a BMC that keeps failing; secrets
    redacted from every error. pyghmi blocks, so the agent runs ``collect`` in a thread
    of its own with a hard timeout: a BMC that stops answering makes its components
    unknown, never failed.

How sensors become components and groups
----------------------------------------
* Kind from the IPMI sensor type (``KIND_BY_SENSOR_TYPE``); ids ``psu/<n>``, ``fan/<n>``
  from the number in the sensor's name ("PS1 Status" -> ``psu/1``, "Fan 3A" ->
  ``fan/3a``), ``temp/<name>`` and ``volt/<name>`` from the name.
* A PSU status sensor (sensor-specific offsets): no "presence detected", or a sensor the
  BMC marks unavailable, is ABSENT; failure or input lost is FAILED; predictive failure,
  input out of range or a configuration error is WARNING.
* Threshold sensors: a lower or upper critical or non-recoverable threshold is FAILED, a
  non-critical one WARNING; unavailable is ABSENT.
* ``power`` = every PSU, ``cooling`` = every fan; ``required`` from the configuration, else
  all but one (at least one). An ABSENT PSU or fan is not a member (the slot is simply
  empty) unless the configuration says how many slots must be populated.
* A redundancy sensor's asserted offsets give the group's stated verdict
  (``REDUNDANCY_OFFSETS``); which group from its sensor type (power supply -> power,
  fan or cooling device -> cooling), else from its name.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import re
import stat
import struct
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
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
    prefixed,
    secret_option,
)

log = logging.getLogger("hotspare.ipmi")

OPTIONS: dict[str, Option] = {
    "address": Option(
        str,
        None,
        'The BMC\'s address, or "local" for the in-band /dev/ipmi0.',
        required=True,
        example="192.0.2.20",
    ),
    "port": Option(int, 623, "The BMC's RMCP+ UDP port."),
    "username": Option(str, "", "BMC user name."),
    "password_file": Option(
        str,
        "",
        "A file holding the BMC password (first line); it must be readable by the agent's user only.",
    ),
    "cipher_suite": Option(
        str,
        "auto",
        'RMCP+ cipher suite: "auto" takes the strongest the BMC offers (17: SHA-256/AES, else 3: SHA-1/AES); "17" refuses anything weaker. Cipher suite 0 is never used.',
        choices=("auto", "17"),
    ),
    "psu_required": Option(int, 0, "PSUs that must be serving. 0: all but one (at least one)."),
    "psu_slots": Option(
        int,
        0,
        "PSU slots that must be populated (an empty one then counts as lost). 0: the PSUs present.",
    ),
    "fan_required": Option(int, 0, "Fans that must be serving. 0: all but one (at least one)."),
    "fan_slots": Option(int, 0, "Fan slots that must be populated. 0: the fans present."),
    "include": Option(
        list,
        [],
        'Only sensors whose name matches one of these shell patterns, e.g. ["PS*", "FAN*"]. Empty: all.',
    ),
    "exclude": Option(list, [], "Skip sensors whose name matches one of these shell patterns."),
    "sel": Option(
        bool,
        True,
        "Read the System Event Log (incrementally) and note new PSU, fan and redundancy events.",
    ),
    "sel_max_age": Option(float, 3600.0, "Seconds: SEL entries older than this are ignored."),
    "id_prefix": Option(
        str,
        "",
        'Put this BMC\'s components and groups under PREFIX/ (e.g. "node2" gives node2/psu/1 and node2/power). Needed, and unique, when one agent watches several BMCs.',
    ),
}
# Two instances with the same prefix would report the same component ids.
UNIQUE_ACROSS_INSTANCES = ("id_prefix",)

# --- pure: tables and decoding ---------------------------------------------------------

SENSOR_TYPE_TEMPERATURE = 0x01
SENSOR_TYPE_VOLTAGE = 0x02
SENSOR_TYPE_FAN = 0x04
SENSOR_TYPE_PSU = 0x08
SENSOR_TYPE_COOLING = 0x0A
SENSOR_TYPE_EVENT_LOG = 0x10
READING_THRESHOLD = 0x01
READING_REDUNDANCY = 0x0B
READING_SENSOR_SPECIFIC = 0x6F

KIND_BY_SENSOR_TYPE: dict[int, Kind] = {
    SENSOR_TYPE_TEMPERATURE: Kind.TEMPERATURE,
    SENSOR_TYPE_VOLTAGE: Kind.VOLTAGE,
    SENSOR_TYPE_FAN: Kind.FAN,
    SENSOR_TYPE_COOLING: Kind.FAN,
    SENSOR_TYPE_PSU: Kind.PSU,
}
ID_PREFIX: dict[Kind, str] = {
    Kind.PSU: "psu",
    Kind.FAN: "fan",
    Kind.TEMPERATURE: "temp",
    Kind.VOLTAGE: "volt",
}
NUMBERED = (Kind.PSU, Kind.FAN)  # ids from the number in the name

# Power supply, sensor-specific offsets (IPMI 2.0 table 42-3, sensor type 08h).
PSU_PRESENCE = 0
PSU_OFFSETS: dict[int, tuple[State, str]] = {
    1: (State.FAILED, "power supply failure detected"),
    2: (State.WARNING, "predictive failure"),
    3: (State.FAILED, "input lost (AC/DC)"),
    4: (State.FAILED, "input lost or out of range"),
    5: (State.WARNING, "input out of range, but present"),
    6: (State.WARNING, "configuration error"),
}

# Threshold sensors: bit of the threshold comparison status -> state.
THRESHOLD_OFFSETS: dict[int, tuple[State, str]] = {
    0: (State.WARNING, "below lower non-critical threshold"),
    1: (State.FAILED, "below lower critical threshold"),
    2: (State.FAILED, "below lower non-recoverable threshold"),
    3: (State.WARNING, "above upper non-critical threshold"),
    4: (State.FAILED, "above upper critical threshold"),
    5: (State.FAILED, "above upper non-recoverable threshold"),
}

# Event/reading type 0Bh, "redundancy" (IPMI 2.0 table 42-2).
REDUNDANCY_OFFSETS: dict[int, tuple[Verdict, str]] = {
    0: (Verdict.REDUNDANT, "Fully Redundant"),
    1: (Verdict.DEGRADED, "Redundancy Lost"),
    2: (Verdict.DEGRADED, "Redundancy Degraded"),
    3: (Verdict.DEGRADED, "Non-redundant: Sufficient Resources from Redundant"),
    4: (Verdict.DEGRADED, "Non-redundant: Sufficient Resources from Insufficient Resources"),
    5: (Verdict.FAILED, "Non-redundant: Insufficient Resources"),
    6: (Verdict.DEGRADED, "Redundancy Degraded from Fully Redundant"),
    7: (Verdict.DEGRADED, "Redundancy Degraded from Non-redundant"),
}
REDUNDANCY_GROUP_BY_SENSOR_TYPE: dict[int, str] = {
    SENSOR_TYPE_PSU: "power",
    SENSOR_TYPE_FAN: "cooling",
    SENSOR_TYPE_COOLING: "cooling",
}
REDUNDANCY_GROUP_BY_NAME: tuple[tuple[str, str], ...] = (
    (r"fan|cool", "cooling"),
    (r"\bps|psu|power|pwr", "power"),
)
_VERDICT_RANK = {Verdict.REDUNDANT: 0, Verdict.DEGRADED: 1, Verdict.FAILED: 2}
GROUP_KIND = {"power": GroupKind.POWER, "cooling": GroupKind.COOLING}
GROUP_MEMBERS = {"power": Kind.PSU, "cooling": Kind.FAN}

# pyghmi's health bits (pyghmi.constants.Health) -> state, for discrete sensors we have no table for.
HEALTH_FAILED = 0x4
HEALTH_CRITICAL = 0x2
HEALTH_WARNING = 0x1


@dataclass(frozen=True, slots=True)
class SensorView:
    """One sensor's reading: pyghmi's decoding plus the facts of its SDR."""

    number: int
    name: str
    sensor_type: int  # IPMI sensor type code
    reading_type: int  # IPMI event/reading type code
    offsets: frozenset[int] = frozenset()  # asserted state offsets (threshold bits for 0x01)
    states: tuple[str, ...] = ()  # pyghmi's words for them
    value: float | None = None
    units: str = ""
    health: int = 0  # pyghmi's health bits
    unavailable: bool = False
    error: str = ""  # the BMC could not read this sensor (its state is unknown)


@dataclass(frozen=True, slots=True)
class Layout:
    """How PSUs and fans form groups (from the configuration)."""

    psu_required: int = 0
    psu_slots: int = 0
    fan_required: int = 0
    fan_slots: int = 0


def component_state(view: SensorView) -> tuple[State, str]:
    """The state of one PSU, fan, temperature or voltage sensor, with the words for it."""
    if view.error:
        return State.UNKNOWN, view.error
    if view.unavailable:
        return State.ABSENT, "sensor unavailable (entity absent or not scanned)"
    if view.reading_type == READING_THRESHOLD:
        return _worst(view.offsets, THRESHOLD_OFFSETS, _value_text(view))
    if view.sensor_type == SENSOR_TYPE_PSU and view.reading_type == READING_SENSOR_SPECIFIC:
        if PSU_PRESENCE not in view.offsets:
            return State.ABSENT, "presence not detected"
        return _worst(view.offsets, PSU_OFFSETS, "presence detected")
    if view.health & HEALTH_FAILED or view.health & HEALTH_CRITICAL:
        return State.FAILED, ", ".join(view.states)
    if view.health & HEALTH_WARNING:
        return State.WARNING, ", ".join(view.states)
    return State.OK, ", ".join(view.states) or _value_text(view)


def _worst(
    offsets: Iterable[int], table: Mapping[int, tuple[State, str]], ok_text: str
) -> tuple[State, str]:
    rank = {State.OK: 0, State.WARNING: 1, State.FAILED: 2}
    found = sorted(
        (table[o] for o in offsets if o in table), key=lambda x: rank[x[0]], reverse=True
    )
    if not found:
        return State.OK, ok_text
    return found[0][0], ", ".join(words for _, words in found)


def _value_text(view: SensorView) -> str:
    if view.value is None:
        return "no reading"
    return f"{view.value:g} {view.units}".strip()


def stated_verdict(view: SensorView) -> tuple[Verdict, str] | None:
    """What a redundancy sensor says, or None when it asserts no redundancy state."""
    found = [REDUNDANCY_OFFSETS[o] for o in sorted(view.offsets) if o in REDUNDANCY_OFFSETS]
    if not found:
        return None
    verdict = max((v for v, _ in found), key=_VERDICT_RANK.__getitem__)
    return verdict, f"{view.name}: {', '.join(words for _, words in found)}"


def redundancy_group(view: SensorView) -> str | None:
    """Which group a redundancy sensor speaks for: ``power``, ``cooling`` or None."""
    if view.sensor_type in REDUNDANCY_GROUP_BY_SENSOR_TYPE:
        return REDUNDANCY_GROUP_BY_SENSOR_TYPE[view.sensor_type]
    for pattern, group in REDUNDANCY_GROUP_BY_NAME:
        if re.search(pattern, view.name, re.IGNORECASE):
            return group
    return None


def component_id(kind: Kind, name: str, taken: set[str]) -> str:
    """``psu/1`` from "PS1 Status", ``fan/3a`` from "Fan 3A", ``temp/inlet-temp`` from "Inlet Temp".

    A PSU or fan whose name carries no number (two sensors both called "Status") gets the
    lowest free number, in sensor-number order.
    """
    prefix = ID_PREFIX[kind]
    if kind in NUMBERED:
        m = re.search(r"(\d+)([a-z]?)(?![a-z0-9])", name.lower())
        if m is None:
            n = 1
            while f"{prefix}/{n}" in taken:
                n += 1
            base = f"{prefix}/{n}"
        else:
            base = f"{prefix}/{m.group(1)}{m.group(2)}"
    else:
        base = f"{prefix}/{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-') or 'sensor'}"
    cid, n = base, 2
    while cid in taken:
        cid, n = f"{base}-{n}", n + 1
    taken.add(cid)
    return cid


def select(
    views: Iterable[SensorView], include: Sequence[str], exclude: Sequence[str]
) -> list[SensorView]:
    def match(name: str, patterns: Sequence[str]) -> bool:
        return any(fnmatch.fnmatchcase(name.lower(), p.lower()) for p in patterns)

    return [
        v for v in views if (not include or match(v.name, include)) and not match(v.name, exclude)
    ]


def classify(views: Iterable[SensorView]) -> list[tuple[SensorView, Kind, str]]:
    """The sensors that are components, with their kind and id (redundancy sensors are not)."""
    taken: set[str] = set()
    out = []
    # numbered names first, so that a nameless sensor's fallback number never takes theirs
    for v in sorted(views, key=lambda v: (v.sensor_type, not re.search(r"\d", v.name), v.number)):
        kind = KIND_BY_SENSOR_TYPE.get(v.sensor_type)
        if v.reading_type == READING_REDUNDANCY or kind is None:
            continue
        if kind == Kind.PSU and v.reading_type != READING_SENSOR_SPECIFIC and not v.unavailable:
            kind = _psu_side_kind(v)  # a PSU's input power, current or temperature sensor
            if kind is None:
                continue
        out.append((v, kind, component_id(kind, v.name, taken)))
    return out


def snapshot(
    views: Sequence[SensorView],
    now: float,
    layout: Layout = Layout(),
    notes: Mapping[int, str] | None = None,
) -> Snapshot:
    """Readings for PSUs, fans, temperatures and voltages; the ``power`` and ``cooling`` groups.

    ``notes`` adds words to a sensor's detail by sensor number (recent SEL events).
    """
    notes = notes or {}
    readings: list[Reading] = []
    members: dict[str, list[tuple[str, State]]] = {"power": [], "cooling": []}
    stated: dict[str, list[tuple[Verdict, str]]] = {"power": [], "cooling": []}
    for v in views:
        if v.reading_type == READING_REDUNDANCY:
            group, verdict = redundancy_group(v), stated_verdict(v)
            if group is not None and verdict is not None:
                stated[group].append(verdict)
    for v, kind, cid in classify(views):
        state, words = component_state(v)
        detail = f"{v.name}: {words}" + (f"; {notes[v.number]}" if v.number in notes else "")
        readings.append(Reading(cid, kind, state, now, detail, v.value, v.units or None))
        for group, member_kind in GROUP_MEMBERS.items():
            if kind == member_kind:
                members[group].append((cid, state))
    groups = []
    for group, found in members.items():
        required, slots = (
            (layout.psu_required, layout.psu_slots)
            if group == "power"
            else (layout.fan_required, layout.fan_slots)
        )
        ids = tuple(cid for cid, s in found if s != State.ABSENT or slots)
        if not ids and not slots:
            continue
        total = max(slots, len(ids)) if slots else None
        need = required or max(1, (total or len(ids)) - 1)
        verdicts = stated[group]
        verdict = max(verdicts, key=lambda x: _VERDICT_RANK[x[0]]) if verdicts else None
        absent = len(found) - len(ids)
        detail = f"{len(ids)} {'PSU' if group == 'power' else 'fan'}(s)" + (
            f", {absent} slot(s) empty" if absent else ""
        )
        if verdicts:
            detail += "; " + "; ".join(words for _, words in verdicts)
        groups.append(
            GroupSpec(
                id=group,
                kind=GROUP_KIND[group],
                required=min(need, total or len(ids)),
                members=ids,
                total=total,
                detail=detail,
                stated=verdict[0] if verdict else None,
                stated_reason=verdict[1] if verdict else "",
            )
        )
    return Snapshot(tuple(readings), tuple(groups))


def _psu_side_kind(view: SensorView) -> Kind | None:
    """A threshold sensor of sensor type 'power supply' (watts, amps): a reading, not a PSU."""
    units = view.units.lower()
    if units == "v" or "volt" in units:
        return Kind.VOLTAGE
    return None


def discover(views: Sequence[SensorView]) -> dict[str, Any]:
    """What a BMC exposes, as plain data: every sensor with its component, and the groups."""
    snap = snapshot(views, 0.0)
    components = {v.number: (cid, component_state(v)[0]) for v, _kind, cid in classify(views)}
    sensors = []
    for v in views:
        cid, state = components.get(v.number, (None, None))
        reading = _value_text(v) if v.value is not None else ", ".join(v.states) or "-"
        sensors.append(
            {
                "number": v.number,
                "name": v.name,
                "sensor_type": v.sensor_type,
                "reading_type": v.reading_type,
                "component": cid,
                "state": state.value if state else None,
                "reading": reading,
            }
        )
    groups = [
        {
            "id": g.id,
            "kind": g.kind.value,
            "members": list(g.members),
            "required": g.required,
            "stated": g.stated.value if g.stated else None,
        }
        for g in snap.groups
    ]
    return {"sensors": sensors, "groups": groups}


def proposal(
    address: str, port: int, username: str, password_file: str, found: Mapping[str, Any]
) -> str:
    """A ``[[collectors.ipmi]]`` entry for what ``discover`` found."""
    lines = [
        "[[collectors.ipmi]]",
        'name = "bmc"',
        f'address = "{address}"',
        f"port = {port}",
        f'username = "{username}"',
        f'password_file = "{password_file}"',
    ]
    keys = {"power": "psu_required", "cooling": "fan_required"}
    lines += [f"{keys[g['id']]} = {g['required']}" for g in found["groups"] if g["id"] in keys]
    return "\n".join(lines) + "\n"


# --- pure: the System Event Log --------------------------------------------------------

SEL_LAST = 0xFFFF  # "the last entry" when asked for, "no more entries" when answered
SEL_TIMESTAMP_PRE_INIT = 0x20000000  # smaller timestamps count from BMC start, not 1970
LOG_AREA_CLEARED = 0x02  # offset of sensor type 10h "event logging": log area reset/cleared


@dataclass(frozen=True, slots=True)
class SelEntry:
    record_id: int
    record_type: int
    timestamp: int
    sensor_type: int
    sensor_number: int
    event_type: int  # event/reading type
    asserted: bool
    offset: int

    @property
    def relevant(self) -> bool:
        """PSU, fan and redundancy events matter; a cleared log does not."""
        if self.record_type != 0x02:  # only system event records carry sensor events
            return False
        if self.sensor_type == SENSOR_TYPE_EVENT_LOG:
            return False
        return self.sensor_type in (SENSOR_TYPE_PSU, SENSOR_TYPE_FAN, SENSOR_TYPE_COOLING) or (
            self.event_type == READING_REDUNDANCY
        )

    def describe(self) -> str:
        if self.event_type == READING_REDUNDANCY and self.offset in REDUNDANCY_OFFSETS:
            words = REDUNDANCY_OFFSETS[self.offset][1]
        elif self.sensor_type == SENSOR_TYPE_PSU and self.offset in PSU_OFFSETS:
            words = PSU_OFFSETS[self.offset][1]
        elif self.sensor_type == SENSOR_TYPE_PSU and self.offset == PSU_PRESENCE:
            words = "presence detected"
        elif self.event_type == READING_THRESHOLD and self.offset in range(12):
            words = ("lower", "upper")[self.offset >= 6] + f" threshold event {self.offset}"
        else:
            words = f"event offset {self.offset}"
        if self.timestamp < SEL_TIMESTAMP_PRE_INIT:
            when = f"BMC uptime {self.timestamp} s"  # the BMC's clock was not set
        else:
            when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(self.timestamp))
        return f"SEL {when}: {words} ({'asserted' if self.asserted else 'deasserted'})"


def decode_sel_entry(data: bytes) -> tuple[int, SelEntry]:
    """A Get SEL Entry response: (next record id, the entry). Raises ValueError if truncated."""
    if len(data) < 18:
        raise ValueError(f"SEL entry truncated: {len(data)} bytes, expected 18")
    next_id, record_id, record_type, timestamp = struct.unpack_from("<HHBI", data, 0)
    sensor_type, sensor_number, dir_type, ed1 = data[12], data[13], data[14], data[15]
    entry = SelEntry(
        record_id=record_id,
        record_type=record_type,
        timestamp=timestamp,
        sensor_type=sensor_type,
        sensor_number=sensor_number,
        event_type=dir_type & 0x7F,
        asserted=not dir_type & 0x80,
        offset=ed1 & 0x0F,
    )
    return next_id, entry


def sel_info(data: bytes) -> tuple[int, int, int]:
    """A Get SEL Info response: (entries, most recent addition, most recent erase)."""
    if len(data) < 13:
        raise ValueError(f"SEL info truncated: {len(data)} bytes, expected 14")
    _version, entries, _free, added, erased = struct.unpack_from("<BHHII", data, 0)
    return entries, added, erased


# --- pure: backing off a failing BMC ---------------------------------------------------


@dataclass(slots=True)
class Breaker:
    """After ``threshold`` consecutive failures, try again only after a growing pause."""

    threshold: int = 3
    base: float = 10.0
    limit: float = 300.0
    failures: int = 0
    open_until: float = 0.0

    def allow(self, now: float) -> bool:
        return now >= self.open_until

    def success(self) -> None:
        self.failures, self.open_until = 0, 0.0

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            pause = min(self.limit, self.base * 2 ** (self.failures - self.threshold))
            self.open_until = now + pause


# --- I/O -----------------------------------------------------------------------------


SDR_CHECK_EVERY = 60.0  # seconds between checks that the BMC's SDR repository is unchanged
POWER_READ_BACK_EVERY = 0.5  # seconds between reads of the power state after a power off


class BmcError(RuntimeError):
    """The BMC did not answer as it should (message redacted of secrets)."""


LOCAL_DEVICE = "/dev/ipmi0"  # pyghmi's in-band session opens this node


def local_device_error(path: str, access: Any = os.access) -> str | None:
    """Why the in-band IPMI device ``path`` cannot be used, in an operator's words; None if it can."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (
            f"{path} does not exist: load the kernel modules ipmi_si (the BMC's system "
            "interface; ipmi_ssif for a BMC on SMBus) and ipmi_devintf (the device node), "
            "e.g. `modprobe ipmi_si ipmi_devintf`; a machine without a BMC has no such device"
        )
    except OSError as e:
        return f"{path}: {e.strerror or e}"
    if not stat.S_ISCHR(st.st_mode):
        return f"{path} is not a character device (an IPMI device node is; see ipmi_devintf)"
    if not access(path, os.R_OK | os.W_OK):
        return (
            f"{path}: permission denied: the agent's user needs read and write access "
            "(run it as root, or give its group access with a udev rule)"
        )
    return None


@dataclass
class IpmiCollector:
    name: str
    address: str
    port: int = 623
    username: str = ""
    password: str = field(default="", repr=False)
    cipher_suite: str = "auto"
    layout: Layout = Layout()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    sel: bool = True
    sel_max_age: float = 3600.0
    id_prefix: str = ""
    clock: Any = time.monotonic
    breaker: Breaker = field(default_factory=Breaker)
    local_device: str = LOCAL_DEVICE  # checked before pyghmi opens it (address "local")

    def __post_init__(self) -> None:
        self._cmd: Any = None
        self._sdr: Any = None
        self._sdr_stamp: bytes | None = None
        self._sel_last: int | None = None
        # (entries, last addition, last erase): the addition time has a one-second
        # resolution, so two events in one second differ only in the count
        self._sel_stamp: tuple[int, int, int] | None = None
        self._sdr_checked = 0.0
        self._notes: dict[int, tuple[float, str]] = {}  # sensor number -> (noted at, SEL words)
        self._lock = threading.Lock()  # one sweep at a time per BMC

    # -- public --------------------------------------------------------------------
    def collect(self, now: float) -> Snapshot:
        mono = self.clock()
        if not self.breaker.allow(mono):
            left = self.breaker.open_until - mono
            raise BmcError(
                f"BMC {self.address} failed {self.breaker.failures} times in a row; "
                f"next attempt in {left:.0f} s"
            )
        with self._lock:
            try:
                views = self._poll(now)
            except Exception as first:
                # one failure may be a stale session or a lost datagram: a fresh session, once
                log.debug(
                    "%s: poll failed, retrying: %s", self.name, self.redact(_error_text(first))
                )
                self._drop_session()
                try:
                    views = self._poll(now)
                except Exception as e:
                    self.breaker.failure(mono)
                    self._drop_session()
                    text = _error_text(e)
                    raise BmcError(self.redact(text)) from None
        self.breaker.success()
        notes = {n: text for n, (at, text) in self._notes.items() if now - at <= self.sel_max_age}
        snap = snapshot(select(views, self.include, self.exclude), now, self.layout, notes)
        return prefixed(snap, self.id_prefix)

    # seconds between SEL probes (one small IPMI command each); an agent with more than 10
    # probing collectors stretches it (at most 10 probes a second in all: agent/poller.py)
    probe_every = 1.0

    def changed(self) -> bool:
        """Cheap probe between polls: did the BMC's event log grow since the last poll?"""
        if not self.sel or self._cmd is None or self._sel_stamp is None:
            return False
        if not self._lock.acquire(blocking=False):
            return False  # a poll is running
        try:
            data = bytes(self._cmd.xraw_command(netfn=0x0A, command=0x40)["data"])
            return sel_info(data) != self._sel_stamp
        finally:
            self._lock.release()

    def _poll(self, now: float) -> list[SensorView]:
        views = self._sweep()
        if self.sel:
            self._read_sel(now)
        return views

    def views(self) -> list[SensorView]:
        """Every sensor as decoded (``hotspare discover ipmi``)."""
        with self._lock:
            return self._sweep()

    def power_state(self) -> str:
        """'on' or 'off', as the BMC reports the chassis power (BmcError when it cannot say)."""
        with self._lock:
            return self._power_read()

    def power_off(self, verify_timeout: float = 30.0) -> bool:
        """Hard power off, then read the state back until it is really off (fencing).

        True once the BMC reports the chassis off. False when it still reports "on" after
        ``verify_timeout`` seconds. BmcError (naming the BMC, secrets redacted) when it
        refuses the power off, or when no read-back succeeded within ``verify_timeout``
        (a BMC may not answer for a while after a power change: read errors are retried
        until then).
        """
        with self._lock:
            self._power_call("power off", lambda cmd: cmd.set_power("off", wait=False))
            deadline = time.monotonic() + verify_timeout
            error: BmcError | None = None
            while True:
                try:
                    if self._power_read() == "off":
                        return True
                    error = None
                except BmcError as e:
                    error = e
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(POWER_READ_BACK_EVERY, left))
            if error is not None:
                raise BmcError(
                    f"BMC {self.address}: power off sent, but the power state could not be "
                    f"read back within {verify_timeout:g} s ({error})"
                )
            return False

    def _power_read(self) -> str:
        return str(self._power_call("chassis status", lambda cmd: cmd.get_power()["powerstate"]))

    def _power_call(self, what: str, fn: Any) -> Any:
        """``fn(session)``; once more on a fresh session if it fails; BmcError after that."""
        try:
            return fn(self._session())
        except BmcError:
            raise
        except Exception as first:
            log.debug(
                "%s: %s failed, retrying: %s", self.name, what, self.redact(_error_text(first))
            )
            self._drop_session()
            try:
                return fn(self._session())
            except BmcError:
                raise
            except Exception as e:
                self._drop_session()
                text = _error_text(e)
                raise BmcError(self.redact(f"BMC {self.address}: {what} failed: {text}")) from None

    def close(self) -> None:
        """Log out of the BMC."""
        with self._lock:
            self._drop_session()

    def redact(self, text: str) -> str:
        return text.replace(self.password, "***") if self.password else text

    # -- session, SDR, sensors -------------------------------------------------------
    def _session(self) -> Any:
        if self._cmd is None:
            from pyghmi.ipmi import command  # imported only by agents that poll a BMC

            from collectors import pyghmi_wakeup

            pyghmi_wakeup.install()  # before the first session: see that module
            if self.address == "local":
                problem = local_device_error(self.local_device)
                if problem is not None:
                    raise BmcError(f"in-band IPMI: {problem}")
                cmd = command.Command()
            else:
                cmd = command.Command(
                    bmc=self.address, userid=self.username, password=self.password, port=self.port
                )
                _settle_pyghmi_registry(self.address, self.port)
                session = getattr(cmd, "ipmi_session", None)
                hashlib_of = getattr(session, "currhashlib", None)
                if (
                    self.cipher_suite == "17"
                    and hashlib_of is not None
                    and hashlib_of().name != "sha256"
                ):
                    raise BmcError(f"BMC {self.address} does not offer cipher suite 17")
            self._cmd = cmd
        return self._cmd

    def _drop_session(self) -> None:
        cmd, self._cmd, self._sdr, self._sdr_stamp = self._cmd, None, None, None
        session = getattr(cmd, "ipmi_session", None)
        if session is not None:
            with contextlib.suppress(Exception):  # a broken session may not even log out
                session.logout()
        if self.address != "local":
            _forget_pyghmi_sessions(self.address, self.port)

    def _repository(self, cmd: Any) -> Any:
        """The SDR, read once and again only when the BMC's repository changed (checked each minute)."""
        from pyghmi.ipmi import sdr as pyghmi_sdr

        mono = time.monotonic()
        if self._sdr is not None and mono - self._sdr_checked < SDR_CHECK_EVERY:
            return self._sdr
        self._sdr_checked = mono
        # Get SDR Repository Info: its addition and erase times change with the repository
        stamp = bytes(cmd.xraw_command(netfn=0x0A, command=0x20)["data"])[6:14]
        if self._sdr is None or stamp != self._sdr_stamp:
            self._sdr = pyghmi_sdr.SDR(cmd)
            self._sdr_stamp = stamp
        return self._sdr

    def _sweep(self) -> list[SensorView]:
        cmd = self._session()
        repo = self._repository(cmd)
        out = []
        for number in repo.get_sensor_numbers():
            entry = repo.sensors[number]
            rsp = cmd.raw_command(
                netfn=4, command=0x2D, rslun=entry.sensor_lun, data=(entry.sensor_number,)
            )
            if "error" in rsp:
                # 0xCB: requested sensor not present; anything else: this one sensor is unknown
                error = "" if rsp.get("code") == 0xCB else f"the BMC answered: {rsp['error']}"
                out.append(_view(entry, None, None, error))
                continue
            raw = bytes(rsp["data"])
            try:
                reading = entry.decode_sensor_reading(cmd, raw)
            except Exception as e:  # a reading pyghmi cannot decode spoils one sensor, not the BMC
                out.append(
                    _view(entry, None, None, f"undecodable reading {raw.hex()}: {type(e).__name__}")
                )
                continue
            out.append(_view(entry, raw, reading))
        return out

    # -- SEL -------------------------------------------------------------------------
    def _read_sel(self, now: float) -> None:
        cmd = self._session()
        stamp = sel_info(bytes(cmd.xraw_command(netfn=0x0A, command=0x40)["data"]))
        entries, _added, erased = stamp
        previous, self._sel_stamp = self._sel_stamp, stamp
        if previous is None:
            # first poll: remember where the log ends; current sensor states tell the rest
            self._sel_last = self._sel_entry(cmd, SEL_LAST)[1].record_id if entries else None
            return
        if stamp == previous or not entries:
            return
        if erased != previous[2]:
            self._sel_last = None  # the log was cleared: read it from its first entry
        record = 0x0000 if self._sel_last is None else self._sel_last
        next_id, entry = self._sel_entry(cmd, record)
        if self._sel_last is None:
            self._note(entry, now)
        while next_id != SEL_LAST:
            next_id, entry = self._sel_entry(cmd, next_id)
            self._note(entry, now)
        self._sel_last = entry.record_id

    def _sel_entry(self, cmd: Any, record: int) -> tuple[int, SelEntry]:
        rsp = cmd.xraw_command(
            netfn=0x0A, command=0x43, data=(0, 0, record & 0xFF, record >> 8, 0, 0xFF)
        )
        return decode_sel_entry(bytes(rsp["data"]))

    def _note(self, entry: SelEntry, now: float) -> None:
        recent = (
            entry.timestamp < SEL_TIMESTAMP_PRE_INIT or now - entry.timestamp <= self.sel_max_age
        )
        if entry.relevant and recent:
            self._notes[entry.sensor_number] = (now, entry.describe())


def _error_text(e: BaseException) -> str:
    """Our own errors as they are; anything else with its type (``TimeoutError: ...``)."""
    if isinstance(e, BmcError):
        return str(e)
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _settle_pyghmi_registry(bmc: str, port: int) -> None:
    """Drop the "being set up" entry of a session that is set up (see below)."""
    from pyghmi.ipmi.private import session as pyghmi_session

    registry = pyghmi_session.Session.initting_sessions
    for key in [k for k in list(registry) if k[0] == bmc and k[3] == port]:
        registry.pop(key, None)


def _forget_pyghmi_sessions(bmc: str, port: int) -> None:
    """Make pyghmi forget its sessions with ``bmc``:``port``, so the next login is fresh.

    pyghmi (1.6) shares one session per (bmc, user, password, port) and keys its registry
    of sessions being set up with the user id as text but removes entries by the bytes
    form, so entries stay; after a session broke, a new ``Command`` would get the dead one
    back, and a second session to the same BMC waits forever. Dropping the entries for this
    BMC once a session is up, and again when it is dropped, lets it log in afresh.
    """
    from pyghmi.ipmi.private import session as pyghmi_session

    registry = pyghmi_session.Session
    _settle_pyghmi_registry(bmc, port)
    for sockaddr in [a for a in list(registry.bmc_handlers) if a[1] == port]:
        for stale in list(registry.bmc_handlers.get(sockaddr, {}).values()):
            with contextlib.suppress(Exception):
                stale.logout()
        registry.bmc_handlers.pop(sockaddr, None)


def _view(entry: Any, raw: bytes | None, reading: Any, error: str = "") -> SensorView:
    """pyghmi's SDR entry and decoded reading -> our SensorView (library objects stop here)."""
    base = dict(
        number=entry.sensor_number,
        name=entry.sensor_name,
        sensor_type=entry.sensor_type_number,
        reading_type=entry.reading_type,
    )
    if error:
        return SensorView(**base, error=error)
    if raw is None or reading is None or getattr(reading, "unavailable", 0):
        return SensorView(**base, unavailable=True)
    bits = raw[2] if len(raw) > 2 else 0
    if entry.reading_type != READING_THRESHOLD and len(raw) > 3:
        bits |= (raw[3] & 0x7F) << 8
    offsets = frozenset(i for i in range(15) if bits >> i & 1)
    if entry.reading_type == READING_THRESHOLD:
        offsets = frozenset(o for o in offsets if o < 6)
    return SensorView(
        **base,
        offsets=offsets,
        states=tuple(reading.states),
        value=reading.value,
        units=reading.units or "",
        health=int(reading.health),
        unavailable=False,
    )


def create(name: str, options: Mapping[str, Any]) -> IpmiCollector:
    layout = Layout(
        options["psu_required"], options["psu_slots"], options["fan_required"], options["fan_slots"]
    )
    password = secret_option(name, "password_file", options["password_file"])
    return IpmiCollector(
        name=name,
        address=options["address"],
        port=options["port"],
        username=options["username"],
        password=password,
        cipher_suite=options["cipher_suite"],
        layout=layout,
        include=tuple(options["include"]),
        exclude=tuple(options["exclude"]),
        sel=options["sel"],
        sel_max_age=options["sel_max_age"],
        id_prefix=options["id_prefix"].strip("/"),
    )
