"""A disk's SMART verdict counts against the groups its partitions or slots are members of."""

from __future__ import annotations

import pytest

from agent.evaluate import Evaluator, Policy, share_device_health
from agent.model import ComponentHealth, GroupState
from collectors import mdstat
from collectors.base import Kind, Reading, Snapshot, State, disk_of
from tests.conftest import FIXTURES


def health(cid: str, state: State, detail: str = "", since: float = 0.0) -> ComponentHealth:
    return ComponentHealth(cid, Kind.DISK, state, since, since, detail)


@pytest.mark.parametrize(
    ("name", "disk"),
    [
        ("sdb1", "sdb"),
        ("/dev/sdb", "sdb"),
        ("sdaa12", "sdaa"),
        ("nvme0n1p2", "nvme0"),
        ("nvme3n1", "nvme3"),
        ("vda1", "vda"),
        ("xvdf", "xvdf"),
        ("mmcblk0p1", "mmcblk0"),
        ("dm-3", "dm-3"),
        ("megaraid,4", "megaraid,4"),
    ],
)
def test_disk_of(name, disk):
    assert disk_of(name) == disk


def test_failed_disk_fails_the_member_on_it_and_keeps_both_reasons():
    comps = {
        "md/md0/sdb1": health("md/md0/sdb1", State.OK, "in sync"),
        "smart/sdb": health("smart/sdb", State.FAILED, "self-assessment FAILED", since=5),
        "md/md0/sda1": health("md/md0/sda1", State.OK, "in sync"),
    }
    out = share_device_health(
        comps, {"md/md0/sdb1": "sdb", "smart/sdb": "sdb", "md/md0/sda1": "sda"}, ["smart/sdb"]
    )
    assert out["md/md0/sdb1"].state == State.FAILED
    assert (
        out["md/md0/sdb1"].detail == "in sync; smart/sdb on the same disk: self-assessment FAILED"
    )
    assert out["md/md0/sdb1"].since == 5
    assert out["md/md0/sda1"] == comps["md/md0/sda1"]
    assert out["smart/sdb"] == comps["smart/sdb"]


@pytest.mark.parametrize(
    ("member", "disk", "want"),
    [
        (State.OK, State.WARNING, State.WARNING),
        (State.WARNING, State.FAILED, State.FAILED),
        (State.WARNING, State.WARNING, State.WARNING),
        (State.FAILED, State.WARNING, State.FAILED),  # never made better
        (State.OK, State.UNKNOWN, State.OK),  # a silent smartctl says nothing about the disk
        (State.OK, State.ABSENT, State.OK),
        (State.UNKNOWN, State.FAILED, State.UNKNOWN),  # unknown stays unknown: no action on it
    ],
)
def test_which_states_spread(member, disk, want):
    comps = {"m": health("m", member, "x"), "s": health("s", disk, "y")}
    assert share_device_health(comps, {"m": "d", "s": "d"}, ["s"])["m"].state == want


def test_without_devices_or_judges_nothing_changes():
    comps = {"m": health("m", State.OK), "s": health("s", State.FAILED)}
    assert share_device_health(comps, {}, ["s"]) == comps
    assert share_device_health(comps, {"m": "d", "s": "d"}) == comps


def test_only_a_whole_disk_judge_spreads():
    """md kicking sdb1 out says nothing about the ZFS partition sdb2, nor about SMART."""
    comps = {
        "md/md0/sdb1": health("md/md0/sdb1", State.FAILED, "faulty (F)"),
        "zfs/tank/mirror-0/sdb2": health("zfs/tank/mirror-0/sdb2", State.OK, "ONLINE"),
        "smart/sdb": health("smart/sdb", State.OK, "PASSED"),
    }
    devices = dict.fromkeys(comps, "sdb")
    assert share_device_health(comps, devices, ["smart/sdb"]) == comps


def test_evaluator_smart_failure_degrades_the_md_array():
    """Real mdstat capture (raid5, clean) + a SMART FAILED reading for one member's disk."""
    text = (FIXTURES / "mdstat" / "pymdstat__mdstat.02.txt").read_text()
    md = mdstat.snapshot(mdstat.parse_mdstat(text), 100.0)
    group = md.groups[0]
    member = group.members[0]
    disk = next(r.device for r in md.readings if r.id == member)
    assert disk and disk == disk_of(member.rsplit("/", 1)[1])
    ev = Evaluator(Policy(stale_after=60))
    ev.observe("mdstat", md, 100.0)
    before = {g.id: g.state for g in ev.evaluate("dc1", "h", 100.0).groups}
    assert before[group.id] == GroupState.REDUNDANT
    bad = Reading(
        f"smart/{disk}", Kind.DISK, State.FAILED, 100.0, "FAILED", device=disk, whole_disk=True
    )
    ev.observe("smart", Snapshot(readings=(bad,)), 100.0)
    after = ev.evaluate("dc1", "h", 100.0)
    g = next(g for g in after.groups if g.id == group.id)
    assert g.state == GroupState.DEGRADED and g.healthy == g.total - 1
    assert f"{member} failed" in g.reason


def test_evaluator_smart_failure_behind_a_megaraid_controller_degrades_the_vd():
    """Recorded storcli M5015 raid6 + a SMART FAILED reading of the drive with device id 34."""
    from collectors.raid import model, storcli

    doc = FIXTURES / "raidctl/storcli_perccli_json/netdata__storcli__megaraid-controllers-info.json"
    raid = model.snapshot(storcli.parse(doc.read_text()), 100.0)
    ev = Evaluator(Policy(stale_after=60))
    ev.observe("raidctl", raid, 100.0)
    bad = Reading(
        "smart/megaraid,34",
        Kind.DISK,
        State.FAILED,
        100.0,
        "FAILED",
        device="megaraid,34",
        whole_disk=True,
    )
    ev.observe("smart", Snapshot(readings=(bad,)), 100.0)
    health = ev.evaluate("dc1", "h", 100.0)
    g = next(g for g in health.groups if g.id == "raid/c0/vd0")
    assert g.state == GroupState.DEGRADED and g.healthy == 5 and g.required == 4
    assert "raid/c0/pd/252:0 failed" in g.reason  # EID:Slt 252:0 has DID 34
