"""ZFS: zpool status fixtures against their ground truth, vdev rules, the collector."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.evaluate import group_status
from agent.model import ComponentHealth
from collectors import zfs
from collectors.base import State
from collectors.tool import ToolMissing, ToolResult

FIXTURES = Path(__file__).parent / "fixtures" / "zfs"
EXPECTED = json.loads((FIXTURES / "EXPECTED.json").read_text())["files"]
SAMPLES = sorted(p.name for p in FIXTURES.glob("*.txt"))


def evaluate(text: str):
    snap = zfs.snapshot(zfs.parse_status(text), 0.0)
    health = {
        r.id: ComponentHealth(r.id, r.kind, r.state, 0, 0, r.detail, r.value, r.unit)
        for r in snap.readings
    }
    groups = {g.id: group_status(g, health) for g in snap.groups}
    return snap, groups


def test_every_fixture_has_ground_truth():
    assert set(SAMPLES) == set(EXPECTED), "a zfs fixture without an EXPECTED.json entry"


@pytest.mark.parametrize("name", SAMPLES)
def test_fixture_matches_ground_truth(name):
    snap, groups = evaluate((FIXTURES / name).read_text())
    got = {g.id: [g.state.value, g.healthy, g.total, g.required] for g in groups.values()}
    assert got == EXPECTED[name]["groups"]
    not_ok = {r.id: r.state.value for r in snap.readings if r.state != State.OK}
    assert not_ok == EXPECTED[name]["not_ok"]


def test_resilver_with_spare_in_use():
    snap, groups = evaluate((FIXTURES / "resilver-spare-inuse.txt").read_text())
    g = groups["zfs/tank/mirror-0"]
    # the spare resilvering into the slot adds no margin until it is in sync
    assert "zfs/tank/mirror-0/sdd" in g.spares and "zfs/tank/mirror-0/sdd" not in g.members
    assert "resilver 25.06%" in g.detail
    r = {x.id: x for x in snap.readings}
    assert r["zfs/tank/mirror-0/sdd"].value == 25.06 and r["zfs/tank/mirror-0/sdd"].unit == "%"
    assert r["zfs/tank/spares/sdd"].detail == "INUSE currently in use"
    assert "zfs/tank/spares/sdg" in g.spares and "zfs/tank/spares/sdd" not in g.spares


def test_spare_in_sync_serves_the_slot():
    text = (FIXTURES / "resilver-spare-inuse.txt").read_text()
    done = text.replace("(resilvering)", "").replace("resilver in progress", "resilvered")
    _, groups = evaluate(done)
    g = groups["zfs/tank/mirror-0"]
    assert "zfs/tank/mirror-0/sdd" in g.members and g.healthy == 2 and g.total == 2
    # ZFS still calls the vdev DEGRADED until the faulted disk is replaced: the worse wins
    assert g.state.value == "degraded" and "the device says: DEGRADED" in g.reason


def test_missing_disk_named_by_guid_keeps_its_old_device_for_smart():
    snap, _ = evaluate((FIXTURES / "degraded-mirror.txt").read_text())
    r = {x.id: x for x in snap.readings}
    assert r["zfs/rpool/mirror-0/11926384237539416722"].device == "sdb"
    assert r["zfs/rpool/mirror-0/sda2"].device == "sda"


@pytest.mark.parametrize(
    ("vdev", "children", "tolerated"),
    [
        ("mirror-0", 2, 1),
        ("mirror-3", 3, 2),
        ("raidz1-0", 5, 1),
        ("raidz-0", 3, 1),
        ("raidz2-1", 6, 2),
        ("raidz3-0", 9, 3),
        ("draid2:4d:1s:11c-0", 11, 2),
        ("sda", 1, 0),
    ],
)
def test_losses_tolerated_from_the_vdev_type(vdev, children, tolerated):
    assert zfs.losses_tolerated(vdev, children) == tolerated


def test_parse_keeps_status_scan_and_errors():
    (pool,) = zfs.parse_status((FIXTURES / "resilver-spare-inuse.txt").read_text())
    assert pool.state == "DEGRADED" and pool.resilvering and pool.scan_percent == 25.06
    assert pool.status.startswith("One or more devices is currently being resilvered.")
    assert pool.errors == "No known data errors"
    assert [s.state for s in pool.spares] == ["INUSE", "AVAIL"]


def test_no_pools_and_garbage():
    assert zfs.parse_status("no pools available\n") == ()
    with pytest.raises(zfs.ZfsError):
        zfs.parse_status("hello\n")


def test_collector_runs_zpool_status_p_and_reports_missing_zpool_once(caplog):
    calls = []

    def run(argv, timeout):
        calls.append(tuple(argv))
        return ToolResult(tuple(argv), 0, (FIXTURES / "degraded-mirror.txt").read_text())

    c = zfs.create("zfs", {"path": "/sbin/zpool"})
    c.run = run
    c.device_of = zfs.default_device
    assert {g.id for g in c.collect(0).groups} == {"zfs/rpool", "zfs/rpool/mirror-0"}
    assert calls == [("/sbin/zpool", "status", "-p")]

    def missing(argv, timeout):
        raise ToolMissing(f"{argv[0]}: not installed")

    c.run = missing
    caplog.set_level("INFO")
    assert c.collect(1).groups == () and c.collect(2).groups == ()
    assert len([r for r in caplog.records if "not applicable" in r.getMessage()]) == 1


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_damaged_outputs_parse_or_raise_zfs_error(data):
    lines = (FIXTURES / data.draw(st.sampled_from(SAMPLES))).read_text().splitlines()
    start = data.draw(st.integers(0, len(lines)))
    end = data.draw(st.integers(start, len(lines)))
    with contextlib.suppress(zfs.ZfsError):
        zfs.snapshot(zfs.parse_status("\n".join(lines[:start] + lines[end:])), 0.0)
