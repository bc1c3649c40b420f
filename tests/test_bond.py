"""Tests of the bond and NIC collectors on sysfs and /proc/net/bonding fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from agent.evaluate import group_status
from agent.model import ComponentHealth, GroupState
from collectors import bond, nic
from collectors.base import Snapshot, State

FIXTURES = Path(__file__).parent / "fixtures" / "bonding"
SYSFS = FIXTURES / "node_exporter_sysfs" / "sys"
PROC = FIXTURES / "proc"
NOW = 1_700_000_000.0


def verdict(snap: Snapshot, group_id: str) -> tuple[GroupState, int]:
    """The group's state and margin as the agent's evaluation computes them."""
    (spec,) = [g for g in snap.groups if g.id == group_id]
    health = {
        r.id: ComponentHealth(r.id, r.kind, r.state, NOW, r.detail, r.value, r.unit, "t", NOW)
        for r in snap.readings
    }
    status = group_status(spec, health)
    return status.state, status.margin


def states(snap: Snapshot) -> dict[str, State]:
    return {r.id: r.state for r in snap.readings}


# --- the node_exporter sysfs fixture against its expected values -------------------------------


def test_node_exporter_sysfs_matches_expected_json(tmp_path):
    expected = json.loads((FIXTURES / "node_exporter_sysfs.expected.json").read_text())
    collector = bond.BondCollector("bond", sysfs=str(SYSFS.parent / "sys"), procfs=str(tmp_path))
    found = collector.read_bonds()
    assert sorted(found) == sorted(expected["bonding_masters"])
    for name, exp in expected["bonds"].items():
        b = found[name]
        assert b is not None
        assert len(b.slaves) == exp["slaves_total"]
        assert sum(s.mii_status == "up" for s in b.slaves) == exp["slaves_up"]
        for slave in b.slaves:
            assert slave.mii_status == exp["slaves"][slave.name]["mii_status"]
            assert slave.operstate == exp["slaves"][slave.name]["operstate"]
        assert b.mode is None  # the fixture has no bonding/mode file
    snap = collector.collect(NOW)
    assert verdict(snap, "bond/dmz") == (GroupState.REDUNDANT, 1)
    assert verdict(snap, "bond/int") == (GroupState.DEGRADED, 0)
    assert states(snap)["bond/int/eth1"] is State.FAILED
    assert states(snap)["bond/int/eth5"] is State.OK
    # bond0 has no slaves: not a redundancy group unless named
    assert "bond/bond0" not in {g.id for g in snap.groups}


def test_a_named_bond_without_slaves_or_missing_is_failed(tmp_path):
    collector = bond.create(
        "bond", {"sysfs": str(SYSFS), "procfs": str(tmp_path), "bonds": ["bond0", "bond9"]}
    )
    snap = collector.collect(NOW)
    assert verdict(snap, "bond/bond0")[0] is GroupState.FAILED
    (missing,) = [g for g in snap.groups if g.id == "bond/bond9"]
    assert missing.detail == "no such bond"
    assert verdict(snap, "bond/bond9")[0] is GroupState.FAILED


def test_no_bonding_driver_is_not_applicable(tmp_path):
    snap = bond.BondCollector("bond", sysfs=str(tmp_path), procfs=str(tmp_path)).collect(NOW)
    assert snap == Snapshot()


# --- /proc/net/bonding fixtures ---------------------------------------------------------------


def proc_snapshot(case: str, sysfs: Path | None = None) -> Snapshot:
    root = PROC / case
    return bond.BondCollector("bond", sysfs=str(sysfs or root), procfs=str(root)).collect(NOW)


def test_active_backup_with_one_slave_down_is_degraded_margin_0():
    snap = proc_snapshot("active-backup-one-down")
    (g,) = snap.groups
    assert g.id == "bond/bond0" and g.required == 1
    assert "active-backup" in g.detail and "active slave eno2" in g.detail
    assert verdict(snap, "bond/bond0") == (GroupState.DEGRADED, 0)
    r = {x.id: x for x in snap.readings}
    assert r["bond/bond0/eno1"].state is State.FAILED
    assert r["bond/bond0/eno1"].value == 3.0  # link failure count
    assert "3 link failure(s)" in r["bond/bond0/eno1"].detail
    assert r["bond/bond0/eno2"].state is State.OK
    assert "active slave" in r["bond/bond0/eno2"].detail


def test_lacp_below_min_links_is_failed():
    snap = proc_snapshot("lacp-below-min-links")
    (g,) = snap.groups
    assert g.required == 3 and len(g.members) == 4
    assert "802.3ad" in g.detail and "min_links 3" in g.detail
    assert verdict(snap, "bond/bond1") == (GroupState.FAILED, -1)


def test_all_slaves_down_is_failed():
    snap = proc_snapshot("all-slaves-down")
    assert set(states(snap).values()) == {State.FAILED}
    assert verdict(snap, "bond/bond0") == (GroupState.FAILED, -1)


def test_lacp_slave_in_a_foreign_aggregator_carries_no_traffic():
    snap = proc_snapshot("lacp-foreign-aggregator")
    r = {x.id: x for x in snap.readings}
    assert r["bond/bond0/eth0"].state is State.OK
    assert r["bond/bond0/eth1"].state is State.FAILED
    assert "not the active aggregator 1" in r["bond/bond0/eth1"].detail
    assert verdict(snap, "bond/bond0") == (GroupState.DEGRADED, 0)


def test_required_per_mode_table():
    for mode in bond.MODES:
        b = bond.Bond("b", mode=mode, min_links=2)
        assert bond.required_slaves(b) == (2 if mode == "802.3ad" else 1)
    assert bond.required_slaves(bond.Bond("b", mode="802.3ad", min_links=0)) == 1
    assert bond.required_slaves(bond.Bond("b", mode=None)) == 1


@pytest.mark.parametrize(
    ("text", "mode"),
    [(words, name) for name, (_, words) in bond.MODES.items()]
    + [("fault-tolerance (active-backup) (fail_over_mac active)", "active-backup")],
)
def test_every_mode_name_of_the_status_file(text, mode):
    parsed = bond.parse_proc_bonding("b", f"Bonding Mode: {text}\nMII Status: up\n")
    assert parsed.mode == mode


def test_not_a_status_file_is_an_error_naming_the_bond():
    with pytest.raises(bond.BondError, match="bondX"):
        bond.parse_proc_bonding("bondX", "Personalities : [raid1]\n")


def test_sysfs_fills_what_the_status_file_lacks(tmp_path):
    # the status file of the active-backup case plus a sysfs tree with the slaves' roles
    root = tmp_path / "root"
    shutil.copytree(PROC / "active-backup-one-down", root)
    net = root / "class" / "net"
    (net / "bond0" / "bonding").mkdir(parents=True)
    (net / "bonding_masters").write_text("bond0\n")
    (net / "bond0" / "bonding" / "mode").write_text("active-backup 1\n")
    (net / "bond0" / "bonding" / "slaves").write_text("eno1 eno2\n")
    for slave, role in (("eno1", "backup"), ("eno2", "active")):
        d = net / slave / "bonding_slave"
        d.mkdir(parents=True)
        (d / "state").write_text(role + "\n")
        (d / "mii_status").write_text("up\n")  # the status file wins: eno1 stays down
        (net / slave / "operstate").write_text("up\n")
    snap = bond.BondCollector("bond", sysfs=str(root), procfs=str(root)).collect(NOW)
    r = {x.id: x for x in snap.readings}
    assert r["bond/bond0/eno1"].state is State.FAILED
    assert "backup" in r["bond/bond0/eno1"].detail
    # sysfs alone (no status file) decides from its own mii_status
    (root / "net" / "bonding" / "bond0").unlink()
    snap = bond.BondCollector("bond", sysfs=str(root), procfs=str(root)).collect(NOW)
    assert states(snap)["bond/bond0/eno1"] is State.OK
    assert snap.groups[0].detail.startswith("active-backup")


# --- plain NICs ---------------------------------------------------------------------------------


def make_link(net: Path, name: str, operstate: str, carrier: str | None, speed: str = "1000"):
    d = net / name
    d.mkdir(parents=True)
    (d / "operstate").write_text(operstate + "\n")
    if carrier is not None:
        (d / "carrier").write_text(carrier + "\n")
    (d / "speed").write_text(speed + "\n")


def test_nic_pair_states_and_group(tmp_path):
    net = tmp_path / "class" / "net"
    make_link(net, "eno1", "up", "1")
    make_link(net, "eno2", "down", None)  # admin down: carrier unreadable
    make_link(net, "eno3", "unknown", "1")
    c = nic.create(
        "uplinks", {"interfaces": ["eno1", "eno2", "eno3", "eno4"], "sysfs": str(tmp_path)}
    )
    snap = c.collect(NOW)
    s = states(snap)
    assert s == {
        "nic/eno1": State.OK,
        "nic/eno2": State.FAILED,
        "nic/eno3": State.OK,
        "nic/eno4": State.ABSENT,
    }
    (g,) = snap.groups
    assert g.id == "nic/uplinks" and g.required == 1
    assert verdict(snap, "nic/uplinks") == (GroupState.DEGRADED, 1)


@pytest.mark.parametrize(
    ("operstate", "carrier", "state"),
    [
        ("up", "1", State.OK),
        ("up", "0", State.FAILED),
        ("lowerlayerdown", "0", State.FAILED),
        ("dormant", "1", State.WARNING),
        ("notpresent", None, State.ABSENT),
        ("unknown", "0", State.FAILED),
        ("unknown", None, State.FAILED),
        ("weird", "1", State.UNKNOWN),
    ],
)
def test_nic_state_table(operstate, carrier, state):
    assert nic.parse_link(nic.Link("x", True, operstate, carrier))[0] is state


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"interfaces": []}, "at least one"),
        ({"interfaces": ["a", "a"]}, "twice"),
        ({"interfaces": ["a", "b"], "required": 3}, "expected 1 to 2"),
    ],
)
def test_nic_bad_options_name_the_key(options, message):
    with pytest.raises(ValueError, match=message):
        nic.create("n", options)


def test_status_and_check_with_bond_and_nic_collectors(tmp_path):
    from tests.conftest import hotspare
    from tests.schemas import validate

    cfg = tmp_path / "agent.toml"
    cfg.write_text(
        f'[agent]\nsite = "dc1"\nhost = "h"\nstate_dir = "{tmp_path}"\n'
        f'[[collectors.bond]]\nsysfs = "{SYSFS}"\nprocfs = "{PROC / "active-backup-one-down"}"\n'
        f'[[collectors.nic]]\nname = "storage"\ninterfaces = ["dmz", "int"]\nsysfs = "{SYSFS}"\n'
    )
    r = hotspare("status", "--json", "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    h = json.loads(r.stdout)
    validate("health", h)
    groups = {g["id"]: g for g in h["groups"]}
    assert groups["bond/int"]["state"] == "degraded"
    assert groups["bond/dmz"]["state"] == "redundant"
    assert groups["nic/storage"]["state"] == "redundant"
    # bond0 has a status file here (the active-backup case) and one slave down
    assert groups["bond/bond0"]["state"] == "degraded"
    assert h["state"] == "degraded"
    r = hotspare("check", "--config", str(cfg))
    assert r.returncode == 1 and r.stdout.startswith("HOTSPARE")


def test_a_bond_without_carrier_is_failed_even_with_slaves_up():
    text = (PROC / "lacp-foreign-aggregator" / "net" / "bonding" / "bond0").read_text()
    text = text.replace("MII Status: up\nMII Polling", "MII Status: down\nMII Polling", 1)
    snap = bond.snapshot({"bond0": bond.parse_proc_bonding("bond0", text)}, NOW)
    (g,) = snap.groups
    assert g.stated is bond.Verdict.FAILED and "no carrier" in g.stated_reason
    assert verdict(snap, "bond/bond0")[0] is GroupState.FAILED


@pytest.mark.parametrize(
    ("mii", "state"),
    [
        ("up", State.OK),
        ("going down", State.WARNING),
        ("down", State.FAILED),
        ("going back", State.FAILED),
        ("bogus", State.UNKNOWN),
    ],
)
def test_slave_mii_status_table(mii, state):
    b = bond.Bond("b", mode="active-backup", slaves=(bond.Slave("eth0", mii_status=mii),))
    assert bond.slave_state(b, b.slaves[0])[0] is state
