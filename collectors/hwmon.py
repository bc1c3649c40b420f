"""Fans, temperatures and power supplies the kernel exposes in sysfs.

``/sys/class/hwmon/hwmon*/`` (the kernel's ``Documentation/hwmon/sysfs-interface.rst``):
``name`` is the chip; ``fanN_input`` (RPM) with ``fanN_min``, ``fanN_alarm``,
``fanN_fault``; ``tempN_input`` (millidegrees Celsius) with ``tempN_max``, ``tempN_crit``,
``tempN_*_alarm``, ``tempN_fault``; ``*_label`` names a channel.
``/sys/class/power_supply/<name>/`` (``Documentation/ABI/testing/sysfs-class-power``):
``type`` (Mains, UPS, Battery, USB, ...), ``online``, ``present``, ``status``.

The sysfs root is configurable (fixture trees) and the files are read directly: psutil's
sensor functions always read the machine's own ``/sys`` and drop the fault and alarm
files. ``parse_fan``, ``parse_temp`` and ``parse_supply`` are pure; the rules are the tables
below.

Groups
------
* The fans with a reading form one cooling group ``cooling/hwmon`` when there are two or
  more; ``required`` is all but one (a machine is cooled with one fan lost, not two).
  Fan headers that read 0 RPM without a minimum are taken as unpopulated: not reported.
* The mains and UPS supplies form one power group ``power/power_supply`` when there are
  two or more, all but one required. Batteries and USB ports are not power supplies of
  the host and are skipped.
* Temperatures are readings without a group.

Component ids: ``hwmon/<chip>/<channel>`` (``fan1``, ``temp2``; a chip name that several
hwmon devices share gets ``-2``, ``-3``... in device order) and ``power_supply/<name>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    "sysfs": Option(str, "/sys", "Root of the sysfs tree (class/hwmon, class/power_supply)."),
    "temperatures": Option(
        bool, True, "Report temperature channels (over maximum: warning, over critical: failed)."
    ),
}


@dataclass(frozen=True, slots=True)
class Channel:
    """One hwmon channel: its attribute files by suffix, e.g. {"input": "1200", "min": "600"}."""

    chip: str
    name: str  # fan1, temp2
    attrs: Mapping[str, str] = field(default_factory=dict)

    def number(self, suffix: str) -> float | None:
        text = self.attrs.get(suffix)
        try:
            return None if text is None else float(text)
        except ValueError:
            return None

    def flag(self, suffix: str) -> bool:
        return self.attrs.get(suffix, "0").strip() not in ("", "0")


@dataclass(frozen=True, slots=True)
class Supply:
    name: str
    attrs: Mapping[str, str] = field(default_factory=dict)


# power_supply type -> whether it powers the host (the power group)
SUPPLY_TYPES: Mapping[str, bool] = {
    "Mains": True,
    "UPS": True,
    "Battery": False,
    "USB": False,
    "Wireless": False,
}

# (flag suffix, state, words): the first set flag wins; checked before the numbers
FAN_FLAGS: tuple[tuple[str, State, str], ...] = (
    ("fault", State.FAILED, "fault"),
    ("alarm", State.WARNING, "alarm"),
)
TEMP_FLAGS: tuple[tuple[str, State, str], ...] = (
    ("fault", State.UNKNOWN, "sensor fault"),
    ("crit_alarm", State.FAILED, "critical alarm"),
    ("emergency_alarm", State.FAILED, "emergency alarm"),
    ("max_alarm", State.WARNING, "over-maximum alarm"),
)


def _label(ch: Channel) -> str:
    label = ch.attrs.get("label")
    return f"{ch.name} ({label})" if label else ch.name


def parse_fan(ch: Channel) -> tuple[State, str, float | None] | None:
    """(state, words, RPM), or None for an unpopulated header (0 RPM and no minimum)."""
    rpm, minimum = ch.number("input"), ch.number("min")
    for suffix, state, words in FAN_FLAGS:
        if ch.flag(suffix):
            reading = "" if rpm is None else f", {rpm:g} RPM"
            return state, f"{_label(ch)}: {words}{reading}", rpm
    if rpm is None:
        return State.UNKNOWN, f"{_label(ch)}: no reading", None
    if not minimum:
        if rpm == 0:
            return None
        return State.OK, f"{_label(ch)}: {rpm:g} RPM", rpm
    if rpm == 0:
        return State.FAILED, f"{_label(ch)}: stopped (0 RPM, minimum {minimum:g})", rpm
    if rpm < minimum:
        return State.WARNING, f"{_label(ch)}: {rpm:g} RPM, below minimum {minimum:g}", rpm
    return State.OK, f"{_label(ch)}: {rpm:g} RPM (minimum {minimum:g})", rpm


def parse_temp(ch: Channel) -> tuple[State, str, float | None]:
    """(state, words, degrees Celsius); the files hold millidegrees."""
    raw = ch.number("input")
    celsius = None if raw is None else raw / 1000
    for suffix, state, words in TEMP_FLAGS:
        if ch.flag(suffix):
            return state, f"{_label(ch)}: {words}", celsius
    if celsius is None:
        return State.UNKNOWN, f"{_label(ch)}: no reading", None
    crit, high = ch.number("crit"), ch.number("max")
    if crit is not None and crit > 0 and raw >= crit:
        return (
            State.FAILED,
            f"{_label(ch)}: {celsius:g} °C, at or over critical {crit / 1000:g}",
            celsius,
        )
    if high is not None and high > 0 and raw >= high:
        return (
            State.WARNING,
            f"{_label(ch)}: {celsius:g} °C, at or over maximum {high / 1000:g}",
            celsius,
        )
    return State.OK, f"{_label(ch)}: {celsius:g} °C", celsius


# power_supply online -> state (Documentation/ABI/testing/sysfs-class-power: 0 offline,
# 1 online, 2 online and programmable)
SUPPLY_ONLINE: Mapping[str, State] = {"0": State.FAILED, "1": State.OK, "2": State.OK}


def parse_supply(s: Supply) -> tuple[State, str] | None:
    """(state, words) of a mains or UPS supply; None for batteries, USB and unknown types."""
    kind = s.attrs.get("type", "")
    if not SUPPLY_TYPES.get(kind, False):
        return None
    if s.attrs.get("present") == "0":
        return State.ABSENT, f"{kind} supply not present"
    online = s.attrs.get("online")
    if online is None:
        return State.UNKNOWN, f"{kind} supply: no online attribute"
    state = SUPPLY_ONLINE.get(online, State.UNKNOWN)
    words = f"{kind} supply {'online' if state is State.OK else 'offline'} (online={online})"
    return state, words


def snapshot(
    channels: tuple[Channel, ...],
    supplies: tuple[Supply, ...],
    now: float,
    temperatures: bool = True,
) -> Snapshot:
    readings: list[Reading] = []
    fans: list[str] = []
    psus: list[str] = []
    for ch in channels:
        cid = f"hwmon/{ch.chip}/{ch.name}"
        if ch.name.startswith("fan"):
            parsed = parse_fan(ch)
            if parsed is None:
                continue
            state, words, rpm = parsed
            readings.append(Reading(cid, Kind.FAN, state, now, words, rpm, "RPM"))
            fans.append(cid)
        elif temperatures and ch.name.startswith("temp"):
            state, words, celsius = parse_temp(ch)
            readings.append(Reading(cid, Kind.TEMPERATURE, state, now, words, celsius, "°C"))
    for s in supplies:
        parsed_supply = parse_supply(s)
        if parsed_supply is None:
            continue
        cid = f"power_supply/{s.name}"
        readings.append(Reading(cid, Kind.PSU, parsed_supply[0], now, parsed_supply[1]))
        psus.append(cid)
    groups = []
    if len(fans) >= 2:
        groups.append(
            GroupSpec(
                "cooling/hwmon",
                GroupKind.COOLING,
                len(fans) - 1,
                tuple(fans),
                detail="fans reported by hwmon, all but one required",
            )
        )
    if len(psus) >= 2:
        groups.append(
            GroupSpec(
                "power/power_supply",
                GroupKind.POWER,
                len(psus) - 1,
                tuple(psus),
                detail="mains/UPS supplies reported by power_supply, all but one required",
            )
        )
    return Snapshot(tuple(readings), tuple(groups))


# --- reading sysfs -------------------------------------------------------------------------

_ATTR = re.compile(r"(?P<channel>(?:fan|temp)[0-9]+)_(?P<suffix>[a-z_]+)")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:  # a channel without a sensor returns EIO/ENODATA on read
        return None


def _hwmon_attr_dir(d: Path) -> Path:
    """Old drivers keep the attributes in ``device/`` instead of the hwmon directory."""
    if not (d / "name").exists() and (d / "device" / "name").exists():
        return d / "device"
    return d


def read_channels(sysfs: Path) -> tuple[Channel, ...]:
    base = sysfs / "class" / "hwmon"
    if not base.is_dir():
        return ()
    seen: dict[str, int] = {}
    out: list[Channel] = []
    devices = sorted(base.iterdir(), key=lambda p: (len(p.name), p.name))
    for d in devices:
        d = _hwmon_attr_dir(d)
        name = _read(d / "name") or d.name
        seen[name] = seen.get(name, 0) + 1
        chip = name if seen[name] == 1 else f"{name}-{seen[name]}"
        attrs: dict[str, dict[str, str]] = {}
        for f in sorted(d.iterdir()):
            m = _ATTR.fullmatch(f.name)
            if m is None:
                continue
            value = _read(f)
            if value is not None:
                attrs.setdefault(m["channel"], {})[m["suffix"]] = value
        for channel in sorted(
            attrs, key=lambda c: (c.rstrip("0123456789"), int(re.sub(r"\D", "", c)))
        ):
            out.append(Channel(chip, channel, attrs[channel]))
    return tuple(out)


def read_supplies(sysfs: Path) -> tuple[Supply, ...]:
    base = sysfs / "class" / "power_supply"
    if not base.is_dir():
        return ()
    out = []
    for d in sorted(base.iterdir()):
        attrs = {
            a: v for a in ("type", "online", "present", "status") if (v := _read(d / a)) is not None
        }
        out.append(Supply(d.name, attrs))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class HwmonCollector:
    name: str
    sysfs: str = "/sys"
    temperatures: bool = True

    def collect(self, now: float) -> Snapshot:
        """One poll. No hwmon devices and no supplies: not applicable (empty Snapshot)."""
        root = Path(self.sysfs)
        return snapshot(read_channels(root), read_supplies(root), now, self.temperatures)


def create(name: str, options: Mapping[str, Any]) -> HwmonCollector:
    o = option_values(options, OPTIONS)
    return HwmonCollector(name=name, sysfs=o["sysfs"], temperatures=bool(o["temperatures"]))
