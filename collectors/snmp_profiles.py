"""Device profiles for the SNMP collector: which columns to walk and what their values mean.

The human-written semantics. A profile names MIB objects (``"MODULE::object"``) and maps
the MIB's own enumeration labels to observed states; the numbers (OIDs, label -> value)
come from ``collectors.snmp_mib_tables``, which mibs/generate.py compiles from the MIB
files in mibs/ (mibs/README.md says where each comes from). The tables are built at
import: a name or label the MIBs do not define, or a value of the MIB's enumeration a
value table leaves unmapped, raises ProfileError. The profiles whose MIB is not in mibs/
(aruba-cx, hpe-ilo, foundry, supermicro) still carry numbers, each with the MIB object it
names. Nothing here is
parsed at run time. The observed state is our reading of the vendor's word:

=============  =====================================================================
observed       vendor words (examples)
=============  =====================================================================
OK             normal, ok, up, on, online, psPowered, Supply, good, Present: OK
WARNING        warning, degraded, nonCritical, testing, on (fan failed), underspeed
FAILED         critical, failed, failure, down, off (...), notFunctioning, abnormal
ABSENT         notPresent, absent, empty, removed, psNotPresent, Not Present
UNKNOWN        unknown, other, a value the MIB does not define
=============  =====================================================================

Severity (for comparison with other monitoring systems): OK 0, WARNING 1, FAILED 2,
ABSENT 2 or 3 (a missing part is not serving; others call it critical or unknown),
UNKNOWN 3.

A profile is chosen by sysObjectID prefix (longest match), then by a sysDescr pattern;
without a match the standards-only profile is used (ENTITY-MIB classes powerSupply and
fan, their ENTITY-STATE-MIB operational state, else the worst ENTITY-SENSOR-MIB status of
the sensors inside them). Group members come from the first source in a profile that
has rows for that group; later sources of the same group add components only (a Cisco
Catalyst 9400 lists each power supply in both CISCO-ENTITY-FRU-CONTROL-MIB and, as two
entities, in CISCO-ENVMON-MIB).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from collectors import snmp_mib_tables as _mib
from collectors.base import Kind, State, Verdict


class ProfileError(Exception):
    """A profile names a MIB object or enumeration label the MIBs in mibs/ do not define,
    or leaves one of the MIB's enumeration values unmapped (raised at import)."""


def oid(ref: str) -> str:
    """The numeric OID of ``"MODULE::object"``, from the MIBs compiled by mibs/generate.py."""
    try:
        return _mib.OBJECTS[ref]
    except KeyError:
        raise ProfileError(
            f"{ref}: not defined in the MIB files in mibs/ (add the MIB, run mibs/generate.py)"
        ) from None


def enumeration(ref: str) -> dict[str, int]:
    """The enumeration (label -> number) of ``"MODULE::object"`` or ``"MODULE::TC"``."""
    try:
        return dict(_mib.ENUMS[ref])
    except KeyError:
        raise ProfileError(f"{ref}: the MIB defines no enumeration for it") from None


def states(ref: str, words: Mapping[str, State]) -> StateMap:
    """A value table from the MIB's own labels: every label the MIB defines must be
    mapped, and every mapped label must be the MIB's."""
    enum = enumeration(ref)
    unknown = sorted(set(words) - set(enum))
    if unknown:
        raise ProfileError(f"{ref}: the MIB defines no value {', '.join(unknown)}")
    unmapped = sorted(set(enum) - set(words), key=enum.__getitem__)
    if unmapped:
        raise ProfileError(
            f"{ref}: the profile does not map {', '.join(f'{w}({enum[w]})' for w in unmapped)}"
        )
    return {enum[label]: (state, label) for label, state in words.items()}


def values(ref: str, *labels: str) -> frozenset[int]:
    """The numbers of some of an enumeration's labels."""
    enum = enumeration(ref)
    missing = [label for label in labels if label not in enum]
    if missing:
        raise ProfileError(f"{ref}: the MIB defines no value {', '.join(missing)}")
    return frozenset(enum[label] for label in labels)


def _column(ref: str, entry: str) -> int:
    parent, _, number = oid(ref).rpartition(".")
    if parent != entry:
        raise ProfileError(f"{ref} ({oid(ref)}) is not a column of the entry {entry}")
    return int(number)


class Role(enum.StrEnum):
    """What a row is: a member of the PSU or fan group, or a component of its own."""

    PSU = "psu"
    FAN = "fan"
    OTHER = "other"  # chassis alarm, probe, stack member: a component, in no group


StateMap = Mapping[int, tuple[State, str]]

# --- standard columns (RFC 6933 ENTITY-MIB, RFC 3433 ENTITY-SENSOR-MIB, RFC 4268 ENTITY-STATE-MIB)
SYS_DESCR = oid("SNMPv2-MIB::sysDescr") + ".0"
SYS_OBJECT_ID = oid("SNMPv2-MIB::sysObjectID") + ".0"
ENT_PHYSICAL_CONTAINED_IN = oid("ENTITY-MIB::entPhysicalContainedIn")
ENT_PHYSICAL_CLASS = oid("ENTITY-MIB::entPhysicalClass")
ENT_PHYSICAL_NAME = oid("ENTITY-MIB::entPhysicalName")
ENT_PHY_SENSOR_OPER_STATUS = oid("ENTITY-SENSOR-MIB::entPhySensorOperStatus")
ENT_STATE_OPER = oid("ENTITY-STATE-MIB::entStateOper")
ENT_CLASS_POWER_SUPPLY = enumeration("ENTITY-MIB::entPhysicalClass")["powerSupply"]
ENT_CLASS_FAN = enumeration("ENTITY-MIB::entPhysicalClass")["fan"]

ENT_SENSOR_STATUS = states(  # EntitySensorStatus
    "ENTITY-SENSOR-MIB::entPhySensorOperStatus",
    {"ok": State.OK, "unavailable": State.UNKNOWN, "nonoperational": State.FAILED},
)
ENT_OPER_STATE = states(  # EntityOperState
    "ENTITY-STATE-MIB::entStateOper",
    {
        "unknown": State.UNKNOWN,
        "disabled": State.FAILED,
        "enabled": State.OK,
        "testing": State.WARNING,
    },
)

# --- IF-MIB (RFC 2863) and LLDP-MIB (IEEE 802.1AB)
IF_DESCR = oid("IF-MIB::ifDescr")
IF_ADMIN_STATUS = oid("IF-MIB::ifAdminStatus")
IF_OPER_STATUS = oid("IF-MIB::ifOperStatus")
IF_NAME = oid("IF-MIB::ifName")
IF_STATUS_WORDS = {n: label for label, n in enumeration("IF-MIB::ifOperStatus").items()}
LLDP_LOC_PORT_DESC = oid("LLDP-MIB::lldpLocPortDesc")
LLDP_LOC_PORT_ID = oid("LLDP-MIB::lldpLocPortId")
LLDP_REM_CHASSIS_ID = oid("LLDP-MIB::lldpRemChassisId")
LLDP_REM_PORT_ID = oid("LLDP-MIB::lldpRemPortId")
LLDP_REM_PORT_DESC = oid("LLDP-MIB::lldpRemPortDesc")
LLDP_REM_SYS_NAME = oid("LLDP-MIB::lldpRemSysName")


@dataclass(frozen=True, slots=True)
class StatusTable:
    """One status column of a vendor table (a scalar is a table with the single index 0).

    ``entry`` is the table's entry OID; columns are numbers under it. A row's component
    id is ``<id_prefix>/<index>`` (index components joined by "."), its name the ``name``
    column, else ``name_template`` filled with ``{index}`` and ``{last}`` (the last index
    component), else, for tables indexed by entPhysicalIndex, entPhysicalName.
    ``present`` with ``absent_values``: a presence column that overrides the status.
    ``type_column`` with ``types``: keep only rows whose type is one of them.
    ``entity_class``: keep only rows whose index is an entity of this entPhysicalClass.
    ``first_index``: the fallback of ``types`` for devices without the type column (Junos
    numbers its containers: 2 power supplies, 4 fans).
    """

    mib: str
    object: str  # the status column's MIB name
    role: Role
    id_prefix: str
    entry: str
    status: int
    states: StateMap
    name: int | None = None
    name_template: str = ""
    present: int | None = None
    absent_values: frozenset[int] = frozenset()
    type_column: int | None = None
    types: frozenset[int] = frozenset()
    entity_class: int | None = None
    kind: Kind | None = None  # component kind; default from the role
    # when the device has no type column at all: keep rows whose first index is one of these
    first_index: frozenset[int] = frozenset()

    def column(self, number: int) -> str:
        return f"{self.entry}.{number}"

    @property
    def columns(self) -> tuple[str, ...]:
        numbers = [self.status, self.name, self.present, self.type_column]
        own = tuple(self.column(n) for n in numbers if n is not None)
        if self.entity_class is not None:
            own += (ENT_PHYSICAL_CLASS, ENT_PHYSICAL_NAME)
        return own


def table(
    status: str,
    role: Role,
    id_prefix: str,
    words: Mapping[str, State] | StateMap,
    *,
    name: str | None = None,
    present: str | None = None,
    absent: tuple[str, ...] = (),
    type_column: str | None = None,
    types: frozenset[int] = frozenset(),
    **more: object,
) -> StatusTable:
    """A StatusTable from MIB names: ``status`` is ``"MODULE::column"``; ``name``,
    ``present`` and ``type_column`` are columns of the same table (object names of the
    same module); ``words`` maps every label of the status column's enumeration (or,
    for a column the MIB gives no enumeration, value -> (state, word) by number);
    ``absent`` are labels of the ``present`` column."""
    module, _, obj = status.partition("::")
    entry = oid(status).rpartition(".")[0]

    def col(name_: str | None) -> int | None:
        return None if name_ is None else _column(f"{module}::{name_}", entry)

    if all(isinstance(k, str) for k in words):
        value_table = states(status, words)  # type: ignore[arg-type]
    elif status in _mib.ENUMS:
        raise ProfileError(f"{status}: the MIB enumerates its values; map them by label")
    else:
        value_table = words  # type: ignore[assignment]
    return StatusTable(
        module,
        obj,
        role,
        id_prefix,
        entry,
        _column(status, entry),
        value_table,  # type: ignore[arg-type]
        name=col(name),
        present=col(present),
        absent_values=values(f"{module}::{present}", *absent) if present else frozenset(),
        type_column=col(type_column),
        types=types,
        **more,  # type: ignore[arg-type]
    )


@dataclass(frozen=True, slots=True)
class RedundancyStatement:
    """A column in which the device states the redundancy of its PSU or fan group.

    ``verdicts`` maps each value to the group verdict it states (None: it states
    nothing). Rows whose ``present`` column says absent say nothing either. The group's
    stated verdict is the worst row's; its reason names the rows and the device's word.
    """

    mib: str
    object: str
    role: Role
    column_oid: str
    verdicts: Mapping[int, tuple[Verdict | None, str]]
    name: str | None = None  # a column OID giving the row's name
    name_template: str = ""  # else this, with {index} and {last}
    present: str | None = None  # a column OID
    absent_values: frozenset[int] = frozenset()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for c in (self.column_oid, self.name, self.present) if c is not None)


def statement(
    column: str,
    role: Role,
    words: Mapping[str, Verdict | None],
    *,
    name: str | None = None,
    name_template: str = "",
    present: str | None = None,
    absent: tuple[str, ...] = (),
) -> RedundancyStatement:
    """A RedundancyStatement from MIB names (``column`` is ``"MODULE::object"``; every
    label of its enumeration must be given a verdict or None)."""
    module, _, obj = column.partition("::")
    mapped = states(column, dict.fromkeys(words, State.UNKNOWN))  # checks the labels
    return RedundancyStatement(
        module,
        obj,
        role,
        oid(column),
        {n: (words[label], label) for n, (_, label) in mapped.items()},
        name=oid(name if "::" in name else f"{module}::{name}") if name else None,
        name_template=name_template,
        present=oid(f"{module}::{present}") if present else None,
        absent_values=values(f"{module}::{present}", *absent) if present else frozenset(),
    )


@dataclass(frozen=True, slots=True)
class EntitySource:
    """ENTITY-MIB powerSupply / fan entities with their standard state (the fallback)."""

    roles: Mapping[int, Role] = field(
        default_factory=lambda: {ENT_CLASS_POWER_SUPPLY: Role.PSU, ENT_CLASS_FAN: Role.FAN}
    )
    mib: str = "ENTITY-MIB"
    object: str = "entPhysicalClass"

    @property
    def columns(self) -> tuple[str, ...]:
        return (
            ENT_PHYSICAL_CLASS,
            ENT_PHYSICAL_NAME,
            ENT_PHYSICAL_CONTAINED_IN,
            ENT_STATE_OPER,
            ENT_PHY_SENSOR_OPER_STATUS,
        )


Source = StatusTable | EntitySource


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    description: str
    sys_object_ids: tuple[str, ...] = ()  # prefixes, numeric, no leading dot
    sys_descr: str = ""  # regular expression, searched case-insensitively
    sources: tuple[Source, ...] = ()
    # where the device states the PSU / fan group's redundancy itself
    statements: tuple[RedundancyStatement, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for s in (*self.sources, *self.statements):
            seen.update(dict.fromkeys(s.columns))
        return tuple(seen)


# --- value tables ----------------------------------------------------------------------

CISCO_ENVMON_STATE = {  # CISCO-ENVMON-MIB CiscoEnvMonState
    "normal": State.OK,
    "warning": State.WARNING,
    "critical": State.FAILED,
    "shutdown": State.FAILED,
    "notPresent": State.ABSENT,
    "notFunctioning": State.FAILED,
}
CISCO_FRU_POWER = {  # CISCO-ENTITY-FRU-CONTROL-MIB PowerOperType
    "offEnvOther": State.FAILED,
    "on": State.OK,
    "offAdmin": State.FAILED,
    "offDenied": State.FAILED,
    "offEnvPower": State.FAILED,
    "offEnvTemp": State.FAILED,
    "offEnvFan": State.FAILED,
    "failed": State.FAILED,
    "onButFanFail": State.WARNING,
    "offCooling": State.FAILED,
    "offConnectorRating": State.FAILED,
    "onButInlinePowerFail": State.WARNING,
}
CISCO_FAN_TRAY = {  # cefcFanTrayOperStatus
    "unknown": State.UNKNOWN,
    "up": State.OK,
    "down": State.FAILED,
    "warning": State.WARNING,
}
# CISCO-ENTITY-FRU-CONTROL-MIB PowerRedundancyType as cefcPowerRedundancyOperMode: the
# power supply group's own word on its redundancy (combined: outputs added, none spare)
CISCO_POWER_REDUNDANCY = {
    "notsupported": None,
    "redundant": Verdict.REDUNDANT,
    "combined": Verdict.DEGRADED,
    "nonRedundant": Verdict.DEGRADED,
    "psRedundant": Verdict.REDUNDANT,
    "inPwrSrcRedundant": Verdict.REDUNDANT,
    "psRedundantSingleInput": Verdict.REDUNDANT,
}
# cswRingRedundant, an SNMPv2-TC TruthValue: is the stack ring redundant
TRUTH_REDUNDANT = {"true": State.OK, "false": State.WARNING}
JNX_FRU_STATE = {  # JUNIPER-MIB jnxFruState
    "unknown": State.UNKNOWN,
    "empty": State.ABSENT,
    "present": State.WARNING,
    "ready": State.OK,
    "announceOnline": State.OK,
    "online": State.OK,
    "anounceOffline": State.WARNING,
    "offline": State.FAILED,
    "diagnostic": State.WARNING,
    "standby": State.OK,
}
JNX_FRU_POWER_ENTRY_MODULE = enumeration("JUNIPER-MIB::jnxFruType")["powerEntryModule"]
JNX_FRU_FAN = enumeration("JUNIPER-MIB::jnxFruType")["fan"]
JNX_OPERATING_STATE = {  # JUNIPER-MIB jnxOperatingState
    "unknown": State.UNKNOWN,
    "running": State.OK,
    "ready": State.OK,
    "reset": State.WARNING,
    "runningAtFullSpeed": State.WARNING,
    "down": State.FAILED,
    "standby": State.OK,
}
JNX_RED_ALARM = {"other": State.UNKNOWN, "off": State.OK, "on": State.FAILED}
JNX_YELLOW_ALARM = {"other": State.UNKNOWN, "off": State.OK, "on": State.WARNING}
DELL_OS10_OPER = {  # DELLEMC-OS10-TC-MIB Os10CmnOperStatus
    "up": State.OK,
    "down": State.FAILED,
    "testing": State.WARNING,
    "unknown": State.UNKNOWN,
    "dormant": State.WARNING,
    "notPresent": State.ABSENT,
    "lowerLayerDown": State.FAILED,
    "failed": State.FAILED,
}
DELL_NET_OPER = {  # DELL-NETWORKING-CHASSIS-MIB (OS9/FTOS) power supply / fan tray status
    "up": State.OK,
    "down": State.FAILED,
    "absent": State.ABSENT,
}
FOUNDRY_OPER: StateMap = {  # FOUNDRY-SN-AGENT-MIB snChasPwrSupplyOperStatus/snChasFanOperStatus
    1: (State.UNKNOWN, "other"),
    2: (State.OK, "normal"),
    3: (State.FAILED, "failure"),
}
HP_PS_STATE = {  # HP's POWERSUPPLY-MIB HpicfDcPsState
    "psNotPresent": State.ABSENT,
    "psNotPlugged": State.FAILED,
    "psPowered": State.OK,
    "psFailed": State.FAILED,
    "psPermFailure": State.FAILED,
    "psMax": State.UNKNOWN,
    "psAuxFailure": State.FAILED,
    "psNotPowered": State.FAILED,
    "psAuxNotPowered": State.FAILED,
}
HP_FAN_STATE = {  # HP's FAN-MIB HpicfDcFanState
    "failed": State.FAILED,
    "removed": State.ABSENT,
    "off": State.FAILED,
    "underspeed": State.WARNING,
    "overspeed": State.WARNING,
    "ok": State.OK,
    "maxstate": State.UNKNOWN,
}
HP_SENSOR_STATUS = {  # HP-ICF-CHASSIS hpicfSensorStatus
    "unknown": State.UNKNOWN,
    "bad": State.FAILED,
    "warning": State.WARNING,
    "good": State.OK,
    "notPresent": State.ABSENT,
}
# hpicfSensorObjectId is an OID (the sensor's kind, from HP-ICF-OID); rows are kept by its
# last sub-identifier, as for any OID-valued type column
HP_SENSOR_TYPES = frozenset(
    int(oid(f"HP-ICF-OID::{kind}").rpartition(".")[2])
    for kind in ("icfPowerSupplySensor", "icfFanSensor")
)
ARUBA_PSU_STATE: StateMap = {  # ARUBAWIRED-POWERSUPPLY-MIB, state as an enumeration
    1: (State.OK, "ok"),
    2: (State.ABSENT, "absent"),
    3: (State.FAILED, "fault input"),
    4: (State.FAILED, "fault output"),
    5: (State.WARNING, "fault POE"),
    6: (State.FAILED, "fault no recovery"),
    7: (State.WARNING, "alert"),
    8: (State.UNKNOWN, "unknown"),
    9: (State.UNKNOWN, "unsupported"),
    10: (State.WARNING, "warning"),
    11: (State.UNKNOWN, "init"),
    12: (State.ABSENT, "empty"),
    13: (State.WARNING, "fault airflow"),
    14: (State.WARNING, "fault redundancy"),
    15: (State.WARNING, "fault mixed input"),
    16: (State.FAILED, "over voltage"),
    17: (State.FAILED, "under voltage"),
}
HUAWEI_FAN_STATE = {  # HUAWEI-ENTITY-EXTENT-MIB hwEntityFanState
    "normal": State.OK,
    "abnormal": State.FAILED,
}
HUAWEI_PWR_STATE = {  # HUAWEI-ENTITY-EXTENT-MIB hwEntityPwrState
    "supply": State.OK,
    "notSupply": State.FAILED,
    "sleep": State.WARNING,
    "unknown": State.UNKNOWN,
}
HUAWEI_STACK_ROLE = {  # HUAWEI-STACK-MIB hwMemberStackRole: any role is a member serving
    "master": State.OK,
    "standby": State.OK,
    "slave": State.OK,
}
DELL_STATUS = {  # IDRAC-MIB-SMIv2 ObjectStatusEnum
    "other": State.UNKNOWN,
    "unknown": State.UNKNOWN,
    "ok": State.OK,
    "nonCritical": State.WARNING,
    "critical": State.FAILED,
    "nonRecoverable": State.FAILED,
}
DELL_PROBE_STATUS = {  # IDRAC-MIB-SMIv2 StatusProbeEnum
    "other": State.UNKNOWN,
    "unknown": State.UNKNOWN,
    "ok": State.OK,
    "nonCriticalUpper": State.WARNING,
    "criticalUpper": State.FAILED,
    "nonRecoverableUpper": State.FAILED,
    "nonCriticalLower": State.WARNING,
    "criticalLower": State.FAILED,
    "nonRecoverableLower": State.FAILED,
    "failed": State.FAILED,
}
# IDRAC-MIB-SMIv2 StatusRedundancyEnum: the power and cooling units' own redundancy verdict
# (notRedundant: "does not apply or object is not redundant", a group without a spare)
DELL_REDUNDANCY = {
    "other": None,
    "unknown": None,
    "full": Verdict.REDUNDANT,
    "degraded": Verdict.DEGRADED,
    "lost": Verdict.DEGRADED,
    "notRedundant": Verdict.DEGRADED,
    "redundancyOffline": Verdict.DEGRADED,
}
# HPE's CPQHLTH-MIB is not in mibs/ (its licence statement requires a licence from HPE for
# copying; mibs/README.md), so the iLO profile carries its numbers by hand, each beside the
# object it names, as the MIB defines them (checked against the iLO recordings).
CPQ_FAN_ENTRY = "1.3.6.1.4.1.232.6.2.6.7.1"  # cpqHeFltTolFanEntry
CPQ_PSU_ENTRY = "1.3.6.1.4.1.232.6.2.9.3.1"  # cpqHeFltTolPowerSupplyEntry
CPQ_PWR_SUPPLY_CONDITION = "1.3.6.1.4.1.232.6.2.9.1"  # cpqHeFltTolPwrSupplyCondition (scalar)
CPQ_CONDITION: StateMap = {  # cpqHeFltTolFanCondition, cpqHeFltTolPowerSupplyCondition
    1: (State.UNKNOWN, "other"),
    2: (State.OK, "ok"),
    3: (State.WARNING, "degraded"),
    4: (State.FAILED, "failed"),
}
CPQ_ABSENT = frozenset({2})  # cpqHeFltTol*Present: other(1), absent(2), present(3)
# cpqHeFltTolPowerSupplyRedundant / cpqHeFltTolFanRedundant
CPQ_REDUNDANT = {
    1: (None, "other"),
    2: (Verdict.DEGRADED, "notRedundant"),
    3: (Verdict.REDUNDANT, "redundant"),
}
# cpqHeFltTolPwrSupplyCondition, the power subsystem's condition: degraded or failed means
# redundancy is gone; whether the group still serves is the members' count to say
CPQ_SUBSYSTEM = {
    1: (None, "other"),
    2: (None, "ok"),
    3: (Verdict.DEGRADED, "degraded"),
    4: (Verdict.DEGRADED, "failed"),
}
SUPERMICRO_PSU: StateMap = {
    0: (State.ABSENT, "Not Present"),
    1: (State.OK, "Present: OK"),
    3: (State.FAILED, "Present: Failed"),
}
SUPERMICRO_POWER: StateMap = {
    0: (State.FAILED, "Off"),
    1: (State.OK, "On"),
    2: (State.WARNING, "Reset"),
}


# --- sources ---------------------------------------------------------------------------

CISCO_FRU_POWER_TABLE = table(
    "CISCO-ENTITY-FRU-CONTROL-MIB::cefcFRUPowerOperStatus",
    Role.PSU,
    "psu",
    CISCO_FRU_POWER,
    entity_class=ENT_CLASS_POWER_SUPPLY,
)
CISCO_FAN_TRAY_TABLE = table(
    "CISCO-ENTITY-FRU-CONTROL-MIB::cefcFanTrayOperStatus",
    Role.FAN,
    "fan",
    CISCO_FAN_TRAY,
    entity_class=ENT_CLASS_FAN,
)
CISCO_ENVMON_SUPPLY = table(
    "CISCO-ENVMON-MIB::ciscoEnvMonSupplyState",
    Role.PSU,
    "psu",
    CISCO_ENVMON_STATE,
    name="ciscoEnvMonSupplyStatusDescr",
)
CISCO_ENVMON_FAN = table(
    "CISCO-ENVMON-MIB::ciscoEnvMonFanState",
    Role.FAN,
    "fan",
    CISCO_ENVMON_STATE,
    name="ciscoEnvMonFanStatusDescr",
)
CISCO_STACK_RING = table(
    "CISCO-STACKWISE-MIB::cswRingRedundant",
    Role.OTHER,
    "stack-ring",
    TRUTH_REDUNDANT,
    name_template="stack ring redundant",
)
CISCO = (
    CISCO_FRU_POWER_TABLE,
    CISCO_ENVMON_SUPPLY,
    CISCO_FAN_TRAY_TABLE,
    CISCO_ENVMON_FAN,
    CISCO_STACK_RING,
)
CISCO_STATEMENTS = (
    statement(
        "CISCO-ENTITY-FRU-CONTROL-MIB::cefcPowerRedundancyOperMode",
        Role.PSU,
        CISCO_POWER_REDUNDANCY,
        name="ENTITY-MIB::entPhysicalName",
        name_template="power supply group {index}",
    ),
)

JUNIPER = (
    table(
        "JUNIPER-MIB::jnxFruState",
        Role.PSU,
        "psu",
        JNX_FRU_STATE,
        name="jnxFruName",
        type_column="jnxFruType",
        types=frozenset({JNX_FRU_POWER_ENTRY_MODULE}),
        first_index=frozenset({2}),
    ),
    table(
        "JUNIPER-MIB::jnxFruState",
        Role.FAN,
        "fan",
        JNX_FRU_STATE,
        name="jnxFruName",
        type_column="jnxFruType",
        types=frozenset({JNX_FRU_FAN}),
        first_index=frozenset({4}),
    ),
    # the operating table, by container (2 power supplies, 4 fans): same ids as the FRU
    # rows, so the worse of the two states is reported; a fan at full speed is a warning
    table(
        "JUNIPER-MIB::jnxOperatingState",
        Role.PSU,
        "psu",
        JNX_OPERATING_STATE,
        name="jnxOperatingDescr",
        first_index=frozenset({2}),
    ),
    table(
        "JUNIPER-MIB::jnxOperatingState",
        Role.FAN,
        "fan",
        JNX_OPERATING_STATE,
        name="jnxOperatingDescr",
        first_index=frozenset({4}),
    ),
    table(
        "JUNIPER-ALARM-MIB::jnxRedAlarmState",
        Role.OTHER,
        "alarm/red",
        JNX_RED_ALARM,
        name_template="chassis red alarm",
        kind=Kind.OTHER,
    ),
    table(
        "JUNIPER-ALARM-MIB::jnxYellowAlarmState",
        Role.OTHER,
        "alarm/yellow",
        JNX_YELLOW_ALARM,
        name_template="chassis yellow alarm",
    ),
)

DELL_OS10 = (
    table(
        "DELLEMC-OS10-CHASSIS-MIB::os10PowerSupplyOperStatus",
        Role.PSU,
        "psu",
        DELL_OS10_OPER,
        name_template="PSU {last}",
    ),
    table(
        "DELLEMC-OS10-CHASSIS-MIB::os10FanTrayOperStatus",
        Role.FAN,
        "fantray",
        DELL_OS10_OPER,
        name_template="Fan Tray {last}",
    ),
    table(
        "DELLEMC-OS10-CHASSIS-MIB::os10FanOperStatus",
        Role.FAN,
        "fan",
        DELL_OS10_OPER,
        name_template="Fan {last}",
    ),
)

DELL_OS9 = (
    table(
        "DELL-NETWORKING-CHASSIS-MIB::dellNetPowerSupplyOperStatus",
        Role.PSU,
        "psu",
        DELL_NET_OPER,
        name_template="PSU {index}",
    ),
    table(
        "DELL-NETWORKING-CHASSIS-MIB::dellNetFanTrayOperStatus",
        Role.FAN,
        "fantray",
        DELL_NET_OPER,
        name_template="Fan tray {index}",
    ),
)

FOUNDRY = (
    StatusTable(
        "FOUNDRY-SN-AGENT-MIB",
        "snChasPwrSupplyOperStatus",
        Role.PSU,
        "psu",
        "1.3.6.1.4.1.1991.1.1.1.2.1.1",
        3,
        FOUNDRY_OPER,
        name=2,
        name_template="Power Supply {index}",
    ),
    StatusTable(
        "FOUNDRY-SN-AGENT-MIB",
        "snChasFanOperStatus",
        Role.FAN,
        "fan",
        "1.3.6.1.4.1.1991.1.1.1.3.1.1",
        3,
        FOUNDRY_OPER,
        name=2,
    ),
)

HP_PROCURVE = (
    table(
        "POWERSUPPLY-MIB::hpicfPsState",
        Role.PSU,
        "psu",
        HP_PS_STATE,
        name_template="Power Supply #{index}",
    ),
    table(
        "FAN-MIB::hpicfFanState",
        Role.FAN,
        "fan",
        HP_FAN_STATE,
        name_template="Fan #{index}",
    ),
    table(
        "HP-ICF-CHASSIS::hpicfSensorStatus",
        Role.OTHER,
        "sensor",
        HP_SENSOR_STATUS,
        name="hpicfSensorDescr",
        type_column="hpicfSensorObjectId",
        types=HP_SENSOR_TYPES,  # icfPowerSupplySensor, icfFanSensor
    ),
)

ARUBA_CX = (
    StatusTable(
        "ARUBAWIRED-POWERSUPPLY-MIB",
        "arubaWiredPSUState (enumerated)",
        Role.PSU,
        "psu",
        "1.3.6.1.4.1.47196.4.1.1.3.11.2.1.1",
        11,
        ARUBA_PSU_STATE,
        name=3,
    ),
    EntitySource(),  # fans; the PSU entities add their sensors' verdict as components
)

HUAWEI = (
    table(
        "HUAWEI-ENTITY-EXTENT-MIB::hwEntityPwrState",
        Role.PSU,
        "psu",
        HUAWEI_PWR_STATE,
        name_template="PWR {index}",
        present="hwEntityPwrPresent",
        absent=("absent",),
    ),
    table(
        "HUAWEI-ENTITY-EXTENT-MIB::hwEntityFanState",
        Role.FAN,
        "fan",
        HUAWEI_FAN_STATE,
        name_template="Slot {index} fan",
        present="hwEntityFanPresent",
        absent=("absent",),
    ),
    table(
        "HUAWEI-STACK-MIB::hwMemberStackRole",
        Role.OTHER,
        "stack-member",
        HUAWEI_STACK_ROLE,
        name_template="stack member {index}",
    ),
)

DELL_IDRAC = (
    table(
        "IDRAC-MIB-SMIv2::powerSupplyStatus",
        Role.PSU,
        "psu",
        DELL_STATUS,
        name="powerSupplyLocationName",
    ),
    table(
        "IDRAC-MIB-SMIv2::coolingDeviceStatus",
        Role.FAN,
        "fan",
        DELL_PROBE_STATUS,
        name="coolingDeviceLocationName",
    ),
    table(
        "IDRAC-MIB-SMIv2::amperageProbeStatus",
        Role.OTHER,
        "probe/current",
        DELL_PROBE_STATUS,
        name="amperageProbeLocationName",
    ),
    table(
        "IDRAC-MIB-SMIv2::voltageProbeStatus",
        Role.OTHER,
        "probe/voltage",
        DELL_PROBE_STATUS,
        name="voltageProbeLocationName",
        kind=Kind.VOLTAGE,
    ),
    table(
        "DELL-RAC-MIB::drsGlobalSystemStatus",
        Role.OTHER,
        "global",
        DELL_STATUS,
        name_template="global system status",
    ),
)
DELL_IDRAC_STATEMENTS = (
    statement(
        "IDRAC-MIB-SMIv2::powerUnitRedundancyStatus",
        Role.PSU,
        DELL_REDUNDANCY,
        name="powerUnitName",
    ),
    statement(
        "IDRAC-MIB-SMIv2::coolingUnitRedundancyStatus",
        Role.FAN,
        DELL_REDUNDANCY,
        name="coolingUnitName",
    ),
)

HPE_ILO = (
    StatusTable(
        "CPQHLTH-MIB",
        "cpqHeFltTolPowerSupplyCondition",
        Role.PSU,
        "psu",
        CPQ_PSU_ENTRY,
        4,
        CPQ_CONDITION,
        name_template="Power Supply {last}",
        present=3,  # cpqHeFltTolPowerSupplyPresent
        absent_values=CPQ_ABSENT,
    ),
    StatusTable(
        "CPQHLTH-MIB",
        "cpqHeFltTolFanCondition",
        Role.FAN,
        "fan",
        CPQ_FAN_ENTRY,
        9,
        CPQ_CONDITION,
        name_template="Fan {last}",
        present=4,  # cpqHeFltTolFanPresent
        absent_values=CPQ_ABSENT,
    ),
)
HPE_ILO_STATEMENTS = (
    RedundancyStatement(
        "CPQHLTH-MIB",
        "cpqHeFltTolPowerSupplyRedundant",
        Role.PSU,
        f"{CPQ_PSU_ENTRY}.9",
        CPQ_REDUNDANT,
        name_template="Power Supply {last}",
        present=f"{CPQ_PSU_ENTRY}.3",
        absent_values=CPQ_ABSENT,
    ),
    RedundancyStatement(
        "CPQHLTH-MIB",
        "cpqHeFltTolPwrSupplyCondition",
        Role.PSU,
        CPQ_PWR_SUPPLY_CONDITION,
        CPQ_SUBSYSTEM,
        name_template="power supply subsystem",
    ),
    RedundancyStatement(
        "CPQHLTH-MIB",
        "cpqHeFltTolFanRedundant",
        Role.FAN,
        f"{CPQ_FAN_ENTRY}.7",
        CPQ_REDUNDANT,
        name_template="Fan {last}",
        present=f"{CPQ_FAN_ENTRY}.4",
        absent_values=CPQ_ABSENT,
    ),
)

SUPERMICRO = (
    StatusTable(
        "SUPERMICRO-HEALTH-MIB",
        "psuStatus",
        Role.PSU,
        "psu",
        "1.3.6.1.4.1.21317.1.14.2.1",
        2,
        SUPERMICRO_PSU,
        name_template="PSU {index}",
    ),
    StatusTable(
        "SUPERMICRO-SMI",
        "smPowerState",
        Role.OTHER,
        "power",
        "1.3.6.1.4.1.21317.1",
        4,
        SUPERMICRO_POWER,
        name_template="power state",
    ),
)

ENTITY = (EntitySource(),)

PROFILES: tuple[Profile, ...] = (
    Profile(
        "cisco",
        "Cisco IOS, IOS-XE, NX-OS: CISCO-ENTITY-FRU-CONTROL-MIB, CISCO-ENVMON-MIB",
        ("1.3.6.1.4.1.9.1", "1.3.6.1.4.1.9.12.3.1.3"),
        r"cisco (ios|nx-os)",
        CISCO,
        CISCO_STATEMENTS,
    ),
    Profile(
        "juniper",
        "Juniper Junos: JUNIPER-MIB jnxFruTable and jnxOperatingTable, chassis alarms",
        ("1.3.6.1.4.1.2636.1",),
        r"juniper networks",
        JUNIPER,
    ),
    Profile(
        "arista",
        "Arista EOS: ENTITY-MIB + ENTITY-SENSOR-MIB",
        ("1.3.6.1.4.1.30065.1",),
        r"arista networks eos",
        ENTITY,
    ),
    Profile(
        "aruba-cx",
        "HPE Aruba CX: ARUBAWIRED-POWERSUPPLY-MIB, fans from ENTITY-MIB",
        ("1.3.6.1.4.1.47196.4.1.1.1",),
        r"aruba .* switch",
        ARUBA_CX,
    ),
    Profile(
        "hp-procurve",
        "HP ProCurve / ArubaOS-Switch: hpicfPsState, hpicfFanState, hpicfSensor",
        ("1.3.6.1.4.1.11.2.3.7.8", "1.3.6.1.4.1.11.2.3.7.11"),
        r"procurve|^hp .*revision",
        HP_PROCURVE,
    ),
    Profile(
        "dell-os10",
        "Dell EMC SmartFabric OS10: DELLEMC-OS10-CHASSIS-MIB",
        ("1.3.6.1.4.1.674.11000.5000.100.2",),
        r"os10",
        DELL_OS10,
    ),
    Profile(
        "dell-os9",
        "Dell Networking OS9 / FTOS: DELL-NETWORKING-CHASSIS-MIB",
        ("1.3.6.1.4.1.6027.1",),
        r"dell networking os|force10",
        DELL_OS9,
    ),
    Profile(
        "foundry",
        "Brocade / Foundry / Extreme IronWare: FOUNDRY-SN-AGENT-MIB chassis tables",
        ("1.3.6.1.4.1.1991.1",),
        r"ironware",
        FOUNDRY,
    ),
    Profile(
        "huawei",
        "Huawei VRP: HUAWEI-ENTITY-EXTENT-MIB power and fan tables",
        ("1.3.6.1.4.1.2011.2",),
        r"huawei versatile routing platform",
        HUAWEI,
    ),
    Profile(
        "dell-idrac",
        "Dell iDRAC: IDRAC-MIB-SMIv2 power supplies, cooling devices, probes",
        ("1.3.6.1.4.1.674.10892.5",),
        r"idrac",
        DELL_IDRAC,
        DELL_IDRAC_STATEMENTS,
    ),
    Profile(
        "hpe-ilo",
        "HPE iLO: CPQHLTH-MIB fault-tolerant power supplies and fans",
        ("1.3.6.1.4.1.232.9.4",),
        r"integrated lights-out",
        HPE_ILO,
        HPE_ILO_STATEMENTS,
    ),
    Profile(
        "supermicro",
        "Supermicro BMC: power supply table and power state",
        ("1.3.6.1.4.1.21317",),
        r"supermicro",
        SUPERMICRO,
    ),
)
GENERIC = Profile(
    "entity",
    "Standards only: ENTITY-MIB powerSupply/fan entities, ENTITY-STATE-MIB, ENTITY-SENSOR-MIB",
    sources=ENTITY,
)
BY_NAME: dict[str, Profile] = {p.name: p for p in (*PROFILES, GENERIC)}


def choose(sys_object_id: str, sys_descr: str) -> Profile:
    """The profile for a device: longest sysObjectID prefix, then sysDescr, else standards."""
    oid = sys_object_id.lstrip(".")
    best: tuple[int, Profile] | None = None
    for p in PROFILES:
        for prefix in p.sys_object_ids:
            if (oid == prefix or oid.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[0]
            ):
                best = (len(prefix), p)
    if best is not None:
        return best[1]
    for p in PROFILES:
        if p.sys_descr and re.search(p.sys_descr, sys_descr, re.IGNORECASE):
            return p
    return GENERIC
