"""Drive health from smartctl --json (smartmontools 7 or later), rules in docs/storage.md.

Three layers, each usable on its own:

``parse_report(doc)`` / ``parse_scan(doc)``
    Pure functions from one ``smartctl --json`` document (already decoded) to a frozen
    ``SmartReport`` (ATA, SCSI/SAS and NVMe alike) or to the device list of ``--scan``.

``assess(report, history, rules, now)``
    The pure rules of docs/storage.md: a Reading state, its words, and the updated
    defect-counter history (growth is judged against the previous polls).

``SmartCollector``
    Runs ``smartctl`` (argv, no shell) for every configured or scanned device. A host
    without ``smartctl`` is not applicable: said once in the log, an empty Snapshot.

Each drive is one component ``smart/<disk>`` (kind DISK) whose ``device`` is the disk's
name (``sdb``, ``nvme0``, ``megaraid,4``). The evaluation applies a drive's WARNING or
FAILED to every component on the same device, so a failing disk counts against the md
array, the controller virtual drive or the ZFS vdev it is a member of.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from collectors.base import Kind, Option, Reading, Snapshot, State, disk_of, option_values
from collectors.tool import NotApplicable, Runner, ToolError, ToolMissing, run_tool

log = logging.getLogger("hotspare.collectors.smart")

OPTIONS: dict[str, Option] = {
    "path": Option(str, "smartctl", "The smartctl program (a name looked up in PATH, or a path)."),
    "devices": Option(
        list,
        [],
        "Devices to check, each as smartctl takes it, optionally with its type: "
        '"/dev/sda" or "/dev/bus/0 -d megaraid,4". Empty: every device smartctl --scan-open finds.',
    ),
    "command_timeout": Option(
        float, 20.0, "Seconds one smartctl call may take before it is killed."
    ),
    "reallocated_threshold": Option(
        int,
        10,
        "A drive with more reallocated sectors (ATA attribute 5) or SCSI grown defects "
        "than this is a WARNING.",
    ),
    "pending_threshold": Option(
        int,
        0,
        "A drive with more pending or offline-uncorrectable sectors (ATA 197/198) or NVMe "
        "media errors than this is a WARNING.",
    ),
    "growth_hold": Option(
        float,
        86400.0,
        "Seconds a drive stays a WARNING after one of its defect counters grew between polls.",
    ),
}

# smartctl(8) RETURN VALUES: the exit status is a bit mask.
EXIT_BITS: Mapping[int, str] = {
    0: "command-line-error",
    1: "open-failed",
    2: "smart-cmd-failed/checksum",
    3: "DISK FAILING",
    4: "prefail attrs <= thresh",
    5: "attrs <= thresh in past",
    6: "error log has errors",
    7: "self-test log has errors",
}

# ATA attribute ids of the defect counters.
ATA_REALLOCATED = 5
ATA_PENDING = 197
ATA_OFFLINE_UNCORRECTABLE = 198

# NVMe critical warning bits (NVMe base specification, SMART / Health log, byte 0), as
# smartctl names them in smart_status.nvme, with the state each one means for us.
NVME_CRITICAL_WARNING: tuple[tuple[int, str, State], ...] = (
    (0, "available spare below threshold", State.WARNING),
    (1, "temperature above or below threshold", State.WARNING),
    (2, "NVM subsystem reliability degraded", State.FAILED),
    (3, "media placed in read-only mode", State.FAILED),
    (4, "volatile memory backup device failed", State.WARNING),
    (5, "persistent memory region unreliable", State.FAILED),
)


class SmartError(ValueError):
    """The document is not smartctl JSON output."""


@dataclass(frozen=True, slots=True)
class SmartReport:
    """What one ``smartctl --json -a`` document says about one drive."""

    name: str | None  # /dev/sda
    type: str | None  # sat, nvme, scsi, sat+megaraid,0
    protocol: str | None  # ATA, SCSI, NVMe
    model: str | None
    serial: str | None
    smart_status_passed: bool | None
    exit_status: int
    ata_reallocated_raw: int | None = None
    ata_pending_raw: int | None = None
    ata_offline_uncorrectable_raw: int | None = None
    ata_attrs_when_failed: tuple[str, ...] = ()  # attributes failing now
    ata_attrs_failed_past: tuple[str, ...] = ()
    nvme_critical_warning: int | None = None
    nvme_media_errors: int | None = None
    nvme_percentage_used: int | None = None
    scsi_grown_defects: int | None = None
    temperature: int | None = None
    messages: tuple[str, ...] = ()  # smartctl's own messages (errors first)

    @property
    def exit_bits(self) -> tuple[str, ...]:
        return tuple(text for bit, text in EXIT_BITS.items() if self.exit_status & (1 << bit))

    @property
    def device(self) -> str:
        """The disk's name for matching other components: sda, nvme0, megaraid,4."""
        return device_key(self.name, self.type)

    def counters(self) -> dict[str, int]:
        """The defect counters this drive reports (name -> raw count)."""
        values = {
            "reallocated": self.ata_reallocated_raw,
            "pending": self.ata_pending_raw,
            "offline_uncorrectable": self.ata_offline_uncorrectable_raw,
            "grown_defects": self.scsi_grown_defects,
            "media_errors": self.nvme_media_errors,
        }
        return {k: v for k, v in values.items() if v is not None}


def device_key(name: str | None, dev_type: str | None) -> str:
    """``/dev/sda`` -> ``sda``; a drive behind a MegaRAID controller -> ``megaraid,N``."""
    kind = dev_type or ""
    if "megaraid," in kind:
        return "megaraid," + kind.rsplit("megaraid,", 1)[1]
    return disk_of(name or "")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _ata_attrs(doc: Mapping[str, Any]) -> dict[int, Mapping[str, Any]]:
    table = doc.get("ata_smart_attributes", {}).get("table", [])
    return {a["id"]: a for a in table if isinstance(a, dict) and isinstance(a.get("id"), int)}


def _raw(attrs: Mapping[int, Mapping[str, Any]], attr_id: int) -> int | None:
    attr = attrs.get(attr_id)
    return None if attr is None else _int(attr.get("raw", {}).get("value"))


def parse_report(doc: Any) -> SmartReport:
    """One ``smartctl --json -a``/``-x`` document (decoded JSON) -> SmartReport."""
    if not isinstance(doc, dict) or not isinstance(doc.get("smartctl"), dict):
        raise SmartError("not smartctl --json output: no 'smartctl' object")
    ctl = doc["smartctl"]
    device = doc.get("device") or {}
    status = doc.get("smart_status")
    attrs = _ata_attrs(doc)
    nvme = doc.get("nvme_smart_health_information_log") or {}
    messages = sorted(
        (m for m in ctl.get("messages", []) if isinstance(m, dict)),
        key=lambda m: m.get("severity") != "error",
    )
    return SmartReport(
        name=device.get("name"),
        type=device.get("type"),
        protocol=device.get("protocol"),
        model=doc.get("model_name") or doc.get("scsi_model_name"),
        serial=doc.get("serial_number"),
        smart_status_passed=status.get("passed") if isinstance(status, dict) else None,
        exit_status=_int(ctl.get("exit_status")) or 0,
        ata_reallocated_raw=_raw(attrs, ATA_REALLOCATED),
        ata_pending_raw=_raw(attrs, ATA_PENDING),
        ata_offline_uncorrectable_raw=_raw(attrs, ATA_OFFLINE_UNCORRECTABLE),
        ata_attrs_when_failed=tuple(
            a["name"] for a in attrs.values() if a.get("when_failed") == "now"
        ),
        ata_attrs_failed_past=tuple(
            a["name"] for a in attrs.values() if a.get("when_failed") == "past"
        ),
        nvme_critical_warning=_int(nvme.get("critical_warning")),
        nvme_media_errors=_int(nvme.get("media_errors")),
        nvme_percentage_used=_int(nvme.get("percentage_used")),
        scsi_grown_defects=_int(doc.get("scsi_grown_defect_list")),
        temperature=_int((doc.get("temperature") or {}).get("current")),
        messages=tuple(str(m.get("string", "")) for m in messages),
    )


@dataclass(frozen=True, slots=True)
class ScanEntry:
    """One device of ``smartctl --scan(-open) --json``."""

    name: str
    type: str

    @property
    def argv(self) -> tuple[str, ...]:
        return (self.name, "-d", self.type) if self.type else (self.name,)


def parse_scan(doc: Any) -> tuple[ScanEntry, ...]:
    """The devices of a ``smartctl --scan --json`` document."""
    if not isinstance(doc, dict) or not isinstance(doc.get("devices", []), list):
        raise SmartError("not smartctl --scan --json output")
    return tuple(
        ScanEntry(str(d["name"]), str(d.get("type") or ""))
        for d in doc.get("devices", [])
        if isinstance(d, dict) and d.get("name")
    )


def is_scan(doc: Any) -> bool:
    """A scan document lists devices and describes none."""
    return isinstance(doc, dict) and "devices" in doc and "device" not in doc


# --- the rules -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rules:
    reallocated_threshold: int = OPTIONS["reallocated_threshold"].default
    pending_threshold: int = OPTIONS["pending_threshold"].default
    growth_hold: float = OPTIONS["growth_hold"].default


@dataclass(frozen=True, slots=True)
class History:
    """A drive's defect counters at the previous poll and when one last grew."""

    counters: Mapping[str, int] = field(default_factory=dict)
    grew_at: float | None = None
    grew: str = ""  # e.g. "reallocated 8 -> 12"


# counter -> which threshold applies
_THRESHOLD = {
    "reallocated": "reallocated_threshold",
    "grown_defects": "reallocated_threshold",
    "pending": "pending_threshold",
    "offline_uncorrectable": "pending_threshold",
    "media_errors": "pending_threshold",
}
_SEVERITY = {State.OK: 0, State.WARNING: 1, State.UNKNOWN: 2, State.FAILED: 3}


def _nvme_findings(value: int) -> list[tuple[State, str]]:
    return [
        (state, f"NVMe critical warning: {text}")
        for bit, text, state in NVME_CRITICAL_WARNING
        if value & (1 << bit)
    ]


def _findings(
    report: SmartReport, history: History, rules: Rules, now: float
) -> list[tuple[State, str]]:
    found: list[tuple[State, str]] = []
    nvme = report.nvme_critical_warning
    if nvme:
        found += _nvme_findings(nvme)
    elif report.smart_status_passed is False or report.exit_status & (1 << 3):
        found.append((State.FAILED, "SMART overall-health self-assessment: FAILED"))
    if report.ata_attrs_when_failed:
        names = ", ".join(report.ata_attrs_when_failed)
        found.append((State.WARNING, f"pre-failure attribute at or below threshold now: {names}"))
    for name, value in report.counters().items():
        limit = getattr(rules, _THRESHOLD[name])
        if value > limit:
            found.append((State.WARNING, f"{name.replace('_', ' ')} {value} (above {limit})"))
    if history.grew_at is not None and now - history.grew_at < rules.growth_hold:
        found.append((State.WARNING, f"growing: {history.grew}"))
    return found


def _grown(report: SmartReport, history: History, now: float) -> History:
    """The history after this poll: counters now, and the latest growth if any."""
    counters = report.counters()
    grew = [
        f"{name.replace('_', ' ')} {history.counters[name]} -> {value}"
        for name, value in counters.items()
        if name in history.counters and value > history.counters[name]
    ]
    if grew:
        return History(counters, now, ", ".join(grew))
    return History(counters, history.grew_at, history.grew)


def assess(
    report: SmartReport, history: History | None, rules: Rules, now: float
) -> tuple[State, str, History]:
    """The drive's state and words under ``rules`` and the history to keep for next time.

    A drive smartctl could not open or ask is UNKNOWN (never FAILED): the tool failed,
    not necessarily the drive.
    """
    history = _grown(report, history or History(), now)
    if report.exit_status & 0b11 or (
        report.smart_status_passed is None and report.nvme_critical_warning is None
    ):
        why = report.messages[0] if report.messages else "no SMART health status"
        return State.UNKNOWN, why, history
    found = _findings(report, history, rules, now)
    if not found:
        return State.OK, "SMART overall-health self-assessment: PASSED", history
    state = max((s for s, _ in found), key=_SEVERITY.__getitem__)
    return state, "; ".join(text for _, text in found), history


def _describe(report: SmartReport) -> str:
    words = [w for w in (report.model, report.protocol) if w]
    return f" ({', '.join(words)})" if words else ""


def reading(report: SmartReport, state: State, detail: str, now: float) -> Reading:
    return Reading(
        id=f"smart/{report.device}",
        kind=Kind.DISK,
        state=state,
        observed_at=now,
        detail=detail + _describe(report),
        value=None if report.temperature is None else float(report.temperature),
        unit=None if report.temperature is None else "C",
        device=report.device,
        whole_disk=True,
    )


# --- the collector -------------------------------------------------------------------------


def _device_argv(spec: str) -> tuple[str, ...]:
    """``"/dev/bus/0 -d megaraid,4"`` -> ("/dev/bus/0", "-d", "megaraid,4")."""
    return tuple(spec.split())


def _decode(argv: Sequence[str], text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise ToolError(f"{' '.join(argv)}: output is not JSON ({e})") from None


@dataclass(slots=True)
class SmartCollector:
    """Asks smartctl about each drive; remembers each drive's defect counters between polls."""

    name: str
    path: str = OPTIONS["path"].default
    devices: tuple[str, ...] = ()
    command_timeout: float = OPTIONS["command_timeout"].default
    rules: Rules = field(default_factory=Rules)
    run: Runner = run_tool
    history: dict[str, History] = field(default_factory=dict)
    missing: NotApplicable = field(init=False)

    def __post_init__(self) -> None:
        self.missing = NotApplicable(self.name)

    def _json(self, *args: str) -> Any:
        argv = (self.path, "--json=c", *args)
        return _decode(argv, self.run(argv, self.command_timeout).stdout)

    def _targets(self) -> tuple[tuple[str, ...], ...]:
        if self.devices:
            return tuple(_device_argv(d) for d in self.devices)
        return tuple(e.argv for e in parse_scan(self._json("--scan-open")))

    def collect(self, now: float) -> Snapshot:
        try:
            targets = self._targets()
        except ToolMissing as e:
            self.missing.note(e)
            return Snapshot()
        self.missing.reset()
        return Snapshot(readings=tuple(self._drive(t, now) for t in targets))

    def _drive(self, target: tuple[str, ...], now: float) -> Reading:
        """One drive's reading. A drive whose call hangs or answers garbage is UNKNOWN alone."""
        dev_type = target[2] if target[1:2] == ("-d",) else None
        try:
            report = parse_report(self._json("-a", *target))
        except (TimeoutError, ToolError, SmartError) as e:
            report = SmartReport(target[0], dev_type, None, None, None, None, 0)
            return reading(report, State.UNKNOWN, f"smartctl: {e}", now)
        if report.name is None:  # an open failure names no device: keep the target's
            report = replace(report, name=target[0], type=dev_type)
        state, detail, self.history[report.device] = assess(
            report, self.history.get(report.device), self.rules, now
        )
        return reading(report, state, detail, now)


def create(name: str, options: Mapping[str, Any]) -> SmartCollector:
    """A collector from its configuration options (see OPTIONS)."""
    o = option_values(options, OPTIONS)
    for entry in o["devices"]:
        if not entry.strip() or not entry.split()[0].startswith("/"):
            raise ValueError(
                f"{name}: option 'devices': expected a device path such as /dev/sda "
                f"(optionally followed by -d TYPE), got {entry!r}"
            )
    return SmartCollector(
        name=name,
        path=o["path"],
        devices=tuple(o["devices"]),
        command_timeout=o["command_timeout"] or OPTIONS["command_timeout"].default,
        rules=Rules(o["reallocated_threshold"], o["pending_threshold"], o["growth_hold"]),
    )
