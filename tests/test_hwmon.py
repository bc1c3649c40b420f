"""hwmon and power_supply: the rules on plain sysfs trees, and the collector at its default
``/sys`` inside umockdev testbeds built from the device trees in fixtures/hwmon."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from collectors import hwmon
from collectors.base import GroupKind, Kind, State
from collectors.hwmon import Channel, Supply, parse_fan, parse_supply, parse_temp
from tests.conftest import ROOT
from tests.schemas import validate

FIXTURES = Path(__file__).parent / "fixtures" / "hwmon"
NOW = 1_700_000_000.0


def fan(**attrs: str) -> Channel:
    return Channel("chip", "fan1", attrs)


def temp(**attrs: str) -> Channel:
    return Channel("chip", "temp1", attrs)


@pytest.mark.parametrize(
    ("attrs", "state"),
    [
        ({"input": "1200", "min": "600"}, State.OK),
        ({"input": "500", "min": "600"}, State.WARNING),
        ({"input": "0", "min": "600"}, State.FAILED),
        ({"input": "1200", "min": "600", "fault": "1"}, State.FAILED),
        ({"input": "1200", "min": "600", "alarm": "1"}, State.WARNING),
        ({"input": "900"}, State.OK),
        ({"min": "600"}, State.UNKNOWN),
    ],
)
def test_fan_rules(attrs, state):
    parsed = parse_fan(fan(**attrs))
    assert parsed is not None and parsed[0] is state


def test_an_unpopulated_fan_header_is_not_reported():
    assert parse_fan(fan(input="0")) is None
    assert parse_fan(fan(input="0", min="0")) is None


@pytest.mark.parametrize(
    ("attrs", "state", "celsius"),
    [
        ({"input": "45000", "max": "80000", "crit": "95000"}, State.OK, 45.0),
        ({"input": "80000", "max": "80000", "crit": "95000"}, State.WARNING, 80.0),
        ({"input": "96500", "max": "80000", "crit": "95000"}, State.FAILED, 96.5),
        ({"input": "45000", "crit_alarm": "1"}, State.FAILED, 45.0),
        ({"input": "45000", "max_alarm": "1"}, State.WARNING, 45.0),
        ({"input": "45000", "fault": "1"}, State.UNKNOWN, 45.0),
        ({"input": "45000"}, State.OK, 45.0),
        ({}, State.UNKNOWN, None),
    ],
)
def test_temperature_rules(attrs, state, celsius):
    got = parse_temp(temp(**attrs))
    assert (got[0], got[2]) == (state, celsius)


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"type": "Mains", "online": "1"}, State.OK),
        ({"type": "Mains", "online": "0"}, State.FAILED),
        ({"type": "UPS", "online": "2"}, State.OK),
        ({"type": "Mains", "present": "0", "online": "0"}, State.ABSENT),
        ({"type": "Mains"}, State.UNKNOWN),
        ({"type": "Battery", "online": "0"}, None),
        ({"type": "USB", "online": "0"}, None),
    ],
)
def test_power_supply_rules(attrs, expected):
    got = parse_supply(Supply("x", attrs))
    assert (got[0] if got else None) is expected


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text + "\n")


def test_plain_tree_groups_and_ids(tmp_path):
    write_tree(
        tmp_path,
        {
            "class/hwmon/hwmon0/name": "it8728",
            "class/hwmon/hwmon0/fan1_input": "1500",
            "class/hwmon/hwmon0/fan2_input": "0",
            "class/hwmon/hwmon0/fan2_min": "500",
            "class/hwmon/hwmon0/temp1_input": "30000",
            "class/hwmon/hwmon1/name": "it8728",
            "class/hwmon/hwmon1/fan1_input": "1400",
            "class/power_supply/AC/type": "Mains",
            "class/power_supply/AC/online": "1",
        },
    )
    snap = hwmon.create("hw", {"sysfs": str(tmp_path), "temperatures": False}).collect(NOW)
    r = {x.id: x for x in snap.readings}
    assert set(r) == {
        "hwmon/it8728/fan1",
        "hwmon/it8728/fan2",
        "hwmon/it8728-2/fan1",
        "power_supply/AC",
    }
    assert r["hwmon/it8728/fan2"].state is State.FAILED
    assert r["hwmon/it8728/fan1"].value == 1500 and r["hwmon/it8728/fan1"].unit == "RPM"
    (g,) = snap.groups  # one supply only: no power group
    assert (g.id, g.kind, g.required, len(g.members)) == ("cooling/hwmon", GroupKind.COOLING, 2, 3)


def test_no_hwmon_and_no_supplies_is_not_applicable(tmp_path):
    snap = hwmon.HwmonCollector("hw", sysfs=str(tmp_path)).collect(NOW)
    assert snap.readings == () and snap.groups == ()


# --- umockdev ----------------------------------------------------------------------------------

needs_umockdev = pytest.mark.skipif(
    shutil.which("umockdev-run") is None, reason="umockdev is installed by scripts/bootstrap"
)


def status_in_testbed(tmp_path: Path, device_file: str) -> dict:
    """``hotspare status --json`` with the hwmon collector at the default /sys, in a testbed."""
    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        f'[agent]\nsite = "dc1"\nhost = "h"\nstate_dir = "{tmp_path}"\n[[collectors.hwmon]]\n'
    )
    out = subprocess.run(
        [
            "umockdev-run",
            "--device",
            str(FIXTURES / device_file),
            "--",
            sys.executable,
            "-m",
            "agent.cli",
            "status",
            "--json",
            "--config",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    doc = json.loads(out.stdout)
    validate("health", doc)  # the wire contract's schema holds for these kinds and units
    return doc


def by_id(items: list[dict]) -> dict[str, dict]:
    return {i["id"]: i for i in items}


@needs_umockdev
def test_umockdev_healthy_server(tmp_path):
    h = status_in_testbed(tmp_path, "server-ok.umockdev")
    groups, comps = by_id(h["groups"]), by_id(h["components"])
    assert h["state"] == "redundant"
    assert groups["cooling/hwmon"]["required"] == 2 and groups["cooling/hwmon"]["total"] == 3
    assert groups["power/power_supply"]["state"] == "redundant"
    assert "hwmon/nct6779/fan4" not in comps  # unpopulated header
    assert "power_supply/BAT0" not in comps
    assert comps["hwmon/coretemp-2/temp1"]["value"] == 47.0
    assert all(c["state"] == "ok" for c in comps.values())


@needs_umockdev
def test_umockdev_fan_stopped_fan_slow_hot_cpu_psu_offline(tmp_path):
    h = status_in_testbed(tmp_path, "server-faults.umockdev")
    groups, comps = by_id(h["groups"]), by_id(h["components"])
    states = {cid: c["state"] for cid, c in comps.items()}
    assert states["hwmon/nct6779/fan2"] == "failed"
    assert states["hwmon/nct6779/fan3"] == "warning"
    assert states["hwmon/nct6779/temp1"] == "warning"
    assert states["hwmon/coretemp/temp1"] == "failed"
    assert "Package id 0" in comps["hwmon/coretemp/temp1"]["detail"]
    assert states["power_supply/PSU2"] == "failed"
    cooling, power = groups["cooling/hwmon"], groups["power/power_supply"]
    assert (cooling["state"], cooling["margin"]) == ("degraded", 0)
    assert (power["state"], power["margin"]) == ("degraded", 0)
    assert comps["power_supply/PSU1"]["kind"] == Kind.PSU.value
