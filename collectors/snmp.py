"""SNMP: power supplies, fans, chassis alarms and uplink ports of switches (and BMCs).

SNMPv2c or SNMPv3 (authPriv with SHA-2 and AES by default) over pysnmp 7's asyncio
engine. Three layers:

``interpret(profile, walked, layout)``
    Pure. The walked columns (column OID -> {index: value}) of a device profile
    (``collectors.snmp_profiles``) become Readings and the ``psu`` / ``fan`` groups.

``port_readings(walked, ports)``
    Pure. IF-MIB admin/oper status of the configured uplink ports, ``port/<ifName>``.

``SnmpCollector``
    The I/O. All instances in one event loop share one SNMP engine, with one UDP socket
    per address family (IPv4, IPv6); each switch is a target configured once in it. The
    engine is closed when its last collector is closed or its loop shuts down. A poll is a GETBULK walk of only the
    profile's columns, all columns side by side in each request, numeric OIDs only, no
    MIB lookups. A switch that does not answer within ``request_timeout`` x (``retries``
    + 1) makes ``switch/<name>`` and everything last seen on it UNKNOWN; only with
    ``unreachable_failed_after`` set does ``switch/<name>`` itself become FAILED once the
    device stayed silent that long (``silence_state``), its parts stay UNKNOWN. The agent's per-collector timeout is the hard deadline of the whole poll, and each
    switch is its own collector instance, so a slow one never delays the others.

Component ids: ``switch/<name>`` (reachability), ``switch/<name>/psu/<index>``,
``switch/<name>/fan/<index>``, ``switch/<name>/port/<ifName>``, ... (``<index>`` is the
row's SNMP index, components joined by "."). Groups ``switch/<name>/psu`` (kind power,
``required`` default 1) and ``switch/<name>/fan`` (kind cooling, default all but one).
A PSU the device lists as absent is a lost member (the chassis reports the slot); an
absent fan is not a member (servers list fan bays they never populate), unless
``fan_slots`` says how many must be populated.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from collectors import snmp_ber as ber
from collectors import snmp_redundancy
from collectors.base import (
    GroupKind,
    GroupSpec,
    Kind,
    Option,
    Reading,
    Snapshot,
    State,
    prefixed,
    secret_option,
)
from collectors.snmp_profiles import (
    BY_NAME,
    ENT_OPER_STATE,
    ENT_PHY_SENSOR_OPER_STATUS,
    ENT_PHYSICAL_CLASS,
    ENT_PHYSICAL_CONTAINED_IN,
    ENT_PHYSICAL_NAME,
    ENT_SENSOR_STATUS,
    ENT_STATE_OPER,
    IF_ADMIN_STATUS,
    IF_DESCR,
    IF_NAME,
    IF_OPER_STATUS,
    IF_STATUS_WORDS,
    LLDP_LOC_PORT_DESC,
    LLDP_LOC_PORT_ID,
    LLDP_REM_PORT_DESC,
    LLDP_REM_PORT_ID,
    SYS_DESCR,
    SYS_OBJECT_ID,
    EntitySource,
    Profile,
    Role,
    StatusTable,
    choose,
)

log = logging.getLogger("hotspare.snmp")

AUTH_PROTOCOLS = ("SHA-256", "SHA-384", "SHA-512", "SHA-224", "SHA", "MD5")
PRIV_PROTOCOLS = ("AES", "AES-192", "AES-256", "DES")

OPTIONS: dict[str, Option] = {
    "address": Option(
        str,
        None,
        "The device's address: IPv4, IPv6 (2001:db8::10) or a host name (its first address, IPv6 or IPv4, in the system's order of preference).",
        required=True,
        example="192.0.2.10",
    ),
    "port": Option(int, 161, "The device's SNMP UDP port."),
    "version": Option(str, "2c", 'SNMP version: "2c" or "3".', choices=("2c", "3")),
    "community": Option(
        str,
        "",
        "SNMPv2c community. Prefer community_file: a community here is readable by whoever reads the config.",
    ),
    "community_file": Option(
        str,
        "",
        "A file holding the SNMPv2c community (first line), readable by the agent's user only.",
    ),
    "user": Option(str, "", "SNMPv3 user name (version 3)."),
    "security_level": Option(
        str,
        "authPriv",
        "SNMPv3 security level. authNoPriv and noAuthNoPriv only when set here explicitly.",
        choices=("authPriv", "authNoPriv", "noAuthNoPriv"),
    ),
    "auth_protocol": Option(
        str, "SHA-256", "SNMPv3 authentication protocol.", choices=AUTH_PROTOCOLS
    ),
    "auth_key_file": Option(
        str,
        "",
        "A file holding the SNMPv3 authentication passphrase (first line), readable by the agent's user only.",
    ),
    "priv_protocol": Option(
        str, "AES", "SNMPv3 privacy protocol (AES is AES-128-CFB).", choices=PRIV_PROTOCOLS
    ),
    "priv_key_file": Option(
        str,
        "",
        "A file holding the SNMPv3 privacy passphrase (first line), readable by the agent's user only.",
    ),
    "context": Option(str, "", "SNMPv3 context name."),
    "profile": Option(
        str,
        "auto",
        "Device profile. auto: chosen by sysObjectID / sysDescr, else the standards-only one (entity).",
        choices=("auto", *BY_NAME),
    ),
    "psu_required": Option(int, 0, "PSUs that must be serving. 0: one."),
    "fan_required": Option(int, 0, "Fans (or fan trays) that must be serving. 0: all but one."),
    "fan_slots": Option(
        int,
        0,
        "Fan slots that must be populated (an absent fan then counts as lost). 0: present ones.",
    ),
    "ports": Option(
        list,
        [],
        'Uplink ports on this device to watch, by ifName (or ifDescr), e.g. ["Ethernet1/49", "Ethernet1/50"].',
    ),
    "lldp_nics": Option(
        list,
        [],
        'Local NICs (e.g. ["eth0", "eth1"]) whose switch ports to find in this device\'s LLDP neighbour table (by the NIC\'s MAC or name) and watch like "ports".',
    ),
    "request_timeout": Option(float, 1.0, "Seconds to wait for one SNMP response."),
    "retries": Option(int, 1, "Retransmissions of an unanswered request."),
    "deadline": Option(
        float,
        5.0,
        "Seconds one poll of this device may take in all; then it is cancelled and the device is unknown. Keep it below the collector's timeout.",
    ),
    "unreachable_failed_after": Option(
        float,
        0.0,
        "Seconds of silence (every poll unanswered, counted from the first) after which switch/<name> itself is failed, not unknown; its PSUs, fans and ports stay unknown. Set it only when SNMP reaches the device in-band, through the path it serves (see docs/snmp.md). 0: never, silence is unknown.",
    ),
    "max_repetitions": Option(int, 50, "GETBULK max-repetitions: rows per column per request."),
    "codec": Option(
        str,
        "builtin",
        'SNMPv2c message codec: "builtin" (the project\'s own: a little cheaper per value, and pysnmp is not loaded) or "pysnmp". SNMPv3 always uses pysnmp.',
        choices=("builtin", "pysnmp"),
    ),
    "trap_listen": Option(
        str,
        "",
        "Receive SNMP traps and informs on HOST:PORT (e.g. 0.0.0.0:162, or [::]:162 for IPv6 and IPv4); one from this device's address re-polls it at once, an inform is acknowledged. Entries with the same value share one listener. Empty: no listener.",
    ),
    "id_prefix": Option(
        str,
        "switch",
        'First level of this device\'s component and group ids ("switch" gives switch/<name>/psu).',
    ),
}
# Component ids come from the entry's name, which the configuration keeps unique; one
# address may serve several devices (communities, contexts, a simulator).


# --- pure: profiles -> readings and groups --------------------------------------------

Index = tuple[int, ...]
Walked = Mapping[str, Mapping[Index, Any]]  # column OID -> {row index: value}


@dataclass(frozen=True, slots=True)
class Layout:
    psu_required: int = 0
    fan_required: int = 0
    fan_slots: int = 0


@dataclass(frozen=True, slots=True)
class Row:
    """One status row of a profile source: what it says, and where it came from."""

    role: Role
    id: str
    kind: Kind
    state: State
    detail: str
    source: str  # "<MIB>::<object>" for the agreement table and the docs
    oids: tuple[str, ...]  # the status OIDs read (entry.column.index)


KIND_BY_ROLE = {Role.PSU: Kind.PSU, Role.FAN: Kind.FAN, Role.OTHER: Kind.OTHER}


def index_text(index: Index) -> str:
    return ".".join(map(str, index))


def _int(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, tuple) and value:  # an OID value (hpicfSensorObjectId): last arc
        return int(value[-1])
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return ".".join(map(str, value))
    return str(value).strip()


def table_rows(table: StatusTable, walked: Walked) -> list[Row]:
    status = walked.get(table.column(table.status), {})
    names = walked.get(table.column(table.name), {}) if table.name else {}
    present = walked.get(table.column(table.present), {}) if table.present else {}
    types = walked.get(table.column(table.type_column), {}) if table.type_column else {}
    classes = walked.get(ENT_PHYSICAL_CLASS, {})
    ent_names = walked.get(ENT_PHYSICAL_NAME, {})
    rows = []
    for index in sorted(status):
        if types:
            if _int(types.get(index)) not in table.types:
                continue
        elif table.first_index and index[0] not in table.first_index:
            continue  # no type column (none declared, or the device has none): by container
        if table.entity_class is not None and _int(classes.get(index)) != table.entity_class:
            continue
        raw = _int(status[index])
        state, word = table.states.get(raw, (State.UNKNOWN, f"undefined value {raw!r}"))
        if table.present is not None and _int(present.get(index)) in table.absent_values:
            state, word = State.ABSENT, f"{word}, not present"
        name = _text(names.get(index))
        if not name and table.name_template:
            name = table.name_template.format(index=index_text(index), last=index[-1])
        if not name and table.entity_class is not None:
            name = _text(ent_names.get(index))
        rows.append(
            Row(
                role=table.role,
                # a scalar (index 0) is the component itself: alarm/red, not alarm/red/0
                id=table.id_prefix if index == (0,) else f"{table.id_prefix}/{index_text(index)}",
                kind=table.kind or KIND_BY_ROLE[table.role],
                state=state,
                detail=f"{name or table.id_prefix}: {word} ({table.object} = {raw})",
                source=f"{table.mib}::{table.object}",
                oids=(f"{table.column(table.status)}.{index_text(index)}",),
            )
        )
    return rows


def entity_rows(source: EntitySource, walked: Walked) -> list[Row]:
    """powerSupply / fan entities; state from ENTITY-STATE-MIB, else their sensors."""
    classes = walked.get(ENT_PHYSICAL_CLASS, {})
    names = walked.get(ENT_PHYSICAL_NAME, {})
    parent = {i: _int(v) for i, v in walked.get(ENT_PHYSICAL_CONTAINED_IN, {}).items()}
    oper = walked.get(ENT_STATE_OPER, {})
    sensors = walked.get(ENT_PHY_SENSOR_OPER_STATUS, {})
    children: dict[int, list[int]] = {}
    for (i, *_), p in parent.items():
        if p:
            children.setdefault(p, []).append(i)
    rows = []
    for index in sorted(classes):
        role = source.roles.get(_int(classes[index]) or 0)
        if role is None:
            continue
        name = _text(names.get(index)) or f"entity {index_text(index)}"
        oids: tuple[str, ...] = ()
        if index in oper:
            oids = (f"{ENT_STATE_OPER}.{index_text(index)}",)
            raw = _int(oper[index])
            state, word = ENT_OPER_STATE.get(raw, (State.UNKNOWN, f"undefined value {raw!r}"))
            detail, src = f"{name}: {word} (entStateOper = {raw})", "ENTITY-STATE-MIB::entStateOper"
        else:
            found = _sensor_states(index[0], children, sensors)
            if found:
                oids = tuple(f"{ENT_PHY_SENSOR_OPER_STATUS}.{i}" for i, _ in found)
                state, word = max((sw for _, sw in found), key=lambda sw: _RANK[sw[0]])
                detail = f"{name}: sensors {', '.join(sorted({w for _, (_, w) in found}))}"
                src = "ENTITY-SENSOR-MIB::entPhySensorOperStatus"
            else:
                state, src = State.UNKNOWN, "ENTITY-MIB::entPhysicalClass"
                detail = f"{name}: present, but the device publishes no state for it"
        prefix = "psu" if role == Role.PSU else "fan"
        rows.append(
            Row(role, f"{prefix}/{index_text(index)}", KIND_BY_ROLE[role], state, detail, src, oids)
        )
    return rows


_RANK = {State.OK: 0, State.UNKNOWN: 1, State.WARNING: 2, State.ABSENT: 3, State.FAILED: 4}


def _sensor_states(
    entity: int, children: Mapping[int, list[int]], sensors: Mapping[Index, Any], depth: int = 3
) -> list[tuple[int, tuple[State, str]]]:
    out = []
    for child in children.get(entity, ()):
        if (child,) in sensors:
            raw = _int(sensors[(child,)])
            out.append(
                (child, ENT_SENSOR_STATUS.get(raw, (State.UNKNOWN, f"undefined value {raw!r}")))
            )
        if depth > 1:
            out.extend(_sensor_states(child, children, sensors, depth - 1))
    return out


def profile_rows(profile: Profile, walked: Walked) -> list[Row]:
    rows: list[Row] = []
    for source in profile.sources:
        if isinstance(source, EntitySource):
            rows.extend(entity_rows(source, walked))
        else:
            rows.extend(table_rows(source, walked))
    return rows


def interpret(
    profile: Profile, walked: Walked, now: float, layout: Layout = Layout()
) -> tuple[list[Reading], list[GroupSpec], list[Row]]:
    """Readings and groups (ids relative to the device) from one walk of a profile."""
    rows = profile_rows(profile, walked)
    readings: dict[str, Reading] = {}
    members: dict[Role, list[Row]] = {}
    group_source: dict[Role, str] = {}
    for row in rows:
        old = readings.get(row.id)
        if old is None or _RANK[row.state] > _RANK[old.state]:
            readings[row.id] = Reading(row.id, row.kind, row.state, now, row.detail)
        if row.role == Role.OTHER:
            continue
        # group members come from the first source that has rows for the group
        if group_source.setdefault(row.role, row.source) == row.source and row.id not in {
            m.id for m in members.get(row.role, [])
        }:
            members.setdefault(row.role, []).append(row)
    groups = []
    psus = members.get(Role.PSU, [])
    if psus:
        required = layout.psu_required or 1
        groups.append(
            GroupSpec(
                "psu",
                GroupKind.POWER,
                min(required, len(psus)),
                tuple(r.id for r in psus),
                detail=f"{len(psus)} PSU(s) from {group_source[Role.PSU]}",
            )
        )
    fans = [r for r in members.get(Role.FAN, []) if r.state != State.ABSENT or layout.fan_slots]
    if fans:
        slots = max(layout.fan_slots, len(fans)) if layout.fan_slots else None
        total = slots or len(fans)
        required = layout.fan_required or max(1, total - 1)
        groups.append(
            GroupSpec(
                "fan",
                GroupKind.COOLING,
                min(required, total),
                tuple(r.id for r in fans),
                total=slots,
                detail=f"{len(fans)} fan(s) from {group_source[Role.FAN]}",
            )
        )
    groups = snmp_redundancy.with_statements(groups, profile, walked)  # the device's own word
    return list(readings.values()), groups, rows


def port_state(admin: int | None, oper: int | None) -> tuple[State, str]:
    """An uplink port's state: administratively down is not serving either."""
    words = f"admin {IF_STATUS_WORDS.get(admin or 0, admin)}, oper {IF_STATUS_WORDS.get(oper or 0, oper)}"
    if admin == 2:
        return State.FAILED, words
    state = {
        1: State.OK,
        2: State.FAILED,
        3: State.WARNING,
        4: State.UNKNOWN,
        5: State.WARNING,
        6: State.ABSENT,
        7: State.FAILED,
    }.get(oper or 0, State.UNKNOWN)
    return state, words


def silence_state(silent_for: float, failed_after: float, error: str) -> tuple[State, str]:
    """The reachability component of a device that did not answer.

    Silence is UNKNOWN; it becomes FAILED only when the operator configured
    ``failed_after`` (> 0) and the device stayed silent at least that long. The words
    carry the configured bound, not the running count: details are published on change.
    """
    if failed_after > 0 and silent_for >= failed_after:
        return State.FAILED, f"no answer for {failed_after:g} s or more: {error}"
    return State.UNKNOWN, f"no answer: {error}"


def port_readings(walked: Walked, ports: Sequence[str], now: float) -> list[Reading]:
    """``port/<name>`` for each configured port, found by ifName, else by ifDescr."""
    by_name: dict[str, Index] = {}
    for column in (IF_DESCR, IF_NAME):  # ifName wins over ifDescr
        for index, value in walked.get(column, {}).items():
            by_name[_text(value)] = index
    out = []
    for name in ports:
        index = by_name.get(name)
        if index is None:
            out.append(
                Reading(f"port/{name}", Kind.PORT, State.UNKNOWN, now, f"{name}: no such port")
            )
            continue
        admin = _int(walked.get(IF_ADMIN_STATUS, {}).get(index))
        oper = _int(walked.get(IF_OPER_STATUS, {}).get(index))
        state, words = port_state(admin, oper)
        out.append(
            Reading(
                f"port/{name}",
                Kind.PORT,
                state,
                now,
                f"{name} (ifIndex {index_text(index)}): {words}",
            )
        )
    return out


PORT_COLUMNS = (IF_DESCR, IF_NAME, IF_ADMIN_STATUS, IF_OPER_STATUS)
LLDP_COLUMNS = (LLDP_LOC_PORT_ID, LLDP_LOC_PORT_DESC, LLDP_REM_PORT_ID, LLDP_REM_PORT_DESC)


def _mac(text: str) -> str:
    hexes = re.sub(r"[^0-9a-f]", "", text.lower())
    return ":".join(hexes[i : i + 2] for i in range(0, 12, 2)) if len(hexes) == 12 else ""


def lldp_ports(walked: Walked, nics: Mapping[str, str]) -> dict[str, str]:
    """Local NIC -> the switch port it is cabled to, from the switch's LLDP neighbours.

    A neighbour matches a NIC when its port id (or port description) is the NIC's MAC
    address or name, as Linux LLDP agents send them. The switch port is the local port's
    id or description that names an interface (ifName / ifDescr), else the local port
    number taken as ifIndex (what most switches use).
    """
    names = {_text(v) for c in (IF_NAME, IF_DESCR) for v in walked.get(c, {}).values()}
    if_names = {idx: _text(v) for idx, v in walked.get(IF_NAME, {}).items()}
    loc_id = walked.get(LLDP_LOC_PORT_ID, {})
    loc_desc = walked.get(LLDP_LOC_PORT_DESC, {})
    rem_desc = walked.get(LLDP_REM_PORT_DESC, {})
    out: dict[str, str] = {}
    for index, port_id in walked.get(LLDP_REM_PORT_ID, {}).items():
        if len(index) < 3:
            continue
        said = {_text(port_id), _text(rem_desc.get(index))}
        macs = {_mac(x) for x in said} - {""}
        for nic, mac in nics.items():
            if nic in out or not (nic in said or (mac and _mac(mac) in macs)):
                continue
            local = (index[1],)
            for candidate in (_text(loc_id.get(local)), _text(loc_desc.get(local))):
                if candidate in names:
                    out[nic] = candidate
                    break
            else:
                out[nic] = if_names.get(local, "")
    return out


def sys_class_net_macs(nics: Sequence[str]) -> dict[str, str]:
    """The local NICs' MAC addresses (the I/O seam of LLDP matching)."""
    out = {}
    for nic in nics:
        try:
            with open(f"/sys/class/net/{nic}/address", encoding="ascii") as fh:
                out[nic] = fh.read().strip()
        except OSError:
            out[nic] = ""
    return out


def octets(raw: bytes) -> str:
    """An OCTET STRING as text when it is printable, else as colon-separated hex (a MAC)."""
    raw = raw.rstrip(b"\0")
    if all(32 <= b < 127 or b in (9, 10, 13) for b in raw):
        return raw.decode("ascii")
    try:
        text = raw.decode("utf-8")
        if text.isprintable():
            return text
    except UnicodeDecodeError:
        pass
    return ":".join(f"{b:02x}" for b in raw)


@dataclass(frozen=True, slots=True)
class Credentials:
    version: str  # "2c" | "3"
    community: str = field(default="", repr=False)
    user: str = ""
    security_level: str = "authPriv"
    auth_protocol: str = "SHA-256"
    auth_key: str = field(default="", repr=False)
    priv_protocol: str = "AES"
    priv_key: str = field(default="", repr=False)
    context: str = ""

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.community, self.auth_key, self.priv_key) if s)


# --- I/O: one engine per event loop ----------------------------------------------------


def usm_protocols(config: Any, creds: Credentials) -> tuple[Any, Any]:
    """pysnmp's authentication and privacy protocol ids for ``creds`` and its level."""
    auth = {
        "SHA-256": config.USM_AUTH_HMAC192_SHA256,
        "SHA-384": config.USM_AUTH_HMAC256_SHA384,
        "SHA-512": config.USM_AUTH_HMAC384_SHA512,
        "SHA-224": config.USM_AUTH_HMAC128_SHA224,
        "SHA": config.USM_AUTH_HMAC96_SHA,
        "MD5": config.USM_AUTH_HMAC96_MD5,
    }[creds.auth_protocol]
    priv = {
        "AES": config.USM_PRIV_CFB128_AES,
        "AES-192": config.USM_PRIV_CFB192_AES,
        "AES-256": config.USM_PRIV_CFB256_AES,
        "DES": config.USM_PRIV_CBC56_DES,
    }[creds.priv_protocol]
    if creds.security_level == "noAuthNoPriv":
        return config.USM_AUTH_NONE, config.USM_PRIV_NONE
    if creds.security_level == "authNoPriv":
        return auth, config.USM_PRIV_NONE
    return auth, priv


class SnmpError(RuntimeError):
    """A request failed: no answer, an SNMP error status, or a malformed response."""


class PysnmpBackend:
    """pysnmp's engine with one client UDP socket: SNMPv3, and SNMPv2c with codec "pysnmp"."""

    def __init__(self) -> None:
        from pyasn1.type import univ
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import cmdgen
        from pysnmp.proto import rfc1902, rfc1905

        self._config = config
        self.engine = engine.SnmpEngine()
        self._sockets: dict[int, socket.socket] = {}  # address family -> our client socket
        self._bulk = cmdgen.BulkCommandGeneratorSingleRun()
        self._get = cmdgen.GetCommandGenerator()
        self._null = rfc1902.Null("")
        self._name = rfc1902.ObjectName
        self._end = (rfc1905.EndOfMibView, rfc1905.NoSuchObject, rfc1905.NoSuchInstance)
        self._octets = univ.OctetString
        self._oid = univ.ObjectIdentifier
        self._targets: dict[str, tuple[Any, ...]] = {}
        self._users: dict[str, tuple[str, tuple[str, ...]]] = {}  # v3 user -> (entry, keys)

    def _domain(self, family: int) -> tuple[int, ...]:
        """pysnmp's transport domain of ``family``, its socket opened on first use.

        The socket is ours (handed to pysnmp), so that closing never depends on the loop.
        """
        from pysnmp.carrier.asyncio.dgram import udp, udp6

        module = udp6 if family == socket.AF_INET6 else udp
        if family not in self._sockets:
            sock = client_socket(family)
            transport = udp6.Udp6AsyncioTransport() if module is udp6 else udp.UdpAsyncioTransport()
            self._config.add_transport(
                self.engine, module.DOMAIN_NAME, transport.open_server_mode(sock=sock)
            )
            self._sockets[family] = sock
        return module.DOMAIN_NAME

    def close(self) -> None:
        """Close the engine's transports and sockets (also when the loop is closed already)."""
        with contextlib.suppress(Exception):  # a closed loop refuses to schedule callbacks
            self.engine.close_dispatcher()
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def add_target(
        self, name: str, address: tuple[str, int], creds: Credentials, timeout: float, retries: int
    ) -> None:
        """Configure a target once; the same name again replaces it."""
        key = (address, creds, timeout, retries)
        if self._targets.get(name) == key:
            return
        c, e = self._config, self.engine
        domain = self._domain(family_of(address[0]))
        security = f"hs-{name}"
        if creds.version == "2c":
            # A response is matched to its community's securityName: targets sharing a
            # community must share one entry, or their responses would be dropped.
            shared = "hs-c-" + hashlib.sha256(creds.community.encode()).hexdigest()[:16]
            c.add_v1_system(e, shared, creds.community, securityName=shared)
            c.add_target_parameters(e, f"{security}-p", shared, "noAuthNoPriv", 1)
        else:
            keys = (creds.auth_protocol, creds.auth_key, creds.priv_protocol, creds.priv_key)
            other = self._users.setdefault(creds.user, (name, keys))
            if other[1] != keys:
                raise SnmpError(
                    f"SNMPv3 user {creds.user!r} has other passphrases or protocols in entry "
                    f"{other[0]!r}: one agent needs one set per user name"
                )
            auth, priv = usm_protocols(c, creds)
            level = creds.security_level
            c.add_v3_user(
                e,
                creds.user,
                auth,
                creds.auth_key or None,
                priv,
                creds.priv_key or None,
            )
            c.add_target_parameters(e, f"{security}-p", creds.user, level, 3)
        c.add_target_address(
            e,
            f"{security}-a",
            domain,
            address,
            f"{security}-p",
            timeout=timeout * 100,  # hundredths of a second
            retryCount=retries,
        )
        self._targets[name] = key

    def _request(self, send: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(_engine, _handle, indication, status, index, var_binds, _ctx):
            if fut.done():
                return
            if indication:
                fut.set_exception(SnmpError(str(indication)))
            elif status:
                fut.set_exception(SnmpError(f"{status.prettyPrint()} at index {int(index)}"))
            else:
                fut.set_result(var_binds)

        send(self.engine, *args, done)
        return fut

    async def get(self, name: str, context: str, oids: Sequence[OID]) -> list[tuple[OID, Any]]:
        var_binds = [(self._name(o), self._null) for o in oids]
        got = await self._request(self._get.send_varbinds, f"hs-{name}-a", None, context, var_binds)
        return [(tuple(o), self.value(v)) for o, v in got]

    async def bulk(
        self, name: str, context: str, oids: Sequence[OID], non_repeaters: int, reps: int
    ) -> list[tuple[OID, Any]]:
        var_binds = [(self._name(o), self._null) for o in oids]
        got = await self._request(
            self._bulk.send_varbinds,
            f"hs-{name}-a",
            None,
            context,
            non_repeaters,
            reps,
            var_binds,
        )
        return [(tuple(o), self.value(v)) for o, v in got]

    def value(self, v: Any) -> Any:
        if isinstance(v, self._end):
            return END
        if isinstance(v, self._octets):
            return octets(bytes(v))
        if isinstance(v, self._oid):
            return tuple(v)
        try:
            return int(v)
        except (TypeError, ValueError):
            return v.prettyPrint()


OID = tuple[int, ...]
IN_FLIGHT = 16
END = ber.End(ber.END_OF_MIB_VIEW)  # no value at this OID (any of the three exceptions)


class BuiltinV2c(asyncio.DatagramProtocol):
    """SNMPv2c over one UDP socket with the project's own codec (collectors.snmp_ber).

    Requests are matched to responses by request id, source address and community;
    anything else that arrives is dropped. A request is retransmitted, with the same
    id, ``retries`` times, each after ``timeout`` seconds without an answer.
    """

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.sock: socket.socket | None = None
        self._pending: dict[int, tuple[asyncio.Future[Any], tuple[str, int], bytes]] = {}
        self._next_id = int.from_bytes(os.urandom(3), "big")
        self._oid_cache: dict[OID, bytes] = {}
        self.dropped = 0
        # requests in flight at once: bounds the burst of answers the socket must hold
        self._slots = asyncio.Semaphore(IN_FLIGHT)

    async def start(self, family: int = socket.AF_INET) -> None:
        loop = asyncio.get_running_loop()
        self.sock = client_socket(family)
        try:
            await loop.create_datagram_endpoint(lambda: self, sock=self.sock)
        except BaseException:
            self.sock.close()
            raise

    def close(self) -> None:
        """Close the socket; requests still waiting fail (also when the loop is closed)."""
        for fut, _, _ in self._pending.values():
            if not fut.done():
                fut.set_exception(SnmpError("the SNMP engine was closed"))
        if self.transport is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed already
                self.transport.close()
        if self.sock is not None:
            self.sock.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            rid, community, status, index, var_binds = ber.decode_response(data)
        except ber.BerError:
            self.dropped += 1
            return
        entry = self._pending.get(rid)
        # an IPv6 source is (host, port, flowinfo, scope id); the kernel's host form is
        # the canonical one, as the target's (``canonical_host``)
        if entry is None or entry[0].done() or entry[1] != addr[:2] or entry[2] != community:
            self.dropped += 1
            return
        if status:
            entry[0].set_exception(SnmpError(f"error status {status} at index {index}"))
        else:
            entry[0].set_result(var_binds)

    def _oid(self, oid: OID) -> bytes:
        body = self._oid_cache.get(oid)
        if body is None:
            body = ber.encode_oid(oid)
            if len(self._oid_cache) < 4096:  # the profiles' columns; cursors are not cached
                self._oid_cache[oid] = body
        return body

    async def request(
        self,
        target: Target,
        oids: Sequence[OID],
        non_repeaters: int = 0,
        reps: int = 0,
        bulk: bool = True,
    ) -> list[tuple[OID, Any]]:
        assert self.transport is not None
        self._next_id = (self._next_id + 1) & 0x7FFFFFFF
        rid = self._next_id
        community = target.community
        message = ber.encode_request(
            rid, community, [self._oid(o) for o in oids], non_repeaters, reps, bulk
        )
        async with self._slots:
            return await self._exchange(rid, message, target)

    async def _exchange(self, rid: int, message: bytes, target: Target) -> list[tuple[OID, Any]]:
        assert self.transport is not None
        community = target.community
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (fut, target.address, community)
        try:
            for _ in range(target.retries + 1):
                self.transport.sendto(message, target.address)
                try:
                    async with asyncio.timeout(target.timeout):
                        got = await asyncio.shield(fut)
                except TimeoutError:
                    continue
                return [(oid, octets(v) if isinstance(v, bytes) else v) for oid, v in got]
            raise SnmpError("No SNMP response received before timeout")
        finally:
            del self._pending[rid]
            if not fut.done():
                fut.cancel()


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    address: tuple[str, int]
    creds: Credentials
    timeout: float
    retries: int
    codec: str  # "builtin" (SNMPv2c only) | "pysnmp"

    @property
    def community(self) -> bytes:
        return self.creds.community.encode()

    @property
    def family(self) -> int:
        return family_of(self.address[0])


def family_of(host: str) -> int:
    """AF_INET6 for an IPv6 address, else AF_INET."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def canonical_host(host: str) -> str:
    """An IP address in the form the kernel reports a datagram's source in (``::1``)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def client_socket(family: int) -> socket.socket:
    """A non-blocking UDP socket bound to an ephemeral port of ``family``."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        # room for many switches' answers arriving at once (the kernel caps it at rmem_max)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Engine:
    """Every SNMP target of the agent in this event loop: one UDP socket per codec and family.

    SNMPv2c goes through the built-in codec (one socket per address family, one
    pending-request table each); SNMPv3, and SNMPv2c with ``codec = "pysnmp"``, through
    one shared pysnmp engine. The collectors that use it ``acquire`` it; when the last
    one ``release``s it, or its loop shuts down, it closes its sockets.
    """

    def __init__(self) -> None:
        self._targets: dict[str, Target] = {}
        self._pysnmp: PysnmpBackend | None = None
        self._builtin: dict[int, BuiltinV2c] = {}  # address family -> codec and socket
        self._users: set[int] = set()
        self.closed = False
        self._on_close: Callable[[], None] | None = None

    def acquire(self, user: object) -> None:
        self._users.add(id(user))

    def release(self, user: object) -> None:
        """``user`` is done with the engine; the last one gone closes it."""
        self._users.discard(id(user))
        if not self._users:
            self.close()

    def close(self) -> None:
        """Close every socket; idempotent, and safe after the loop is closed."""
        if self.closed:
            return
        self.closed = True
        for builtin in self._builtin.values():
            builtin.close()
        if self._pysnmp is not None:
            self._pysnmp.close()
        if self._on_close is not None:
            self._on_close()

    @property
    def sockets(self) -> list[socket.socket]:
        """The engine's open UDP sockets (for the tests and diagnostics)."""
        out = [b.sock for b in self._builtin.values() if b.sock is not None]
        if self._pysnmp is not None:
            out += list(self._pysnmp._sockets.values())
        return [s for s in out if s.fileno() != -1]

    def uses_pysnmp(self, target: Target) -> bool:
        return target.codec == "pysnmp" or target.creds.version != "2c"

    async def add_target(
        self,
        name: str,
        address: tuple[str, int],
        creds: Credentials,
        timeout: float,
        retries: int,
        codec: str = "builtin",
    ) -> Target:
        if self.closed:
            raise SnmpError("the SNMP engine was closed")
        address = (canonical_host(address[0]), address[1])
        target = Target(name, address, creds, timeout, retries, codec)
        if self._targets.get(name) != target:
            if self.uses_pysnmp(target):
                if self._pysnmp is None:
                    self._pysnmp = PysnmpBackend()
                self._pysnmp.add_target(name, address, creds, timeout, retries)
            self._targets[name] = target
        family = target.family
        if not self.uses_pysnmp(target) and family not in self._builtin:
            builtin = BuiltinV2c()
            await builtin.start(family)
            if family not in self._builtin and not self.closed:
                self._builtin[family] = builtin
            else:  # another collector started one meanwhile, or the engine closed
                builtin.close()
        return target

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self._targets)

    async def get(self, target: Target, oids: Sequence[OID]) -> list[tuple[OID, Any]]:
        if self.uses_pysnmp(target):
            assert self._pysnmp is not None
            return await self._pysnmp.get(target.name, target.creds.context, oids)
        return await self._codec(target).request(target, oids, bulk=False)

    async def bulk(
        self, target: Target, oids: Sequence[OID], non_repeaters: int, reps: int
    ) -> list[tuple[OID, Any]]:
        if self.uses_pysnmp(target):
            assert self._pysnmp is not None
            return await self._pysnmp.bulk(
                target.name, target.creds.context, oids, non_repeaters, reps
            )
        return await self._codec(target).request(target, oids, non_repeaters, reps)

    def _codec(self, target: Target) -> BuiltinV2c:
        builtin = self._builtin.get(target.family)
        if builtin is None:
            raise SnmpError("the SNMP engine was closed")
        return builtin

    async def walk(
        self,
        target: Target,
        columns: Sequence[str],
        max_repetitions: int,
        hints: Mapping[str, int] | None = None,
    ) -> tuple[dict[str, dict[Index, Any]], int]:
        """GETBULK walk of ``columns`` side by side; returns rows per column and requests sent.

        ``hints`` (rows per column of the last poll) shape the first request so that it
        usually reads everything at once without overshooting: columns that were empty go
        in as non-repeaters (one successor each, enough to see they are still empty),
        the others repeat as many times as the longest of them had rows, plus one.
        """
        prefixes = {c: tuple(int(x) for x in c.split(".")) for c in columns}
        result: dict[str, dict[Index, Any]] = {c: {} for c in columns}
        cursor = dict(prefixes)
        requests = 0
        first = hints is not None and all(c in hints for c in columns)
        while cursor:
            if first and hints is not None:
                single = [c for c in cursor if not hints[c]]
                repeat = [c for c in cursor if hints[c]]
                reps = min(1 + max((hints[c] for c in repeat), default=0), 1000)
                first = False
            else:
                single, repeat, reps = [], list(cursor), max_repetitions
            active = single + repeat
            got = await self.bulk(target, [cursor[c] for c in active], len(single), reps)
            requests += 1
            finished: set[str] = set()
            stepped = False
            width = len(repeat)
            n_single = len(single)
            for i, (arcs, value) in enumerate(got):
                if i < n_single:
                    column = single[i]
                elif width:
                    column = repeat[(i - n_single) % width]
                else:
                    break
                if column in finished:
                    continue
                prefix = prefixes[column]
                if (
                    value is END
                    or isinstance(value, ber.End)
                    or arcs[: len(prefix)] != prefix
                    or arcs <= cursor[column]
                ):
                    finished.add(column)
                    continue
                result[column][arcs[len(prefix) :]] = value
                cursor[column] = arcs
                stepped = True
            if not got:
                finished.update(active)
            for column in finished:
                del cursor[column]
            if not stepped and not finished:
                raise SnmpError("the agent's response made no progress")
        return result, requests


_ENGINES: dict[asyncio.AbstractEventLoop, Engine] = {}


def shared_engine() -> Engine:
    """The engine of the running event loop (created on first use).

    It lives until the last collector using it releases it or the loop shuts down
    (``collectors.loopscope``); engines of loops closed without an orderly shutdown are
    closed here, the next time any loop asks for one.
    """
    loop = asyncio.get_running_loop()
    eng = _ENGINES.get(loop)
    if eng is None:
        for old_loop, old in list(_ENGINES.items()):
            if old_loop.is_closed():
                old.close()
        from collectors.loopscope import at_shutdown

        eng = _ENGINES[loop] = Engine()
        guard = at_shutdown(eng.close)

        def forget() -> None:
            if _ENGINES.get(loop) is eng:
                del _ENGINES[loop]
            guard.disarm()

        eng._on_close = forget
    return eng


# --- the collector ---------------------------------------------------------------------


@dataclass
class SnmpCollector:
    name: str
    address: str
    port: int = 161
    creds: Credentials = field(default_factory=lambda: Credentials("2c"))
    profile: str = "auto"
    layout: Layout = Layout()
    ports: tuple[str, ...] = ()
    request_timeout: float = 1.0
    retries: int = 1
    max_repetitions: int = 50
    id_prefix: str = "switch"
    trap_listen: str = ""
    codec: str = "builtin"
    deadline: float = 5.0
    unreachable_failed_after: float = 0.0
    lldp_nics: tuple[str, ...] = ()
    nic_macs: Callable[[Sequence[str]], dict[str, str]] = sys_class_net_macs
    engine_factory: Callable[[], Engine] = shared_engine
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.base = f"{self.id_prefix}/{self.name}" if self.id_prefix else self.name
        self._profile: Profile | None = None if self.profile == "auto" else BY_NAME[self.profile]
        self._sys_descr = ""
        self._last: Snapshot | None = None
        self._reachable: bool | None = None
        self._silent_since: float | None = None  # clock() at the start of the first unanswered poll
        self._failed_logged = False
        self._trigger: Callable[[], None] | None = None
        self._listener: Any = None  # the trap listener this device is registered with
        self._engine_id = b""  # the device's snmpEngineID (for SNMPv3 traps)
        self.last_requests = 0
        self.last_rows: list[Row] = []
        self.last_oids = 0  # rows (OIDs) read by the last poll
        self._hints: dict[str, int] | None = None  # rows per column of the last poll
        self._engine: Any = None  # the engine this collector holds (acquired at its first poll)

    @property
    def target(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    def bind_trigger(self, trigger: Callable[[], None]) -> None:
        """The agent's way to poll this device at once (a trap arrived from it)."""
        self._trigger = trigger
        if self.trap_listen:
            from collectors.snmp_traps import register

            self._listener = register(
                self.trap_listen, self.address, self.name, self._on_trap, self.creds
            )

    def close(self) -> None:
        """Stop listening for this device's traps and release the SNMP engine (the agent
        drops the collector); the last collector of an engine closes its sockets."""
        if self._listener is not None:
            from collectors.snmp_traps import unregister

            unregister(self._listener, self.name)
            self._listener = None
            self._trigger = None
        self._release_engine()

    def _release_engine(self) -> None:
        eng, self._engine = self._engine, None
        if eng is not None:
            eng.release(self)

    def _acquire_engine(self) -> Any:
        """The engine of the running loop, held until ``close`` (or a newer loop's)."""
        eng = self.engine_factory()
        if eng is not self._engine:
            self._release_engine()  # e.g. the engine of a loop that is gone
            eng.acquire(self)
            self._engine = eng
        return eng

    def _on_trap(self, what: str) -> None:
        log.debug("%s: trap %s: polling now", self.name, what)
        if self._trigger is not None:
            self._trigger()

    async def collect(self, now: float) -> Snapshot:
        started = self.clock()
        try:
            async with asyncio.timeout(self.deadline):
                readings, groups, detail = await self._poll(now)
        except TimeoutError:
            return self._unreachable(now, started, f"no complete answer within {self.deadline:g} s")
        except (SnmpError, OSError) as e:
            return self._unreachable(now, started, self._redact(str(e)))
        took = self.clock() - started
        self._silent_since = None
        if self._reachable is False:
            log.info("%s (%s) answers again", self.name, self.target)
        self._reachable = True
        # no timing in the words: they are published only when they change
        switch = Reading(self.base, Kind.SWITCH, State.OK, now, detail, value=took, unit="s")
        snap = prefixed(Snapshot(tuple(readings), tuple(groups)), self.base)
        self._last = snap = replace(snap, readings=(switch, *snap.readings))
        return snap

    async def _poll(self, now: float) -> tuple[list[Reading], list[GroupSpec], str]:
        eng = self._acquire_engine()
        host = await _resolve(self.address)
        target = await eng.add_target(
            self.name, (host, self.port), self.creds, self.request_timeout, self.retries, self.codec
        )
        if self._listener is not None and self.creds.version == "3" and not self._engine_id:
            # SNMPv3 traps are authenticated with the sender's engine id: the device's
            got = await eng.get(target, [_arcs(SNMP_ENGINE_ID)])
            self._engine_id = engine_id_bytes(got[0][1]) if got else b""
            if self._engine_id:
                self._listener.add_v3(self.name, self.creds, self._engine_id)
        if self._profile is None:
            got = await eng.get(target, [_arcs(SYS_OBJECT_ID), _arcs(SYS_DESCR)])
            sysinfo = {".".join(map(str, o)): v for o, v in got if not isinstance(v, ber.End)}
            oid = _text(sysinfo.get(SYS_OBJECT_ID))
            self._sys_descr = (
                _text(sysinfo.get(SYS_DESCR)).splitlines()[0][:80] if sysinfo.get(SYS_DESCR) else ""
            )
            self._profile = choose(oid, self._sys_descr)
            log.info(
                "%s (%s): sysObjectID %s, profile %s",
                self.name,
                self.target,
                oid,
                self._profile.name,
            )
        profile = self._profile
        columns = list(profile.columns)
        if self.ports or self.lldp_nics:
            columns += [c for c in PORT_COLUMNS if c not in columns]
        if self.lldp_nics:
            columns += list(LLDP_COLUMNS)
        walked, requests = await eng.walk(target, columns, self.max_repetitions, self._hints)
        self._hints = {c: len(rows) for c, rows in walked.items()}
        self.last_requests = requests
        self.last_oids = sum(len(rows) for rows in walked.values())
        readings, groups, rows = interpret(profile, walked, now, self.layout)
        self.last_rows = rows
        if self.ports:
            readings += port_readings(walked, self.ports, now)
        if self.lldp_nics:
            readings += self._lldp_readings(walked, now)
        detail = f"answers (profile {profile.name})"
        if self._sys_descr:
            detail += f": {self._sys_descr}"
        return readings, groups, detail

    def _lldp_readings(self, walked: Walked, now: float) -> list[Reading]:
        found = lldp_ports(walked, self.nic_macs(self.lldp_nics))
        out = []
        for nic in self.lldp_nics:
            port = found.get(nic)
            if not port:
                detail = f"{nic}: not among this device's LLDP neighbours"
                out.append(Reading(f"lldp/{nic}", Kind.NIC, State.UNKNOWN, now, detail))
            elif port not in self.ports:
                (r,) = port_readings(walked, [port], now)
                out.append(replace(r, detail=f"local {nic} is cabled here (LLDP); {r.detail}"))
        return out

    def _unreachable(self, now: float, started: float, error: str) -> Snapshot:
        if self._reachable is not False:
            log.warning("%s (%s) does not answer: %s", self.name, self.target, error)
        self._reachable = False
        if self._silent_since is None:
            self._silent_since = started
        silent_for = self.clock() - self._silent_since
        state, words = silence_state(silent_for, self.unreachable_failed_after, error)
        if state == State.FAILED and not self._failed_logged:
            log.warning("%s (%s): %s: failed", self.name, self.target, words)
        self._failed_logged = state == State.FAILED
        switch = Reading(self.base, Kind.SWITCH, state, now, words)
        if self._last is None:
            return Snapshot((switch,))
        others = tuple(
            replace(
                r, state=State.UNKNOWN, detail=f"no answer: {error}", value=None, observed_at=now
            )
            for r in self._last.readings
            if r.id != self.base
        )
        return Snapshot((switch, *others), self._last.groups)

    def _redact(self, text: str) -> str:
        for secret in self.creds.secrets():
            text = text.replace(secret, "***")
        return text


SNMP_ENGINE_ID = "1.3.6.1.6.3.10.2.1.1.0"


def engine_id_bytes(value: Any) -> bytes:
    """snmpEngineID as the engine returned it (hex "80:00:..." or text) back to bytes."""
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str) or not value:
        return b""
    hexed = value.replace(":", "")
    if ":" in value and re.fullmatch(r"[0-9a-f]+", hexed):
        return bytes.fromhex(hexed)
    return value.encode()


def _arcs(oid: str) -> OID:
    return tuple(int(x) for x in oid.split("."))


def ip_literal(address: str) -> str | None:
    """The address in canonical form when it is an IPv4 or IPv6 literal, else None."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


async def _resolve(address: str) -> str:
    """An IP literal as is; a host name to its first address (IPv6 or IPv4, in the
    system's order of preference, RFC 6724 / gai.conf)."""
    literal = ip_literal(address)
    if literal is not None:
        return literal
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            address, None, family=socket.AF_UNSPEC, type=socket.SOCK_DGRAM
        )
    except OSError as e:
        raise SnmpError(f"cannot resolve {address}: {e.strerror or e}") from None
    for family, *_, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            return str(sockaddr[0])
    raise SnmpError(f"cannot resolve {address}: no IPv4 or IPv6 address")


def check_address(name: str, address: str) -> str:
    """The ``address`` option: an IPv4 / IPv6 literal (brackets allowed) or a host name."""
    bare = address.strip()
    if bare.startswith("[") and bare.endswith("]"):
        bare = bare[1:-1]
    literal = ip_literal(bare)
    if literal is not None:
        return literal
    if ":" in bare or re.fullmatch(r"[0-9.]+", bare):
        raise ValueError(
            f"collector {name}: address: {address!r} is not a valid IPv4 or IPv6 address"
        )
    if not re.fullmatch(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?", bare):
        raise ValueError(
            f"collector {name}: address: expected an IPv4 or IPv6 address or a host name, "
            f"got {address!r}"
        )
    return bare


def split_listen(value: str) -> tuple[str, str, bool]:
    """HOST:PORT into host (brackets removed), port text, and whether it had brackets."""
    host, _, port = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    return (host[1:-1] if bracketed else host), port, bracketed


def listen_address(name: str, value: str) -> tuple[str, int]:
    """``trap_listen``: HOST:PORT, an IPv6 host in brackets ([::1]:162)."""
    host, port, bracketed = split_listen(value)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"collector {name}: trap_listen: expected HOST:PORT (an IPv6 address in "
            f"brackets, e.g. [::]:162), got {value!r}"
        )
    literal = ip_literal(host)
    if ":" in host and (literal is None or not bracketed):
        raise ValueError(
            f"collector {name}: trap_listen: expected HOST:PORT with an IPv6 address in "
            f"brackets, e.g. [::]:162, got {value!r}"
        )
    return literal or host, int(port)


def credentials(name: str, options: Mapping[str, Any]) -> Credentials:
    """Credentials from the options, secrets read from their (mode-checked) files."""
    if options["version"] == "2c":
        if options["community_file"] and options["community"]:
            raise ValueError(f"collector {name}: set community or community_file, not both")
        community = options["community"]
        if options["community_file"]:
            community = secret_option(name, "community_file", options["community_file"])
        if not community:
            raise ValueError(f"collector {name}: version 2c needs community or community_file")
        return Credentials("2c", community=community)
    if options["community"] or options["community_file"]:
        raise ValueError(f"collector {name}: community is for version 2c; version 3 uses user")
    if not options["user"]:
        raise ValueError(f"collector {name}: version 3 needs user")
    level = options["security_level"]
    auth = priv = ""
    if level in ("authPriv", "authNoPriv"):
        if not options["auth_key_file"]:
            raise ValueError(f"collector {name}: security_level {level} needs auth_key_file")
        auth = secret_option(name, "auth_key_file", options["auth_key_file"])
    if level == "authPriv":
        if not options["priv_key_file"]:
            raise ValueError(f"collector {name}: security_level authPriv needs priv_key_file")
        priv = secret_option(name, "priv_key_file", options["priv_key_file"])
    for key, value in (("auth_key_file", auth), ("priv_key_file", priv)):
        if value and len(value) < 8:
            raise ValueError(
                f"collector {name}: {key}: SNMPv3 passphrases have at least 8 characters"
            )
    return Credentials(
        "3",
        user=options["user"],
        security_level=level,
        auth_protocol=options["auth_protocol"],
        auth_key=auth,
        priv_protocol=options["priv_protocol"],
        priv_key=priv,
        context=options["context"],
    )


def create(name: str, options: Mapping[str, Any]) -> SnmpCollector:
    address = check_address(name, options["address"])
    if options["trap_listen"]:
        listen_address(name, options["trap_listen"])
    if options["max_repetitions"] < 1:
        raise ValueError(f"collector {name}: max_repetitions: expected at least 1")
    if options["request_timeout"] <= 0:
        raise ValueError(f"collector {name}: request_timeout: expected a number > 0")
    if options["deadline"] <= 0:
        raise ValueError(f"collector {name}: deadline: expected a number > 0")
    if options["unreachable_failed_after"] < 0:
        raise ValueError(f"collector {name}: unreachable_failed_after: expected a number >= 0")
    return SnmpCollector(
        name=name,
        address=address,
        port=options["port"],
        creds=credentials(name, options),
        profile=options["profile"],
        layout=Layout(options["psu_required"], options["fan_required"], options["fan_slots"]),
        ports=tuple(options["ports"]),
        request_timeout=options["request_timeout"],
        retries=options["retries"],
        max_repetitions=options["max_repetitions"],
        id_prefix=options["id_prefix"].strip("/"),
        trap_listen=options["trap_listen"],
        lldp_nics=tuple(options["lldp_nics"]),
        codec=options["codec"],
        deadline=options["deadline"],
        unreachable_failed_after=options["unreachable_failed_after"],
    )


def describe_rows(rows: Iterable[Row]) -> list[tuple[str, str, str, str]]:
    """(component, state, source, OID) per row: for `hotspare status`-like listings and tests."""
    return [(r.id, r.state.value, r.source, " ".join(r.oids)) for r in rows]
