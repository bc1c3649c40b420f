"""IPMI collector, pure layer: sensor decoding, groups, redundancy sensors, SEL, breaker.

The sensor sets follow the captures in tests/fixtures/ipmi/ (see its SOURCES.md and
EXPECTED.md): a Dell-style pair of PSUs both named "Status" with a "PS Redundancy"
sensor, an HP-style "Power Supplies"/"Fans" redundancy pair, Supermicro-style FAN1..6
with absent ("na") fans.
"""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.evaluate import group_status
from agent.model import ComponentHealth, GroupState
from collectors.base import GroupKind, Kind, State, Verdict
from collectors.ipmi import (
    OPTIONS,
    READING_REDUNDANCY,
    READING_SENSOR_SPECIFIC,
    READING_THRESHOLD,
    SENSOR_TYPE_FAN,
    SENSOR_TYPE_PSU,
    SENSOR_TYPE_TEMPERATURE,
    Breaker,
    Layout,
    SensorView,
    component_id,
    component_state,
    create,
    decode_sel_entry,
    redundancy_group,
    sel_info,
    snapshot,
    stated_verdict,
)


def psu(number, name, *offsets):
    return SensorView(number, name, SENSOR_TYPE_PSU, READING_SENSOR_SPECIFIC, frozenset(offsets))


def fan(number, name, rpm, *offsets, unavailable=False):
    return SensorView(
        number,
        name,
        SENSOR_TYPE_FAN,
        READING_THRESHOLD,
        frozenset(offsets),
        value=None if unavailable else rpm,
        units="RPM",
        unavailable=unavailable,
    )


def redundancy(number, name, sensor_type, *offsets):
    return SensorView(number, name, sensor_type, READING_REDUNDANCY, frozenset(offsets))


def evaluate(snap):
    health = {r.id: ComponentHealth(r.id, r.kind, r.state, 0, 0) for r in snap.readings}
    return {g.id: group_status(g, health) for g in snap.groups}


DELL = [
    redundancy(0x77, "PS Redundancy", SENSOR_TYPE_PSU, 0),
    psu(0x85, "Status", 0),
    psu(0x86, "Status", 0),
    *(fan(0x30 + i, f"Fan{i}", 7200) for i in range(1, 7)),
    SensorView(
        0x04, "Inlet Temp", SENSOR_TYPE_TEMPERATURE, READING_THRESHOLD, value=21.0, units="C"
    ),
]


def test_dell_pair_is_redundant_and_numbered_by_sensor_order():
    snap = snapshot(DELL, 100.0)
    ids = {r.id: r.state for r in snap.readings}
    assert ids["psu/1"] == ids["psu/2"] == State.OK
    assert {f"fan/{i}" for i in range(1, 7)} <= set(ids) and "temp/inlet-temp" in ids
    groups = evaluate(snap)
    power, cooling = groups["power"], groups["cooling"]
    assert (power.state, power.required, power.total, power.margin) == (
        GroupState.REDUNDANT,
        1,
        2,
        1,
    )
    assert (
        power.stated == GroupState.REDUNDANT
        and "PS Redundancy: Fully Redundant" in snap.groups[0].detail
    )
    assert (cooling.state, cooling.required, cooling.total) == (GroupState.REDUNDANT, 5, 6)
    assert {g.kind for g in snap.groups} == {GroupKind.POWER, GroupKind.COOLING}


def test_one_psu_failed_is_degraded_both_failed_is_failed():
    views = [v if v.number != 0x86 else psu(0x86, "Status", 0, 1) for v in DELL]
    views = [
        v if v.number != 0x77 else redundancy(0x77, "PS Redundancy", SENSOR_TYPE_PSU, 1)
        for v in views
    ]
    g = evaluate(snapshot(views, 1.0))["power"]
    assert (g.state, g.margin) == (GroupState.DEGRADED, 0)
    assert "psu/2 failed" in g.reason and "Redundancy Lost" in g.reason
    views = [psu(0x85, "Status", 0, 3), psu(0x86, "Status", 0, 1)]
    g = evaluate(snapshot(views, 1.0))["power"]
    assert (g.state, g.margin) == (GroupState.FAILED, -1)


def test_redundancy_lost_while_both_psus_look_fine_is_degraded_with_both_reasons():
    views = [
        redundancy(0x77, "PS Redundancy", SENSOR_TYPE_PSU, 1),
        psu(0x85, "Status", 0),
        psu(0x86, "Status", 0),
    ]
    g = evaluate(snapshot(views, 1.0))["power"]
    assert (g.state, g.margin, g.healthy) == (GroupState.DEGRADED, 0, 2)
    assert g.reason == "2 of 2 serving, 1 required; the device says: PS Redundancy: Redundancy Lost"


@pytest.mark.parametrize(
    ("offsets", "state", "words"),
    [
        ((0,), State.OK, "presence detected"),
        ((), State.ABSENT, "presence not detected"),
        ((0, 1), State.FAILED, "power supply failure detected"),
        ((0, 2), State.WARNING, "predictive failure"),
        ((0, 3), State.FAILED, "input lost (AC/DC)"),
        ((0, 2, 3), State.FAILED, "input lost (AC/DC), predictive failure"),
    ],
)
def test_psu_offsets(offsets, state, words):
    assert component_state(psu(1, "PS1 Status", *offsets)) == (state, words)


def test_fan_thresholds_and_absent_fans():
    assert component_state(fan(1, "FAN1", 3000)) == (State.OK, "3000 RPM")
    assert component_state(fan(1, "FAN1", 300, 1))[0] == State.FAILED  # below lower critical
    assert component_state(fan(1, "FAN1", 900, 0))[0] == State.WARNING
    assert component_state(fan(1, "FAN1", 0, unavailable=True))[0] == State.ABSENT


def test_supermicro_absent_fans_are_not_members_unless_slots_are_required():
    views = [
        fan(0x41, "FAN1", 0, unavailable=True),
        *(fan(0x41 + i, f"FAN{i + 1}", 3000) for i in range(1, 4)),
        fan(0x45, "FAN5", 0, unavailable=True),
        fan(0x46, "FANA", 0, unavailable=True),
        psu(0xC8, "PS1 Status", 0),
        psu(0xC9, "PS2 Status", 0),
    ]
    snap = snapshot(views, 1.0)
    cooling = next(g for g in snap.groups if g.id == "cooling")
    assert cooling.members == ("fan/2", "fan/3", "fan/4") and cooling.required == 2
    assert "3 slot(s) empty" in cooling.detail
    assert evaluate(snap)["cooling"].state == GroupState.REDUNDANT
    assert evaluate(snap)["power"].stated is None  # no redundancy sensor on this board
    g = evaluate(snapshot(views, 1.0, Layout(fan_slots=6)))["cooling"]
    # six slots must be populated, all but one must serve: three absent fans are an outage
    assert (g.state, g.total, g.healthy, g.required) == (GroupState.FAILED, 6, 3, 5)
    g = evaluate(snapshot(views, 1.0, Layout(fan_slots=6, fan_required=3)))["cooling"]
    assert (g.state, g.margin) == (GroupState.DEGRADED, 0)


def test_configured_required_counts():
    views = [psu(1, "PS1", 0), psu(2, "PS2", 0), psu(3, "PS3", 0, 1)]
    assert (
        evaluate(snapshot(views, 1.0, Layout(psu_required=2)))["power"].state == GroupState.DEGRADED
    )
    assert (
        evaluate(snapshot(views, 1.0, Layout(psu_required=3)))["power"].state == GroupState.FAILED
    )


def test_hp_redundancy_sensors_map_to_their_groups_by_type_and_name():
    assert redundancy_group(redundancy(6, "Power Supplies", SENSOR_TYPE_PSU, 0)) == "power"
    assert redundancy_group(redundancy(22, "System Board Fans", 0x0B, 0)) == "cooling"
    assert redundancy_group(redundancy(9, "PSU Redundancy", 0x0B, 0)) == "power"
    assert redundancy_group(redundancy(9, "Memory Mirroring", 0x0C, 0)) is None


@pytest.mark.parametrize(
    ("offsets", "verdict"),
    [
        ((0,), Verdict.REDUNDANT),
        ((1,), Verdict.DEGRADED),
        ((2,), Verdict.DEGRADED),
        ((3,), Verdict.DEGRADED),
        ((5,), Verdict.FAILED),
        ((0, 5), Verdict.FAILED),
        ((), None),
    ],
)
def test_redundancy_offsets(offsets, verdict):
    got = stated_verdict(redundancy(1, "Fans", SENSOR_TYPE_FAN, *offsets))
    assert (got[0] if got else None) == verdict


def test_component_ids():
    taken: set[str] = set()
    assert component_id(Kind.PSU, "PS1 Status", taken) == "psu/1"
    assert component_id(Kind.PSU, "Power Supply 2", taken) == "psu/2"
    assert component_id(Kind.PSU, "Status", taken) == "psu/3"
    assert component_id(Kind.FAN, "Fan 3A", taken) == "fan/3a"
    assert component_id(Kind.FAN, "FAN3A", taken) == "fan/3a-2"
    assert component_id(Kind.TEMPERATURE, "CPU1 Temp", taken) == "temp/cpu1-temp"


def sel_record(
    record_id, next_id, sensor_type, number, event_type, offset, asserted=True, ts=1_700_000_000
):
    body = struct.pack("<HHBIHB", next_id, record_id, 0x02, ts, 0x20, 0x04)
    return body + bytes(
        [sensor_type, number, event_type | (0 if asserted else 0x80), offset, 0xFF, 0xFF]
    )


def test_sel_entries():
    next_id, e = decode_sel_entry(
        sel_record(7, 8, SENSOR_TYPE_PSU, 0x86, READING_SENSOR_SPECIFIC, 1)
    )
    assert (next_id, e.record_id, e.sensor_number, e.offset, e.asserted, e.relevant) == (
        8,
        7,
        0x86,
        1,
        True,
        True,
    )
    assert "power supply failure detected (asserted)" in e.describe()
    _, cleared = decode_sel_entry(sel_record(9, 0xFFFF, 0x10, 0, 0x6F, 2))
    assert not cleared.relevant  # "log area reset/cleared" is not an alarm
    _, red = decode_sel_entry(
        sel_record(10, 0xFFFF, SENSOR_TYPE_PSU, 0x77, READING_REDUNDANCY, 1, asserted=False)
    )
    assert red.relevant and "Redundancy Lost (deasserted)" in red.describe()
    with pytest.raises(ValueError, match="truncated"):
        decode_sel_entry(b"\x01\x02")
    info = bytes([0x51]) + struct.pack("<HHII", 12, 1000, 1_700_000_100, 1_600_000_000) + b"\x0f"
    assert sel_info(info) == (12, 1_700_000_100, 1_600_000_000)


@given(st.binary(max_size=40))
def test_garbage_from_a_bmc_never_crashes_the_decoders(data):
    for fn in (decode_sel_entry, sel_info):
        with contextlib.suppress(ValueError):
            fn(data)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([SENSOR_TYPE_PSU, SENSOR_TYPE_FAN, 0x01, 0x02, 0x0B, 0x99]),
            st.sampled_from([READING_THRESHOLD, READING_SENSOR_SPECIFIC, READING_REDUNDANCY, 0x03]),
            st.frozensets(st.integers(0, 14)),
            st.booleans(),
            st.text(max_size=12),
        ),
        max_size=20,
    )
)
def test_odd_sensor_sets_never_crash_the_snapshot(items):
    views = [
        SensorView(i, name, t, r, offs, unavailable=u)
        for i, (t, r, offs, u, name) in enumerate(items)
    ]
    snap = snapshot(views, 1.0)
    assert len({r.id for r in snap.readings}) == len(snap.readings)
    for g in snap.groups:
        assert 1 <= g.required <= g.slots


def test_breaker_backs_off_and_recovers():
    b = Breaker(threshold=3, base=10, limit=60)
    for t in range(3):
        assert b.allow(t)
        b.failure(t)
    assert not b.allow(3) and b.allow(12)
    b.failure(12)
    assert not b.allow(31) and b.allow(32)  # doubled
    b.success()
    assert b.allow(32) and b.failures == 0


def opts(**kw):
    return {**{k: v.default for k, v in OPTIONS.items()}, **kw}


def test_password_file_must_be_private_and_never_shown(tmp_path):
    f = tmp_path / "bmc.pass"
    f.write_text("hunter2\n")
    f.chmod(0o644)
    with pytest.raises(ValueError, match=r"password_file: .*readable by others") as e:
        create("bmc", opts(address="192.0.2.1", username="admin", password_file=str(f)))
    assert "hunter2" not in str(e.value)
    f.chmod(0o600)
    c = create("bmc", opts(address="192.0.2.1", username="admin", password_file=str(f)))
    assert c.password == "hunter2"
    assert "hunter2" not in repr(c)
    with pytest.raises(ValueError, match="collector bmc: password_file: No such file"):
        create("bmc", opts(address="192.0.2.1", password_file=str(tmp_path / "missing")))


def test_a_sensor_the_bmc_cannot_read_is_unknown_not_failed():
    broken = SensorView(
        0x86, "PS2 Status", SENSOR_TYPE_PSU, READING_SENSOR_SPECIFIC, error="the BMC answered: busy"
    )
    assert component_state(broken) == (State.UNKNOWN, "the BMC answered: busy")
    g = evaluate(snapshot([psu(0x85, "PS1 Status", 0), broken], 1.0))["power"]
    assert (g.state, g.unknown) == (GroupState.UNKNOWN, 1)


def test_id_prefix_puts_components_and_groups_under_it():
    from collectors.base import prefixed

    snap = prefixed(snapshot(DELL, 1.0), "node2")
    assert {g.id for g in snap.groups} == {"node2/power", "node2/cooling"}
    power = next(g for g in snap.groups if g.id == "node2/power")
    assert power.members == ("node2/psu/1", "node2/psu/2")
    assert all(r.id.startswith("node2/") for r in snap.readings)
    assert prefixed(snap, "") is snap


def test_a_poll_that_fails_once_is_retried_and_said_in_the_log_without_the_password(caplog):
    from collectors.ipmi import IpmiCollector

    c = IpmiCollector("bmc", "192.0.2.1", username="admin", password="hunter2")
    attempts = []

    def poll(now):
        attempts.append(now)
        if len(attempts) == 1:
            raise TimeoutError("no answer for admin:hunter2")
        return []

    c._poll = poll
    c._drop_session = lambda: None
    caplog.set_level("DEBUG", logger="hotspare.ipmi")
    assert c.collect(5.0).readings == ()
    assert attempts == [5.0, 5.0]
    (said,) = [r.getMessage() for r in caplog.records]
    assert "poll failed, retrying: TimeoutError: no answer for admin:***" in said
