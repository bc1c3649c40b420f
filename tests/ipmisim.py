"""A real IPMI BMC for the tests: OpenIPMI's ``ipmi_sim`` behind RMCP+ (lanplus) on 127.0.0.1.

Usage::

    with IpmiSim(dell_like(), tmp_path).start() as sim:
        # ipmitool -I lanplus -C 3 -H 127.0.0.1 -p sim.port -U admin -P password sdr elist
        sim.set_bit(DELL.psus[1], PSU_FAILURE, True)          # PSU 2 fails
        sim.set_bits_exclusive(DELL.redundancy, RED_LOST)    # "Redundancy Lost"
        sim.set_value(DELL.fans[0], 0)                        # fan 1 stops
        sim.pause(); ...; sim.resume()                        # a hung BMC

What is generated for each simulator (all inside ``workdir``, nothing else is touched):
``lan.conf`` (LAN channel 1 on ``127.0.0.1:<port>``, one admin user, a console on
``127.0.0.1:<console_port>``), ``sim.emu`` (MC, watchdog sensor 0, one ``sensor_add`` per
sensor, thresholds, event support, initial values), ``sim.sdrs`` (SDR source) compiled with
``sdrcomp -8`` into ``state/ipmi_sim/<name>/sdr.20.main``, and ``ipmi_sim.log`` (the
simulator's output, quoted in every start error).

Syntax checked against OpenIPMI's own examples (``lanserv/ipmisim1.emu``, ``ipmisim1.sdrs``,
``lan.conf``, ``marvell-bmc/``; copies in ``tests/fixtures/ipmi/openipmi_sim/``), the
``lanserv/emu_cmd.c`` and ``sdrcomp/sdrcomp.c`` sources (cminyard/openipmi), and by running
Debian 12's openipmi 2.0.33, ipmitool 1.8.19 and pyghmi 1.6.19. Traps:

* ipmitool needs ``-I lanplus -C 3``: ipmi_sim never answers the cipher-suite query, and
  without ``-C 3`` each call waits 10 s (see ``IpmiSim.ipmitool_args``).
* ``sdrcomp`` needs ``-8`` (8-bit ASCII id strings); without it all-caps names such as
  ``FAN1`` are 6-bit packed and print as garbage. Its ``sensor_hysteresis`` values are
  ``no/readable/settable/fixed`` (not "none"); compact records spell ``init_systeresis``.
* sensor 0 is the watchdog (``sensor_add 0x20 0 0 35 0x6f event-only``); profiles must not
  use number 0. ``ipmitool sdr elist`` and pyghmi do not list it.
* ``ipmi_sim -n`` hides the echo of the emulation file *and its errors*, and a rejected line
  silently ends the file (later sensors, ``mc_enable``): the harness runs without ``-n``,
  stdin a pipe (``/dev/null`` makes it abort in ``epoll_ctl``), and fails on ``**`` lines.
* ``sensor_set_bit_clr_rest`` takes ``MC LUN NUM BIT GEN_EVENT`` (no value argument).
* ``sensor_set_threshold``'s 6-bit mask and its six values run from upper non-recoverable
  down to lower non-critical: ``UNR UC UNC LNR LC LNC``.
* ipmi_sim compares readings and thresholds as unsigned bytes: no 2's complement sensors
  (see ``Thresholds``).
* The console (telnet-like, no authentication, loopback only) echoes each command and ends
  every answer with the prompt ``"> "``; errors are lines starting with ``**``; it also
  prints a few lines each time an IPMI client opens or closes a session.
* ``ipmitool sdr elist``'s status column is "ok" for every discrete sensor, failed PSU
  included: only the state text (last column) or ``ipmitool sensor``'s ``0x<data2><data3>``
  shows the state. A sensor with scanning off reads ``ns``/"Disabled" in ``sdr elist`` and
  ``na`` in ``ipmitool sensor``.
* pyghmi keeps process-wide session and SDR registries: see ``pyghmi_command``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = [
    "DELL",
    "HPE",
    "PSU_AC_LOST",
    "PSU_FAILURE",
    "PSU_PREDICTIVE",
    "PSU_PRESENT",
    "RED_DEGRADED",
    "RED_DEGRADED_FROM_FULL",
    "RED_DEGRADED_FROM_NONRED",
    "RED_FULL",
    "RED_LOST",
    "RED_NONRED_INSUFFICIENT",
    "RED_NONRED_SUFFICIENT",
    "RED_NONRED_SUFFICIENT_FROM_INSUFFICIENT",
    "SUPERMICRO",
    "IpmiSim",
    "IpmiSimError",
    "ProfileMap",
    "SimSensor",
    "Thresholds",
    "close_pyghmi",
    "dell_like",
    "forget_pyghmi_sessions",
    "hpe_like",
    "pyghmi_command",
    "supermicro_like",
]

# --- IPMI constants -------------------------------------------------------------------------

# Sensor types (IPMI 2.0 table 42-3)
TEMPERATURE = 0x01
VOLTAGE = 0x02
CURRENT = 0x03
FAN = 0x04
POWER_SUPPLY = 0x08

# Event/reading type codes (table 42-1/42-2)
THRESHOLD = 0x01
REDUNDANCY = 0x0B  # generic "redundancy" states
SENSOR_SPECIFIC = 0x6F

# Entity ids (table 43-13)
ENT_PROCESSOR = 3
ENT_SYSTEM_BOARD = 7
ENT_POWER_SUPPLY = 10
ENT_SYS_INTERNAL_EXPANSION_BOARD = 16
ENT_POWER_UNIT = 19
ENT_FAN = 29  # fan/cooling device
ENT_EXTERNAL_ENVIRONMENT = 39

# Power Supply (sensor type 0x08) sensor-specific offsets (reading type 0x6f)
PSU_PRESENT = 0  # Presence detected
PSU_FAILURE = 1  # Power Supply Failure detected
PSU_PREDICTIVE = 2  # Predictive Failure
PSU_AC_LOST = 3  # Power Supply input lost (AC/DC)
# (4 input lost or out-of-range, 5 input out-of-range but present, 6 configuration error)

# Generic redundancy offsets (reading type 0x0b)
RED_FULL = 0  # Fully Redundant
RED_LOST = 1  # Redundancy Lost
RED_DEGRADED = 2  # Redundancy Degraded
RED_NONRED_SUFFICIENT = 3  # Non-redundant: Sufficient Resources from Redundant
RED_NONRED_SUFFICIENT_FROM_INSUFFICIENT = 4  # Non-redundant: Sufficient from Insufficient
RED_NONRED_INSUFFICIENT = 5  # Non-redundant: Insufficient Resources
RED_DEGRADED_FROM_FULL = 6  # Redundancy Degraded from Fully Redundant
RED_DEGRADED_FROM_NONRED = 7  # Redundancy Degraded from Non-redundant

BMC = 0x20  # IPMB address of the simulated BMC
STARTUP_TIMEOUT = 10.0


class IpmiSimError(RuntimeError):
    """The simulator did not start, died, or rejected a console command."""


class _ExitedEarly(IpmiSimError):
    """ipmi_sim exited during start-up (worth another try on other ports)."""


# --- sensor description -----------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """Conversion factors and thresholds of a threshold-based (analog) sensor.

    A reading is ``(m * raw + b * 10**b_exp) * 10**r_exp`` (IPMI linear formula) in
    ``unit`` (an sdrcomp ``base_unit`` name: ``RPM``, ``degrees_C``, ``Volts``, ``Watts``,
    ``Amps``, ``unspecified``...; with ``percentage=True`` ipmitool prints "percent").
    Threshold values are RAW bytes (use :meth:`raw` / :meth:`scaled` to convert from real
    units); ``None`` = not provided.

    Only unsigned raw readings: ipmi_sim compares readings with thresholds as unsigned
    bytes, so a 2's complement sensor with a negative threshold (raw 249 = -7) is always
    "below" it. Negative values are expressed with an offset instead (``b=-128``: raw 121
    = -7 C, raw 153 = 25 C), which every IPMI client decodes the same way.
    """

    unit: str = "unspecified"
    m: int = 1
    b: int = 0
    r_exp: int = 0
    b_exp: int = 0
    percentage: bool = False
    lnr: int | None = None
    lc: int | None = None
    lnc: int | None = None
    unc: int | None = None
    uc: int | None = None
    unr: int | None = None

    def value(self, raw: int) -> float:
        """The reading ``raw`` decodes to (what ipmitool/pyghmi should show)."""
        return (self.m * raw + self.b * 10**self.b_exp) * 10.0**self.r_exp

    def raw(self, value: float) -> int:
        """The raw byte nearest to ``value``."""
        raw = round((value / 10.0**self.r_exp - self.b * 10**self.b_exp) / self.m)
        if not 0 <= raw <= 255:
            raise ValueError(f"{value} is out of range for this sensor (raw {raw})")
        return raw

    def scaled(self, **values: float | None) -> Thresholds:
        """A copy with thresholds given in real units: ``t.scaled(lc=480, unc=None)``."""
        return replace(self, **{k: (None if v is None else self.raw(v)) for k, v in values.items()})

    def items(self) -> list[tuple[str, int | None]]:
        """(name, raw) from upper non-recoverable down to lower non-critical."""
        return [
            ("unr", self.unr),
            ("uc", self.uc),
            ("unc", self.unc),
            ("lnr", self.lnr),
            ("lc", self.lc),
            ("lnc", self.lnc),
        ]


@dataclass(frozen=True)
class SimSensor:
    """One sensor of the simulated BMC (owner 0x20, LUN 0).

    ``sensor_type``: IPMI sensor type (0x01 temperature, 0x02 voltage, 0x03 current,
    0x04 fan, 0x08 power supply...). A redundancy sensor keeps the type of what is
    redundant (0x08 for "PS Redundancy", 0x04 for HPE's "Fans") and has
    ``reading_type`` 0x0b; 0x0B as a *sensor type* would be "Other units-based".
    ``reading_type``: 0x01 threshold, 0x6f sensor-specific, 0x0b redundancy.
    ``initial``: raw reading (threshold sensors, 0..255) or the
    mask of asserted states (discrete: bit n = offset n, e.g. ``1 << PSU_PRESENT``).
    ``thresholds``: required for threshold sensors (conversion + limits).
    ``scanning=False`` makes the sensor report "reading unavailable" (ipmitool ``na``,
    pyghmi ``unavailable=1``), like the absent FAN1/FAN5/FAN6 of the Supermicro capture.
    """

    number: int
    name: str
    sensor_type: int
    reading_type: int
    entity_id: int
    entity_instance: int
    initial: int = 0
    thresholds: Thresholds | None = None
    scanning: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 0xFE:
            raise ValueError(f"sensor number {self.number}: 0 is the watchdog, 0xff reserved")
        if not self.name or len(self.name) > 16 or '"' in self.name:
            raise ValueError(f"sensor name {self.name!r}: 1-16 characters, no quotes")
        if (self.reading_type == THRESHOLD) != (self.thresholds is not None):
            raise ValueError(f"{self.name}: thresholds go with reading type 0x01 only")

    @property
    def is_threshold(self) -> bool:
        return self.reading_type == THRESHOLD

    @property
    def offsets(self) -> int:
        """How many discrete offsets this sensor supports (0 for threshold sensors)."""
        if self.is_threshold:
            return 0
        if self.reading_type == REDUNDANCY:
            return 8
        if self.reading_type == SENSOR_SPECIFIC and self.sensor_type == POWER_SUPPLY:
            return 7
        return 15


# --- emu / SDR / lan.conf generation ------------------------------------------------------------


def _mask15(bits: int) -> str:
    return format(bits & 0x7FFF, "015b")


def _threshold_event_bits(t: Thresholds) -> int:
    """Event offsets for the thresholds present: lower ones going low, upper going high."""
    bits = 0
    for name, offset in (("lnc", 0), ("lc", 2), ("lnr", 4), ("unc", 7), ("uc", 9), ("unr", 11)):
        if getattr(t, name) is not None:
            bits |= 1 << offset
    return bits


def emu_text(
    sensors: Sequence[SimSensor], manufacturer_id: int = 0x1291, product_id: int = 0xF02
) -> str:
    lines = [
        "# generated by tests/ipmisim.py",
        f"mc_setbmc {BMC:#x}",
        f"mc_add {BMC:#x} 0 no-device-sdrs 0x23 9 8 0x9f {manufacturer_id:#x} {product_id:#x} "
        "persist_sdr",
        f"sel_enable {BMC:#x} 1000 0x0a",
        "# watchdog: must be sensor 0",
        f"sensor_add {BMC:#x} 0 0 35 0x6f event-only",
        f"sensor_set_event_support {BMC:#x} 0 0 enable scanning per-state "
        "000000000001111 000000000000000 000000000001111 000000000000000",
    ]
    for s in sensors:
        lines.append(f"# {s.name}")
        lines.append(f"sensor_add {BMC:#x} 0 {s.number} {s.sensor_type:#x} {s.reading_type:#x}")
        if s.is_threshold:
            assert s.thresholds is not None
            items = s.thresholds.items()
            enabled = "".join("0" if v is None else "1" for _, v in items)
            values = " ".join(str(v or 0) for _, v in items)
            lines.append(f"sensor_set_threshold {BMC:#x} 0 {s.number} settable {enabled} {values}")
            bits = _threshold_event_bits(s.thresholds)
        else:
            bits = (1 << s.offsets) - 1
        scan = "scanning" if s.scanning else "no-scanning"
        m = _mask15(bits)
        lines.append(
            f"sensor_set_event_support {BMC:#x} 0 {s.number} enable {scan} per-state "
            f"{m} {m} {m} {m}"
        )
        if s.is_threshold:
            lines.append(f"sensor_set_value {BMC:#x} 0 {s.number} {s.initial} 0")
        else:
            for bit in range(s.offsets):
                if s.initial & (1 << bit):
                    lines.append(f"sensor_set_bit {BMC:#x} 0 {s.number} {bit} 1 0")
    lines.append(f"mc_enable {BMC:#x}")
    return "\n".join(lines) + "\n"


def sdr_text(sensors: Sequence[SimSensor], bmc_name: str = "hotspare sim") -> str:
    out = [
        "# generated by tests/ipmisim.py; compile with sdrcomp -8",
        "sdr type 18",
        f"\tdevice_slave_address\t{BMC:#x}",
        "\tdevice_channel_number\t0",
        "\tchassis\t\t\ttrue",
        "\tipmb_event_gen\t\tfalse",
        "\tipmb_event_recv\t\tfalse",
        "\tfru_inventory\t\tfalse",
        "\tsel\t\t\ttrue",
        "\tsdr\t\t\ttrue",
        "\tsensor\t\t\ttrue",
        "\tentity_id\t\tsystem_board",
        "\tentity_instance\t\t1",
        f'\tid_string\t\t"{bmc_name}"',
        "endsdr",
        "sdr type 3",
        f"\tsensor_owner_id\t\t{BMC:#x}",
        "\tsensor_owner_lun\t0",
        "\tchannel_number\t\t0",
        "\tsensor_number\t\t0",
        "\tentity_id\t\tsystem_board",
        "\tentity_instance\t\t1",
        "\tsensor_type\t\tWatchdog_2",
        "\tevent_reading_type_code\t0x6f",
        '\tid_string\t\t"Watchdog"',
        "endsdr",
    ]
    for s in sensors:
        common = [
            f"\tsensor_owner_id\t\t{BMC:#x}",
            "\tsensor_owner_lun\t0",
            "\tchannel_number\t\t0",
            f"\tsensor_number\t\t{s.number}",
            f"\tentity_id\t\t{s.entity_id}",
            f"\tentity_instance\t\t{s.entity_instance}",
            "\tinit_scanning\t\ttrue",
            "\tinit_events\t\ttrue",
            "\tinit_sensor_type\ttrue",
            "\tdefault_event_gen_on\ttrue",
            f"\tdefault_sensor_scan_on\t{'true' if s.scanning else 'false'}",
            "\tsensor_auto_rearm\ttrue",
            f"\tsensor_type\t\t{s.sensor_type}",
            f"\tevent_reading_type_code\t{s.reading_type:#x}",
        ]
        if s.is_threshold:
            t = s.thresholds
            assert t is not None
            out.append("sdr type 1")
            out += common
            out += [
                "\tinit_thresholds\t\ttrue",
                "\tsensor_hysteresis\tno",
                "\tsensor_threshold_access\tsettable",
                "\tsensor_event_msg_ctrl\tper_state",
            ]
            bits = _threshold_event_bits(t)
            for name, offset in (
                ("lnc", 0),
                ("lc", 2),
                ("lnr", 4),
                ("unc", 7),
                ("uc", 9),
                ("unr", 11),
            ):
                if bits & (1 << offset):
                    direction = "gl" if offset < 6 else "gh"
                    out.append(f"\tassert_{name}{direction}\ttrue")
                    out.append(f"\tdeassert_{name}{direction}\ttrue")
            for name, raw in t.items():
                if raw is not None:
                    out.append(f"\treturn_{name}\t\ttrue")
                    out.append(f"\t{name}_thrsh_readable\ttrue")
                    out.append(f"\t{name}_thrsh_settable\ttrue")
            out += [
                "\tanalog_data_format\tunsigned",
                "\trate_unit\t\tnone",
                "\tmodifier_unit\t\tnone",
                f"\tpercentage\t\t{'true' if t.percentage else 'false'}",
                f"\tbase_unit\t\t{t.unit}",
                "\tmodifier_unit_code\tunspecified",
                "\tlinearization\t\tlinear",
                f"\tm\t\t\t{t.m}",
                "\ttolerance\t\t0",
                f"\tb\t\t\t{t.b}",
                "\taccuracy\t\t1",
                "\taccuracy_exp\t\t0",
                "\tsensor_direction\tinput",
                f"\tr_exp\t\t\t{t.r_exp}",
                f"\tb_exp\t\t\t{t.b_exp}",
                "\tsensor_maximum\t\t255",
                "\tsensor_minimum\t\t0",
            ]
            for name, raw in t.items():
                if raw is not None:
                    out.append(f"\t{name}_thresh\t\t{raw}")
        else:
            out.append("sdr type 2")
            out += common
            out.append("\tsensor_event_msg_ctrl\tper_state")
            for bit in range(s.offsets):
                out.append(f"\tassert_event{bit}\t\ttrue")
                out.append(f"\tdeassert_event{bit}\t\ttrue")
                out.append(f"\tevent{bit}_state_ret\ttrue")
        out.append(f'\tid_string\t\t"{s.name}"')
        out.append("endsdr")
    return "\n".join(out) + "\n"


CHASSIS_SCRIPT = """#!/bin/sh
# Chassis power for a simulated BMC (generated by tests/ipmisim.py). ipmi_sim runs
#   chassis STATE_FILE get power        -> prints "power:1" or "power:0"
#   chassis STATE_FILE set power 0|1    -> prints nothing on success
# STATE_FILE holds "on", "off" or "off-at EPOCH" (a power off that takes effect at EPOCH
# seconds, like a BMC that needs a while); every request is appended to STATE_FILE.log;
# while STATE_FILE.refuse exists, "set" fails (the BMC answers with an error).
state=$1; op=$2; parm=$3; val=$4
echo "$op $parm $val" >> "$state.log"
[ "$parm" = power ] || { echo "unsupported: $parm"; exit 1; }
read -r now_state at < "$state"
if [ "$op" = set ] && [ -e "$state.refuse" ]; then echo "power control refused"; exit 1; fi
case $op in
  get)
    if [ "$now_state" = off ] || { [ "$now_state" = off-at ] && [ "$(date +%s)" -ge "$at" ]; }
    then echo "power:0"; else echo "power:1"; fi ;;
  set)
    delay=$(cat "$state.delay" 2>/dev/null || echo 0)
    if [ "$val" = 0 ]; then
      if [ "$delay" -gt 0 ]; then echo "off-at $(( $(date +%s) + delay ))" > "$state"
      else echo off > "$state"; fi
    else echo on > "$state"; fi ;;
  *) echo "unknown operation: $op"; exit 1 ;;
esac
"""


def lan_conf_text(
    name: str, port: int, console_port: int, user: str, password: str, chassis: str = ""
) -> str:
    """``chassis``: a chassis control command (power state and control), or none."""
    auths = "none md2 md5 straight"
    control = f'  chassis_control "{chassis}"\n' if chassis else ""
    return f"""# generated by tests/ipmisim.py
name "{name}"
set_working_mc {BMC:#x}
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback {auths}
    allowed_auths_user {auths}
    allowed_auths_operator {auths}
    allowed_auths_admin {auths}
    guid a123456789abcdefa123456789abcdef
  endlan
  user 2 true "{user}" "{password}" admin 10 {auths}
{control}console 127.0.0.1 {console_port}
"""


# --- helpers ------------------------------------------------------------------------------------


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# IPMI 1.5 "Get Channel Authentication Capabilities" (no session): the cheapest request an
# ipmi_sim LAN channel answers; used as the readiness probe.
def _checksum(data: bytes) -> int:
    return -sum(data) & 0xFF


_PROBE_MSG = bytes([0x81, 0x00, 0x38, 0x8E, 0x04])  # rqAddr, rqSeq, cmd, channel 0xe+v2, admin
_AUTH_CAP_PROBE = (
    bytes.fromhex("0600ff07000000000000000000")  # RMCP; IPMI 1.5 session, no auth
    + bytes([3 + len(_PROBE_MSG) + 1, BMC, 0x06 << 2, _checksum(bytes([BMC, 0x06 << 2]))])
    + _PROBE_MSG
    + bytes([_checksum(_PROBE_MSG)])
)


def _probe(port: int, timeout: float = 0.01) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(_AUTH_CAP_PROBE, ("127.0.0.1", port))
            data = s.recv(512)
        except OSError:
            return False
    return len(data) > 20 and data[:4] == b"\x06\x00\xff\x07"


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _die_with_parent() -> None:
    """In the child: SIGKILL it when the process that started it dies (even by SIGKILL).

    Linux ties PR_SET_PDEATHSIG to the starting *thread*, hence only from the main thread.
    """
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1


def _strip_telnet(data: bytes) -> bytes:
    """Drop telnet IAC negotiation (IAC cmd opt) the console sends on connect."""
    out = bytearray()
    i = 0
    while i < len(data):
        if data[i] == 0xFF and i + 1 < len(data):
            i += 3 if data[i + 1] in (0xFB, 0xFC, 0xFD, 0xFE) else 2
            continue
        out.append(data[i])
        i += 1
    return bytes(out)


# pyghmi (1.6.19, the newest release) keeps process-wide registries that bite in tests:
#
# * ``Session.initting_sessions`` is keyed by ``(bmc, userid, password, port, kg)`` with the
#   *str* user id when a session is created, but cleaned up with the *bytes* one
#   (``self.userid`` is encoded), so an entry is never removed. A second
#   ``Command(bmc=..., port=...)`` for the same BMC/user/password then finds that entry,
#   sets ``logging = True`` on it and waits for the login to finish: it hangs forever while
#   the first session is alive, and returns the dead session (``IpmiException(None)``,
#   ``TypeError`` in ``raw_command``) after a logout or a timeout broke it.
# * ``sdr.shared_sdrs`` caches decoded SDRs by (firmware, manufacturer, product, device id,
#   SDR repository timestamps): see ``IpmiSim.start`` (product id derived from the sensors).
#
# ``pyghmi_command`` and ``close_pyghmi`` work around the first; ``IpmiSim.stop`` logs out
# whatever pyghmi sessions this process still has with the simulator.


def _pyghmi_key(bmc: str, user: str, password: str, port: int) -> tuple:
    return (bmc, user, password, port, None)


def pyghmi_command(port: int, user: str = "admin", password: str = "password"):
    """A pyghmi ``Command`` with its own, freshly logged-in session to 127.0.0.1:``port``.

    Safe to call again for the same BMC (each call logs in a new session); close it with
    :func:`close_pyghmi`. Raises ``pyghmi.exceptions.IpmiException`` if the login fails
    (about 4 s against a paused simulator).
    """
    from pyghmi.ipmi import command
    from pyghmi.ipmi.private import session as pyghmi_session

    key = _pyghmi_key("127.0.0.1", user, password, port)
    pyghmi_session.Session.initting_sessions.pop(key, None)
    try:
        return command.Command(bmc="127.0.0.1", port=port, userid=user, password=password)
    finally:
        pyghmi_session.Session.initting_sessions.pop(key, None)


def close_pyghmi(cmd) -> None:
    """Log a pyghmi ``Command``'s session out and drop pyghmi's stale registry entry."""
    from pyghmi.ipmi.private import session as pyghmi_session

    sess = cmd.ipmi_session
    with contextlib.suppress(Exception):
        sess.logout()
    user = sess.userid.decode() if isinstance(sess.userid, bytes) else sess.userid
    password = sess.password.decode() if isinstance(sess.password, bytes) else sess.password
    pyghmi_session.Session.initting_sessions.pop(
        (sess.bmc, user, password, sess.port, sess.kgo), None
    )


def forget_pyghmi_sessions(port: int) -> None:
    """Log out every pyghmi session of this process to 127.0.0.1:``port`` and forget them.

    A no-op when pyghmi was never imported.
    """
    pyghmi_session = sys.modules.get("pyghmi.ipmi.private.session")
    if pyghmi_session is None:
        return
    S = pyghmi_session.Session
    for key in [k for k in list(S.initting_sessions) if k[3] == port]:
        sess = S.initting_sessions.pop(key, None)
        if sess is not None and not getattr(sess, "broken", True):
            with contextlib.suppress(Exception):
                sess.logout()
    for sockaddr in [a for a in list(S.bmc_handlers) if a[1] == port]:
        for sess in list(S.bmc_handlers.get(sockaddr, {}).values()):
            with contextlib.suppress(Exception):
                sess.logout()
        S.bmc_handlers.pop(sockaddr, None)


# --- the simulator --------------------------------------------------------------------------------


class IpmiSim:
    """One ``ipmi_sim`` process serving ``sensors`` on 127.0.0.1:``port`` (RMCP/RMCP+)."""

    def __init__(
        self,
        sensors: Sequence[SimSensor],
        workdir: Path,
        user: str = "admin",
        password: str = "password",
        name: str = "hotspare",
        manufacturer_id: int = 0x1291,
        product_id: int | None = None,
        power: bool = False,
        power_off_delay: int = 0,
    ):
        """``power``: the BMC controls a (pretend) chassis power, on at start; a power off
        takes effect ``power_off_delay`` whole seconds after it was requested. Without it,
        Get Chassis Status says "off" and Chassis Control is refused (as ipmi_sim does)."""
        numbers = [s.number for s in sensors]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"duplicate sensor numbers in {numbers}")
        self.sensors = tuple(sensors)
        self.by_number = {s.number: s for s in self.sensors}
        self.workdir = Path(workdir)
        self.user = user
        self.password = password
        self.name = name
        self.manufacturer_id = manufacturer_id
        self.product_id = product_id
        self.port = 0
        self.console_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self._console: socket.socket | None = None
        self._console_lock = threading.Lock()
        self.statedir = self.workdir / "state"
        self.log_path = self.workdir / "ipmi_sim.log"
        self.power = power
        self.power_off_delay = power_off_delay
        self.power_file = self.workdir / "chassis-power"

    # -- life cycle --

    def start(self, attempts: int = 3) -> IpmiSim:
        """Write the configuration, compile the SDRs, start the simulator, wait for it."""
        if self.proc is not None:
            raise IpmiSimError("already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        emu = self.workdir / "sim.emu"
        sdrs = self.workdir / "sim.sdrs"
        sdr_source = sdr_text(self.sensors)
        product_id = self.product_id
        if product_id is None:
            # pyghmi caches decoded SDRs process-wide by (firmware, manufacturer, product,
            # device id, SDR timestamps); two simulators with different sensors compiled in
            # the same second would share one cache entry. A product id derived from the
            # SDR source keeps them apart (identical sensor sets may share: harmless).
            product_id = int.from_bytes(hashlib.sha256(sdr_source.encode()).digest()[:2])
        emu.write_text(emu_text(self.sensors, self.manufacturer_id, product_id))
        sdrs.write_text(sdr_source)
        sdr_dir = self.statedir / "ipmi_sim" / self.name
        sdr_dir.mkdir(parents=True, exist_ok=True)
        compiled = subprocess.run(
            ["sdrcomp", "-8", "-o", str(sdr_dir / "sdr.20.main"), str(sdrs)],
            capture_output=True,
            text=True,
            check=False,
        )
        if compiled.returncode != 0:
            raise IpmiSimError(f"sdrcomp failed on {sdrs}:\n{compiled.stdout}{compiled.stderr}")
        for attempt in range(1, attempts + 1):
            try:
                self._launch(emu)
                return self
            except _ExitedEarly:
                # most likely a port picked free was taken before ipmi_sim bound it
                self._kill()
                if attempt == attempts:
                    raise
            except BaseException:
                self._kill()
                raise
        raise AssertionError("unreachable")

    def _launch(self, emu: Path) -> None:
        t0 = time.monotonic()
        self.port = _free_port(socket.SOCK_DGRAM)
        self.console_port = _free_port(socket.SOCK_STREAM)
        conf = self.workdir / "lan.conf"
        chassis = ""
        if self.power:
            script = self.workdir / "chassis"
            script.write_text(CHASSIS_SCRIPT)
            self.power_file.write_text("on\n")
            (self.workdir / "chassis-power.delay").write_text(f"{self.power_off_delay}\n")
            chassis = f"/bin/sh {script} {self.power_file}"
        conf.write_text(
            lan_conf_text(
                self.name, self.port, self.console_port, self.user, self.password, chassis
            )
        )
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                # Not "-n": with it ipmi_sim prints nothing, and an emulation file line it
                # rejects silently ends the file there (mc_enable included). Its stdin
                # console must then be a pipe (/dev/null aborts it in epoll_ctl); it is
                # never written to.
                ["ipmi_sim", "-c", str(conf), "-f", str(emu), "-s", str(self.statedir)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,  # a Ctrl-C on pytest does not hit it first
                preexec_fn=_die_with_parent if _in_main_thread() else None,
            )
        deadline = t0 + STARTUP_TIMEOUT
        while True:
            # the emulation file is read and echoed (with "**" error lines) before the LAN
            # channel answers; a rejected line ends it, so the BMC may never answer
            output = self.output()
            if any(ln.startswith("**") for ln in output.splitlines()):
                raise IpmiSimError(f"ipmi_sim rejected {emu}:\n{output}")
            if _probe(self.port):
                break
            if self.proc.poll() is not None:
                raise _ExitedEarly(f"ipmi_sim exited with {self.proc.returncode}:\n{output}")
            if time.monotonic() > deadline:
                raise IpmiSimError(
                    f"ipmi_sim not answering on 127.0.0.1:{self.port} after "
                    f"{STARTUP_TIMEOUT} s:\n{output}"
                )
            time.sleep(0.005)
        self._connect_console(deadline)
        self.startup_seconds = time.monotonic() - t0

    def _connect_console(self, deadline: float) -> None:
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", self.console_port), timeout=1)
                break
            except OSError as e:
                if time.monotonic() > deadline:
                    raise IpmiSimError(f"no console on {self.console_port}: {e}") from e
                time.sleep(0.005)
        self._console = sock
        self._read_prompt(timeout=max(1.0, deadline - time.monotonic()))

    def stop(self) -> None:
        """Terminate the simulator (SIGCONT first if paused; SIGKILL after 3 s).

        Also logs out the pyghmi sessions this process still has with it. Idempotent; the
        files in ``workdir`` are left for the caller.
        """
        self._close_console()
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)
            forget_pyghmi_sessions(self.port)  # while it still answers the logouts
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._close_stdin(proc)

    def _kill(self) -> None:
        self._close_console()
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            self._close_stdin(proc)

    def _close_console(self) -> None:
        if self._console is not None:
            with contextlib.suppress(OSError):
                self._console.close()
            self._console = None

    @staticmethod
    def _close_stdin(proc: subprocess.Popen[bytes]) -> None:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()

    def __enter__(self) -> IpmiSim:
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        """What the simulator printed (it echoes the emulation file as it reads it)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- fault injection --

    def _read_prompt(self, timeout: float) -> str:
        assert self._console is not None
        self._console.settimeout(timeout)
        buf = b""
        while not buf.rstrip(b" ").endswith(b">"):
            try:
                chunk = self._console.recv(4096)
            except TimeoutError as e:
                raise IpmiSimError(
                    f"console: no prompt within {timeout} s (paused? died?); got {buf!r}"
                ) from e
            if not chunk:
                raise IpmiSimError(f"console closed; got {buf!r}\n{self.output()}")
            buf = _strip_telnet(buf + chunk)
        return buf.decode(errors="replace")

    def console(self, command: str, check: bool = True, timeout: float = 5.0) -> str:
        """Run one emulation command on the console and return its output (echo removed).

        The console also prints session log lines ("Activate session: ...") whenever an
        IPMI client logs in or out; those printed before the command are discarded. With
        ``check`` (default) an output line starting with ``**`` raises IpmiSimError.
        """
        command = command.strip()
        if "\n" in command or not command:
            raise ValueError("exactly one command")
        with self._console_lock:
            if self._console is None:
                raise IpmiSimError("simulator not running")
            self._drain_console()
            self._console.sendall(command.encode() + b"\n")
            text = self._read_prompt(timeout)
        lines = text.replace("\r", "").split("\n")
        echo = [i for i, ln in enumerate(lines) if ln.strip().lstrip(">").strip() == command]
        if echo:
            lines = lines[echo[-1] + 1 :]
        if lines and lines[-1].strip() == ">":
            lines = lines[:-1]
        out = "\n".join(lines).strip()
        if check and any(ln.startswith("**") for ln in lines):
            raise IpmiSimError(f"console command {command!r} failed: {out}")
        return out

    def _drain_console(self) -> None:
        assert self._console is not None
        self._console.setblocking(False)
        try:
            while self._console.recv(65536):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        finally:
            self._console.setblocking(True)

    def _sensor(self, number: int) -> SimSensor:
        try:
            return self.by_number[number]
        except KeyError:
            raise ValueError(f"no sensor {number:#x} in this simulator") from None

    def set_bit(self, sensor: int, bit: int, value: bool, generate_event: bool = True) -> None:
        """Assert/deassert discrete state ``bit`` (offset) of ``sensor``."""
        s = self._sensor(sensor)
        if s.is_threshold:
            raise ValueError(f"{s.name} is a threshold sensor: use set_value")
        self.console(f"sensor_set_bit {BMC:#x} 0 {sensor} {bit} {int(value)} {int(generate_event)}")

    def set_bits_exclusive(self, sensor: int, bit: int, generate_event: bool = True) -> None:
        """Assert state ``bit`` and deassert every other one (e.g. a redundancy state)."""
        s = self._sensor(sensor)
        if s.is_threshold:
            raise ValueError(f"{s.name} is a threshold sensor: use set_value")
        self.console(f"sensor_set_bit_clr_rest {BMC:#x} 0 {sensor} {bit} {int(generate_event)}")

    def set_value(self, sensor: int, raw: int, generate_event: bool = True) -> None:
        """Set the raw reading of a threshold sensor (threshold states follow)."""
        s = self._sensor(sensor)
        if not s.is_threshold:
            raise ValueError(f"{s.name} is discrete: use set_bit / set_bits_exclusive")
        if not 0 <= raw <= 255:
            raise ValueError(f"raw value {raw} is not a byte")
        self.console(f"sensor_set_value {BMC:#x} 0 {sensor} {raw} {int(generate_event)}")

    def set_reading(self, sensor: int, value: float, generate_event: bool = True) -> None:
        """Like :meth:`set_value` with a value in the sensor's unit (e.g. 0 RPM)."""
        t = self._sensor(sensor).thresholds
        if t is None:
            raise ValueError(f"sensor {sensor:#x} is discrete")
        self.set_value(sensor, t.raw(value), generate_event)

    def pause(self) -> None:
        """SIGSTOP the simulator: the BMC stops answering (packets queue in the socket)."""
        if self.proc is None:
            raise IpmiSimError("simulator not running")
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the simulator (it then answers whatever is still queued)."""
        if self.proc is None:
            raise IpmiSimError("simulator not running")
        os.kill(self.proc.pid, signal.SIGCONT)

    def chassis_power(self) -> str:
        """The pretend chassis power as the simulator holds it: "on", "off" or "off-at EPOCH"."""
        return self.power_file.read_text().strip()

    def refuse_power_control(self, refuse: bool = True) -> None:
        """Make the BMC answer Chassis Control with an error (as one that cannot switch)."""
        flag = self.power_file.with_name(self.power_file.name + ".refuse")
        if refuse:
            flag.write_text("")
        else:
            flag.unlink(missing_ok=True)

    def chassis_requests(self) -> list[str]:
        """Every chassis control request the BMC passed on ("get power", "set power 0" ...)."""
        log = self.power_file.with_name(self.power_file.name + ".log")
        return [ln.strip() for ln in log.read_text().splitlines()] if log.exists() else []

    # -- convenience for tests --

    def pyghmi(self):
        """A pyghmi ``Command`` with a fresh session to this BMC (see :func:`pyghmi_command`)."""
        return pyghmi_command(self.port, self.user, self.password)

    def ipmitool_args(self) -> list[str]:
        """``ipmitool`` prefix for this BMC (lanplus, cipher suite 3)."""
        return [
            "ipmitool",
            "-I",
            "lanplus",
            "-C",
            "3",
            "-H",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-P",
            self.password,
        ]


# --- profiles -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileMap:
    """Sensor numbers of a profile, for tests: ``sim.set_bit(DELL.psus[1], PSU_FAILURE, 1)``."""

    psus: tuple[int, ...]
    fans: tuple[int, ...]
    redundancy: int | None = None  # PSU redundancy sensor (reading type 0x0b)
    fan_redundancy: int | None = None
    temps: tuple[int, ...] = ()
    voltages: tuple[int, ...] = ()
    others: tuple[int, ...] = field(default=())


def _psu(number: int, name: str, instance: int, present: bool = True) -> SimSensor:
    return SimSensor(
        number,
        name,
        POWER_SUPPLY,
        SENSOR_SPECIFIC,
        ENT_POWER_SUPPLY,
        instance,
        initial=(1 << PSU_PRESENT) if present else 0,
    )


def _redundancy(number: int, name: str, sensor_type: int, entity: int, instance: int) -> SimSensor:
    return SimSensor(number, name, sensor_type, REDUNDANCY, entity, instance, initial=1 << RED_FULL)


def _analog(
    number: int,
    name: str,
    sensor_type: int,
    entity: int,
    instance: int,
    t: Thresholds,
    value: float,
    scanning: bool = True,
) -> SimSensor:
    return SimSensor(
        number,
        name,
        sensor_type,
        THRESHOLD,
        entity,
        instance,
        initial=t.raw(value),
        thresholds=t,
        scanning=scanning,
    )


# Dell -------------------------------------------------------------------------------------------
# Follows canonical-phe__ipmitool_sdr_ps_sample_output.txt (an iDRAC's `ipmitool sdr type
# "Power Supply"`): "PS Redundancy" 77h entity 7.1 (Fully Redundant), "Status" 85h entity
# 10.1 and "Status" 86h entity 10.2 (Presence detected) -- note both PSU sensors are called
# just "Status" on a real iDRAC. Fans, temperatures and PSU input voltages follow the
# iDRAC9 PowerEdge R640 SNMP capture (snmprec/drac_r640, LibreNMS expected values): fans
# Fan1A.. at 3960-4080 RPM, lower critical 480 RPM, 120 RPM per count; Inlet Temp 25 C
# (lower critical -7, lower warning 3, upper warning 43, upper critical 47); Exhaust Temp
# 57 C (3/8/75/80); CPU1 Temp 55 C (lc 3, uc 98); PSU input voltage 204 V. Sensor numbers
# other than 77h/85h/86h are this harness's choice.

_DELL_FAN = Thresholds("RPM", m=120)
_DELL_FAN_T = _DELL_FAN.scaled(lc=480)
_DELL_TEMP = Thresholds("degrees_C", b=-128)  # offset for the -7 C threshold, see Thresholds
_DELL_VOLT = Thresholds("Volts", m=2)

DELL = ProfileMap(
    psus=(0x85, 0x86),
    fans=(0x30, 0x31, 0x32, 0x33, 0x34, 0x35),
    redundancy=0x77,
    temps=(0x04, 0x01, 0x0E),
    voltages=(0x6C, 0x6D),
)


def dell_like(psu_names: tuple[str, str] = ("Status", "Status")) -> tuple[SimSensor, ...]:
    """A Dell PowerEdge/iDRAC-like BMC: 2 PSUs + "PS Redundancy", 6 fans, 3 temps, 2 volts.

    ``psu_names`` defaults to the capture's duplicate "Status"/"Status"; pass
    ("PS1 Status", "PS2 Status") for unique names.
    """
    fan_rpms = (4080, 3960, 4080, 3960, 3840, 4080)
    fans = tuple(
        _analog(num, f"Fan{i + 1}A", FAN, ENT_SYSTEM_BOARD, 1, _DELL_FAN_T, fan_rpms[i])
        for i, num in enumerate(DELL.fans)
    )
    return (
        _redundancy(0x77, "PS Redundancy", POWER_SUPPLY, ENT_SYSTEM_BOARD, 1),
        _psu(0x85, psu_names[0], 1),
        _psu(0x86, psu_names[1], 2),
        *fans,
        _analog(
            0x04,
            "Inlet Temp",
            TEMPERATURE,
            ENT_SYSTEM_BOARD,
            1,
            _DELL_TEMP.scaled(lc=-7, lnc=3, unc=43, uc=47),
            25,
        ),
        _analog(
            0x01,
            "Exhaust Temp",
            TEMPERATURE,
            ENT_SYSTEM_BOARD,
            1,
            _DELL_TEMP.scaled(lc=3, lnc=8, unc=75, uc=80),
            57,
        ),
        _analog(
            0x0E,
            "Temp",
            TEMPERATURE,
            ENT_PROCESSOR,
            1,
            _DELL_TEMP.scaled(lc=3, uc=98),
            55,
        ),
        _analog(0x6C, "Voltage 1", VOLTAGE, ENT_POWER_SUPPLY, 1, _DELL_VOLT, 204),
        _analog(0x6D, "Voltage 2", VOLTAGE, ENT_POWER_SUPPLY, 2, _DELL_VOLT, 204),
    )


# HPE --------------------------------------------------------------------------------------------
# Follows rubyipmi__ipmitool_hp_sensors_g5.txt (`ipmitool sensor` of an HP ProLiant DL380 G5):
# "Power Supply 1"/"Power Supply 2" 0x0180 (present), "Power Supplies" 0x0180 (Fully
# Redundant), fans "Fan 1".. in PERCENT (45.080 = 115 x 0.392, no thresholds), "Fans"
# 0x0180 (fan redundancy, Fully Redundant), "Temp 1" 37 C (lower thresholds 0/0/0, unc 67,
# uc 70, unr 75), "Temp 2" 20 C (0/0/0, 37/39/44), "Temp 3" 40 C (0/0/0, 68/127/127),
# "Power Meter" 374 W. Entity ids and sensor numbers follow rubyipmi__freeipmi_sensors.txt
# (same HP family, record ids 4/5/6, 10-17, 22, 24-26, 31): PSUs 10.1/10.2, "Power
# Supplies" 10.3, fans 1-4 on system internal expansion boards 16.1-16.4 and fans 5-8 on
# processors 3.1-3.4, "Fans" 7.1 (System Board), Temp 1 16.5, Temp 2 external environment
# 39.1, Temp 3 processor 3.10. The capture has 12 fans; this profile keeps 8. A real iLO
# reports a dead fan through "Fans" (redundancy) rather than a fan threshold: these fans
# have none.

_HP_FAN = Thresholds("unspecified", m=392, r_exp=-3, percentage=True)
_HP_TEMP = Thresholds("degrees_C")
_HP_WATTS = Thresholds("Watts", m=2)

HPE = ProfileMap(
    psus=(4, 5),
    fans=(10, 11, 12, 13, 14, 15, 16, 17),
    redundancy=6,
    fan_redundancy=22,
    temps=(24, 25, 26),
    others=(31,),
)


def hpe_like() -> tuple[SimSensor, ...]:
    """An HP ProLiant/iLO-like BMC: 2 PSUs + "Power Supplies", 8 fans (%) + "Fans", temps."""
    fan_pct = (45.080, 45.080, 45.080, 45.080, 41.944, 41.944, 36.064, 36.064)
    fan_entities = (ENT_SYS_INTERNAL_EXPANSION_BOARD,) * 4 + (ENT_PROCESSOR,) * 4
    fans = tuple(
        _analog(num, f"Fan {i + 1}", FAN, fan_entities[i], i % 4 + 1, _HP_FAN, fan_pct[i])
        for i, num in enumerate(HPE.fans)
    )
    return (
        _psu(4, "Power Supply 1", 1),
        _psu(5, "Power Supply 2", 2),
        _redundancy(6, "Power Supplies", POWER_SUPPLY, ENT_POWER_SUPPLY, 3),
        *fans,
        _redundancy(22, "Fans", FAN, ENT_SYSTEM_BOARD, 1),
        _analog(
            24,
            "Temp 1",
            TEMPERATURE,
            ENT_SYS_INTERNAL_EXPANSION_BOARD,
            5,
            _HP_TEMP.scaled(lnr=0, lc=0, lnc=0, unc=67, uc=70, unr=75),
            37,
        ),
        _analog(
            25,
            "Temp 2",
            TEMPERATURE,
            ENT_EXTERNAL_ENVIRONMENT,
            1,
            _HP_TEMP.scaled(lnr=0, lc=0, lnc=0, unc=37, uc=39, unr=44),
            20,
        ),
        _analog(
            26,
            "Temp 3",
            TEMPERATURE,
            ENT_PROCESSOR,
            10,
            _HP_TEMP.scaled(lnr=0, lc=0, lnc=0, unc=68, uc=127, unr=127),
            40,
        ),
        _analog(31, "Power Meter", CURRENT, ENT_SYSTEM_BOARD, 1, _HP_WATTS, 374),
    )


# Supermicro ---------------------------------------------------------------------------------------
# Follows lovoo-ipmi_exporter__ipmi_output1.txt (`ipmitool sensor` of a Supermicro X9/X10
# board): "PS1 Status"/"PS2 Status" 0x1 / 0x0100 (presence detected), no redundancy
# sensor; FAN2 3000, FAN3 3150, FAN4 3000 RPM with lnr 300, lc 450, lnc 600, unc 18975,
# uc 19050, unr 19125 (75 RPM per count), FAN1/FAN5/FAN6 "na" (not installed: scanning
# off here); "System Temp" 25 C (-9/-7/-5, 80/85/90), "CPU1 Temp" 33 C
# (0/0/0, 79/82/84), "12V" 12.084 V (10.176/10.494/10.812, 13.250/13.568/13.886 =
# (53 raw + 371) / 1000). Sensor numbers are this harness's choice (Supermicro BMCs number
# fans 0x41.. and temperatures 0x01..; not in the capture).

_SM_FAN = Thresholds("RPM", m=75)
_SM_FAN_T = _SM_FAN.scaled(lnr=300, lc=450, lnc=600, unc=18975, uc=19050, unr=19125)
_SM_TEMP = Thresholds("degrees_C", b=-128)  # offset for the -9 C threshold, see Thresholds
_SM_12V = Thresholds("Volts", m=53, b=371, r_exp=-3)

SUPERMICRO = ProfileMap(
    psus=(0xC8, 0xC9),
    fans=(0x41, 0x42, 0x43, 0x44, 0x45, 0x46),
    temps=(0x01, 0x0B),
    voltages=(0x30,),
)


def supermicro_like(all_fans_present: bool = False) -> tuple[SimSensor, ...]:
    """A Supermicro-like BMC: PS1/PS2 Status (no redundancy sensor), FAN1..FAN6, 2 temps, 12V.

    As in the capture FAN1, FAN5 and FAN6 read "na" (not installed) unless
    ``all_fans_present``; then every fan reads 3000 RPM.
    """
    rpms = (3000, 3000, 3150, 3000, 3000, 3000)
    absent = () if all_fans_present else (0, 4, 5)
    fans = tuple(
        _analog(
            num,
            f"FAN{i + 1}",
            FAN,
            ENT_FAN,
            i + 1,
            _SM_FAN_T,
            rpms[i],
            scanning=i not in absent,
        )
        for i, num in enumerate(SUPERMICRO.fans)
    )
    return (
        _analog(
            0x01,
            "CPU1 Temp",
            TEMPERATURE,
            ENT_PROCESSOR,
            1,
            _SM_TEMP.scaled(lnr=0, lc=0, lnc=0, unc=79, uc=82, unr=84),
            33,
        ),
        _analog(
            0x0B,
            "System Temp",
            TEMPERATURE,
            ENT_SYSTEM_BOARD,
            1,
            _SM_TEMP.scaled(lnr=-9, lc=-7, lnc=-5, unc=80, uc=85, unr=90),
            25,
        ),
        *fans,
        _analog(
            0x30,
            "12V",
            VOLTAGE,
            ENT_SYSTEM_BOARD,
            1,
            _SM_12V.scaled(lnr=10.176, lc=10.494, lnc=10.812, unc=13.250, uc=13.568, unr=13.886),
            12.084,
        ),
        _psu(0xC8, "PS1 Status", 1),
        _psu(0xC9, "PS2 Status", 2),
    )
