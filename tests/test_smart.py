"""SMART: every recorded smartctl output against its ground truth, the rules, the collector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collectors import smart
from collectors.base import State
from collectors.smart import History, Rules, SmartReport, assess, parse_report, parse_scan
from collectors.tool import ToolMissing, ToolResult

FIXTURES = Path(__file__).parent / "fixtures" / "smart"
INDEX = {s["file"]: s for s in json.loads((FIXTURES / "INDEX.json").read_text())["samples"]}
SAMPLES = sorted(p.name for p in FIXTURES.glob("*.json") if p.name != "INDEX.json")


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def test_every_fixture_has_ground_truth_and_every_entry_a_file():
    assert set(SAMPLES) == set(INDEX), "a smart fixture without an INDEX.json entry (or vice versa)"


@pytest.mark.parametrize("name", SAMPLES)
def test_fixture_matches_index(name):
    doc, want = load(name), INDEX[name]
    if smart.is_scan(doc):
        assert want["type"] is None and want["smart_status_passed"] is None
        assert all(e.name.startswith("/dev/") for e in parse_scan(doc))
        return
    r = parse_report(doc)
    got = {
        "type": r.type,
        "protocol": r.protocol,
        "model": r.model,
        "smart_status_passed": r.smart_status_passed,
        "exit_status": r.exit_status,
        "exit_bits": list(r.exit_bits),
        "ata_reallocated_raw": r.ata_reallocated_raw,
        "ata_pending_raw": r.ata_pending_raw,
        "ata_attrs_when_failed": list(r.ata_attrs_when_failed),
        "nvme_critical_warning": r.nvme_critical_warning,
        "nvme_media_errors": r.nvme_media_errors,
        "nvme_percentage_used": r.nvme_percentage_used,
        "scsi_grown_defects": r.scsi_grown_defects,
        "temperature": r.temperature,
        "messages": list(r.messages),
    }
    assert got == {k: want[k] for k in got}


# Our verdict per fixture under the default rules (docs/storage.md); every fixture listed.
VERDICTS = {
    "scrutiny__smart-fail2.json": State.FAILED,  # self-assessment FAILED, 1975 reallocated
    "smartctl_exporter__nvme-null-SAMSUNG_MZWLL3T2HAJQ-00005-nvme0.json": State.WARNING,
    "scrutiny__smart-nvme-failed.json": State.WARNING,  # 7 media errors
    "scrutiny__smart-fail.json": State.UNKNOWN,  # could not open the device
    "scrutiny__smart-raid.json": State.UNKNOWN,  # a RAID volume: no SMART status
}


@pytest.mark.parametrize("name", [n for n in SAMPLES if not smart.is_scan(load(n))])
def test_verdict_under_default_rules(name):
    state, detail, _ = assess(parse_report(load(name)), None, Rules(), 100.0)
    assert state == VERDICTS.get(name, State.OK), detail


def test_failed_self_assessment_names_the_failing_attribute():
    state, detail, _ = assess(parse_report(load("scrutiny__smart-fail2.json")), None, Rules(), 0)
    assert state == State.FAILED
    assert "self-assessment: FAILED" in detail
    assert "Reallocated_Sector_Ct" in detail and "reallocated 1975 (above 10)" in detail


def report(**kw) -> SmartReport:
    base = {
        "name": "/dev/sdb",
        "type": "sat",
        "protocol": "ATA",
        "model": "m",
        "serial": "s",
        "smart_status_passed": True,
        "exit_status": 0,
        "ata_reallocated_raw": 0,
        "ata_pending_raw": 0,
    }
    return SmartReport(**{**base, **kw})


def test_growth_since_the_previous_poll_warns_for_the_hold_time_then_clears():
    rules = Rules(reallocated_threshold=100, growth_hold=3600)
    state, _, h = assess(report(ata_reallocated_raw=3), None, rules, 0)
    assert state == State.OK  # first sight: nothing to compare with, under the threshold
    state, detail, h = assess(report(ata_reallocated_raw=5), h, rules, 60)
    assert state == State.WARNING and "reallocated 3 -> 5" in detail
    state, _, h = assess(report(ata_reallocated_raw=5), h, rules, 120)
    assert state == State.WARNING  # still within the hold time
    state, _, h = assess(report(ata_reallocated_raw=5), h, rules, 60 + 3600)
    assert state == State.OK


def test_pending_sector_above_threshold_warns():
    state, detail, _ = assess(report(ata_pending_raw=1), None, Rules(), 0)
    assert state == State.WARNING and "pending 1 (above 0)" in detail


@pytest.mark.parametrize(
    ("bits", "state"),
    [
        (0b1, State.WARNING),
        (0b10, State.WARNING),
        (0b100, State.FAILED),
        (0b1000, State.FAILED),
        (0b10000, State.WARNING),
        (0b100000, State.FAILED),
        (0b10001, State.WARNING),
    ],
)
def test_nvme_critical_warning_table(bits, state):
    r = report(
        protocol="NVMe",
        type="nvme",
        name="/dev/nvme0",
        smart_status_passed=False,
        ata_reallocated_raw=None,
        ata_pending_raw=None,
        nvme_critical_warning=bits,
        nvme_media_errors=0,
    )
    got, detail, _ = assess(r, None, Rules(), 0)
    assert got == state, detail
    assert detail.startswith("NVMe critical warning")


@pytest.mark.parametrize(
    ("name", "dev_type", "key"),
    [
        ("/dev/sda", "sat", "sda"),
        ("/dev/nvme0", "nvme", "nvme0"),
        ("/dev/nvme1n1", "nvme", "nvme1"),
        ("/dev/sda", "sat+megaraid,0", "megaraid,0"),
        ("/dev/bus/0", "megaraid,12", "megaraid,12"),
    ],
)
def test_device_key(name, dev_type, key):
    assert smart.device_key(name, dev_type) == key


class Replay:
    """Answers smartctl calls from recorded outputs: scan -> the scan file, -a DEV -> per device."""

    def __init__(self, scan: str, devices: dict[str, str]):
        self.scan, self.devices, self.calls = scan, devices, []

    def __call__(self, argv, timeout):
        self.calls.append(tuple(argv))
        name = self.scan if "--scan-open" in argv else self.devices[argv[3]]
        return ToolResult(tuple(argv), 0, (FIXTURES / name).read_text())


def test_collector_scans_then_asks_each_device():
    run = Replay(
        "netdata__type-sat_scan.json",
        {
            "/dev/sda": "netdata__type-sat_device-hdd-sda.json",
            "/dev/sdc": "scrutiny__smart-fail2.json",
        },
    )
    c = smart.create("smart", {})
    c.run = run
    snap = c.collect(10.0)
    assert run.calls[0] == ("smartctl", "--json=c", "--scan-open")
    assert run.calls[1] == ("smartctl", "--json=c", "-a", "/dev/sda", "-d", "sat")
    by_id = {r.id: r for r in snap.readings}
    assert by_id["smart/sda"].state == State.OK and by_id["smart/sda"].device == "sda"
    assert by_id["smart/sdc"].state == State.FAILED and by_id["smart/sdc"].unit == "C"


def test_collector_configured_devices_keep_their_type():
    run = Replay("", {"/dev/bus/0": "scrutiny__smart-megaraid0.json"})
    c = smart.create("smart", {"devices": ["/dev/bus/0 -d sat+megaraid,0"]})
    c.run = run
    (r,) = c.collect(0).readings
    assert run.calls == [("smartctl", "--json=c", "-a", "/dev/bus/0", "-d", "sat+megaraid,0")]
    assert r.id == "smart/megaraid,0" and r.device == "megaraid,0"


def test_missing_smartctl_is_not_applicable_and_said_once(caplog):
    def missing(argv, timeout):
        raise ToolMissing(f"{argv[0]}: not installed")

    c = smart.create("smart", {"path": "/nonexistent/smartctl"})
    c.run = missing
    caplog.set_level("INFO")
    assert c.collect(0).readings == () and c.collect(1).readings == ()
    said = [r for r in caplog.records if "not applicable" in r.getMessage()]
    assert len(said) == 1 and "/nonexistent/smartctl" in said[0].getMessage()


def test_real_tool_missing_raises_tool_missing():
    from collectors.tool import run_tool

    with pytest.raises(ToolMissing):
        run_tool(["/nonexistent/smartctl", "--scan"], 5)


def test_growth_history_is_kept_per_drive_by_the_collector():
    docs = {"/dev/sda": load("netdata__type-sat_device-hdd-sda.json")}

    def run(argv, timeout):
        return ToolResult(tuple(argv), 0, json.dumps(docs["/dev/sda"]))

    c = smart.create("smart", {"devices": ["/dev/sda"]})
    c.run = run
    assert c.collect(0).readings[0].state == State.OK
    for attr in docs["/dev/sda"]["ata_smart_attributes"]["table"]:
        if attr["id"] == 197:
            attr["raw"]["value"] = 0  # unchanged
        if attr["id"] == 5:
            attr["raw"]["value"] = 2  # grew from 0, below the threshold of 10
    (r,) = c.collect(60).readings
    assert r.state == State.WARNING and "reallocated 0 -> 2" in r.detail
    assert isinstance(c.history["sda"], History)


def real_smartctl() -> str:
    import shutil

    found = shutil.which("smartctl") or "/usr/sbin/smartctl"
    assert Path(found).exists(), "smartctl missing: scripts/bootstrap installs smartmontools"
    return found


def test_real_smartctl_accepts_our_arguments_and_its_answers_parse():
    """The real smartctl (smartmontools >= 7): scan, then a device it cannot ask."""
    c = smart.create("smart", {"path": real_smartctl(), "command_timeout": 30.0})
    scanned = c.collect(0.0)  # whatever this machine has: it must parse, nothing may fail
    assert all(r.id.startswith("smart/") for r in scanned.readings)
    c = smart.create("smart", {"path": real_smartctl(), "devices": ["/dev/null"]})
    (r,) = c.collect(0.0).readings
    assert r.id == "smart/null" and r.state == State.UNKNOWN
    assert "/dev/null" in r.detail  # smartctl's own message, e.g. "Unable to detect device type"


def test_a_hung_drive_is_unknown_alone():
    def run(argv, timeout):
        if argv[-1] == "/dev/sdb":
            raise TimeoutError(f"{' '.join(argv)}: no answer within {timeout:g} s")
        return ToolResult(
            tuple(argv), 0, (FIXTURES / "netdata__type-sat_device-hdd-sda.json").read_text()
        )

    c = smart.create("smart", {"devices": ["/dev/sda", "/dev/sdb"], "command_timeout": 3.0})
    c.run = run
    by_id = {r.id: r for r in c.collect(0).readings}
    assert by_id["smart/sda"].state == State.OK
    assert (
        by_id["smart/sdb"].state == State.UNKNOWN
        and "no answer within 3 s" in by_id["smart/sdb"].detail
    )


def test_devices_must_be_paths():
    with pytest.raises(ValueError, match=r"'devices'.*'sda'"):
        smart.create("smart", {"devices": ["sda"]})
