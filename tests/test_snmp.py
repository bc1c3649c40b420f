"""SNMP collector: profiles against LibreNMS's recordings and verdicts, snmpsim and snmpd live.

Ground truth: tests/fixtures/snmprec/INDEX.json lists, per recorded device, every PSU,
fan, chassis alarm and stack state sensor LibreNMS derives from the recording, with the
raw value and LibreNMS's severity (0 ok, 1 warning, 2 critical, 3 unknown); see
SOURCES.md there. Each one must come out of our profile with the same severity, except
the deviations listed in ``DEVIATIONS`` (each with its reason), and the two abnormal
devices must show their failed or missing PSU and a DEGRADED power group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent.config import ConfigError, load
from agent.evaluate import Evaluator, Policy, group_status
from agent.model import ComponentHealth, GroupState
from agent.poller import Poller
from collectors.base import State, read_secret
from collectors.snmp import (
    Credentials,
    SnmpCollector,
    create,
    interpret,
    port_state,
    shared_engine,
)
from collectors.snmp_profiles import BY_NAME, GENERIC, choose
from tests.conftest import hotspare
from tests.snmp_peer import (
    V3_AUTH,
    V3_PRIV,
    V3_USER,
    Snmpd,
    SnmpSim,
    Veth,
    free_udp_port,
    opts,
    wait_for_snmp,
)
from tests.snmprec import FIXTURES, index, walked
from tests.snmprec import load as load_rec

# severity of each observed state, as LibreNMS's generic values (0 ok .. 3 unknown)
SEVERITY = {
    State.OK: {0},
    State.WARNING: {1},
    State.FAILED: {2},
    State.ABSENT: {2, 3},  # a missing part is not serving; LibreNMS says critical or unknown
    State.UNKNOWN: {3},
}
# (device, OID) -> why we deliberately read it differently from LibreNMS
DEVIATIONS = {
    (
        "junos_qfx5100",
        "1.3.6.1.4.1.2636.3.4.2.2.1.0",
    ): "Junos's yellow alarm is its minor alarm: warning here, critical in LibreNMS",
}
ABNORMAL = {"ironware": ("psu/2", State.FAILED), "dell-os10_s4128ton-psu": ("psu/1", State.ABSENT)}


def _sys(values):
    oid = ".".join(map(str, values.get((1, 3, 6, 1, 2, 1, 1, 2, 0), ())))
    return oid, str(values.get((1, 3, 6, 1, 2, 1, 1, 1, 0), ""))


def agreement(device: dict, rows) -> list[tuple[str, str, str, int | None, str, str]]:
    """(device, sensor, OID, LibreNMS severity, our state, verdict) per ground-truth sensor."""
    by_oid = {o: r for r in rows for o in r.oids}
    out = []
    for s in device["psu_fan_alarm_states"]:
        oid = s["oid"].lstrip(".")
        row = by_oid.get(oid)
        if row is None:
            verdict, ours = "MISSING", "-"
        else:
            ours = row.state.value
            if s["generic"] is None:
                verdict = "no ground truth"
            elif s["generic"] in SEVERITY[row.state]:
                verdict = "agree"
            elif (device["device"], oid) in DEVIATIONS:
                verdict = "deviation: " + DEVIATIONS[device["device"], oid]
            else:
                verdict = "DISAGREE"
        out.append((device["device"], s["descr"], oid, s["generic"], ours, verdict))
    return out


def print_table(lines):
    print(f"\n{'device':24} {'sensor':38} {'LibreNMS':>8} {'ours':8} verdict")
    for dev, descr, _oid, generic, ours, verdict in lines:
        print(f"{dev:24} {descr[:38]:38} {generic!s:>8} {ours:8} {verdict}")
    counts = {}
    for line in lines:
        key = line[5].split(":")[0]
        counts[key] = counts.get(key, 0) + 1
    print("summary:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


def health_of(readings, groups):
    comps = {
        r.id: ComponentHealth(r.id, r.kind, r.state, 0.0, 0.0, r.detail, None, None, "snmp")
        for r in readings
    }
    return {g.id: group_status(g, comps) for g in groups}


# --- pure: every recording through its profile ------------------------------------------


def test_profiles_agree_with_librenms_on_every_recording(capsys):
    lines = []
    for device in index():
        values = load_rec(FIXTURES / device["snmprec"])
        profile = choose(*_sys(values))
        _, _, rows = interpret(profile, walked(values, profile.columns), 0.0)
        lines += agreement(device, rows)
    with capsys.disabled():
        print_table(lines)
    bad = [line for line in lines if line[5] in ("MISSING", "DISAGREE")]
    assert not bad, bad
    assert len(lines) == 150  # every sensor of the ground truth was looked at
    assert sum(1 for line in lines if line[5] == "agree") == 148


@pytest.mark.parametrize(
    "device,profile",
    [
        ("arista_eos", "arista"),
        ("arubaos-cx_8360", "aruba-cx"),
        ("dell-os10", "dell-os10"),
        ("dnos_s4048", "dell-os9"),
        ("drac_r540", "dell-idrac"),
        ("hpe-ilo_4", "hpe-ilo"),
        ("ios_2960x", "cisco"),
        ("iosxe_c9400", "cisco"),
        ("ironware", "foundry"),
        ("junos_ex", "juniper"),
        ("nxos_n9k-c93180yc-fx3", "cisco"),
        ("procurve", "hp-procurve"),
        ("supermicro-bmc_x11", "supermicro"),
        ("vrp_power", "huawei"),
    ],
)
def test_profile_chosen_by_sys_object_id(device, profile):
    assert choose(*_sys(load_rec(FIXTURES / f"{device}.snmprec"))).name == profile


def test_profile_by_sys_descr_then_standards_only():
    # the PSU-only OS10 capture has a hex sysDescr and an OS10 sysObjectID
    assert choose("1.3.6.1.4.1.99999.1", "Dell EMC Networking OS10 Enterprise.").name == "dell-os10"
    assert choose("1.3.6.1.4.1.99999.1", "some box") is GENERIC
    assert choose("", "") is GENERIC


@pytest.mark.parametrize("device", sorted(ABNORMAL))
def test_abnormal_devices_show_the_lost_psu_and_a_degraded_group(device):
    values = load_rec(FIXTURES / f"{device}.snmprec")
    profile = choose(*_sys(values))
    readings, groups, _ = interpret(profile, walked(values, profile.columns), 0.0)
    psu, state = ABNORMAL[device]
    assert {r.id: r.state for r in readings}[psu] == state
    power = health_of(readings, groups)["psu"]
    assert power.state == GroupState.DEGRADED
    assert (power.healthy, power.total, power.required) == (1, 2, 1)


def test_healthy_recordings_have_redundant_groups():
    for device in index():
        if device["device"] in ABNORMAL:
            continue
        values = load_rec(FIXTURES / device["snmprec"])
        profile = choose(*_sys(values))
        readings, groups, _ = interpret(profile, walked(values, profile.columns), 0.0)
        for g in health_of(readings, groups).values():
            if (device["device"], g.id) in STATED_NOT_REDUNDANT:
                continue  # the device itself says so: see the test below
            # Arista and Aruba publish fans whose sensors say nothing (unknown): not degraded
            assert g.state in (GroupState.REDUNDANT, GroupState.UNKNOWN), (device["device"], g)


# groups whose recorded device states that they are not redundant, though every member is OK
STATED_NOT_REDUNDANT = {
    # an ML350 Gen9 with three of its eight fan bays filled: cpqHeFltTolFanRedundant is
    # notRedundant(2) for each present fan
    ("hpe-ilo_4", "fan"): "Fan 2, Fan 3, Fan 4: notRedundant (cpqHeFltTolFanRedundant)",
}


@pytest.mark.parametrize("device,group", sorted(STATED_NOT_REDUNDANT))
def test_a_recorded_device_that_states_no_redundancy_gives_a_degraded_group(device, group):
    values = load_rec(FIXTURES / f"{device}.snmprec")
    profile = choose(*_sys(values))
    readings, groups, _ = interpret(profile, walked(values, profile.columns), 0.0)
    spec = {g.id: g for g in groups}[group]
    assert all(r.state == State.OK for r in readings if r.id in spec.members)
    status = health_of(readings, groups)[group]
    assert status.state == GroupState.DEGRADED
    assert status.reason.endswith("the device says: " + STATED_NOT_REDUNDANT[(device, group)])


def test_hpe_absent_fan_bays_are_not_members_unless_slots_are_configured():
    values = load_rec(FIXTURES / "hpe-ilo_4.snmprec")
    profile = BY_NAME["hpe-ilo"]
    readings, groups, _ = interpret(profile, walked(values, profile.columns), 0.0)
    fan = {g.id: g for g in groups}["fan"]
    assert fan.members == ("fan/0.2", "fan/0.3", "fan/0.4") and fan.required == 2
    from collectors.snmp import Layout

    readings, groups, _ = interpret(profile, walked(values, profile.columns), 0.0, Layout(0, 0, 8))
    assert health_of(readings, groups)["fan"].state == GroupState.FAILED


def test_port_states():
    assert port_state(1, 1) == (State.OK, "admin up, oper up")
    assert port_state(1, 2)[0] == State.FAILED
    assert port_state(2, 2) == (State.FAILED, "admin down, oper down")
    assert port_state(1, 7)[0] == State.FAILED
    assert port_state(1, 5)[0] == State.WARNING
    assert port_state(None, None)[0] == State.UNKNOWN


# --- config and secrets -----------------------------------------------------------------


def write_config(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "agent.toml"
    p.write_text(f'[agent]\nsite = "dc1"\nhost = "h1"\nstate_dir = "{tmp_path}"\n{body}')
    return p


def test_config_keys_of_the_issue_load(tmp_path):
    cfg = load(
        write_config(
            tmp_path,
            '[[collectors.snmp]]\nname = "tor-a"\naddress = "192.0.2.10"\nport = 161\n'
            'version = "2c"\ncommunity = "public"\n',
        )
    )
    (c,) = cfg.collectors
    collector = create(c.name, c.options)
    assert collector.base == "switch/tor-a" and collector.creds.community == "public"
    assert "public" not in repr(collector)


@pytest.mark.parametrize(
    "body,error",
    [
        ('version = "2c"\n', "needs community or community_file"),
        ('version = "3"\n', "needs user"),
        ('version = "3"\nuser = "u"\n', "needs auth_key_file"),
        ('version = "3"\ncommunity = "x"\nuser = "u"\n', "community is for version 2c"),
        ('version = "4"\ncommunity = "x"\n', "expected one of '2c', '3'"),
        ('community = "x"\ntrap_listen = "nope"\n', "trap_listen: expected HOST:PORT"),
        ('community = "x"\nprofile = "nokia"\n', "expected one of"),
    ],
)
def test_config_errors_name_the_collector_and_key(tmp_path, body, error):
    path = write_config(
        tmp_path, f'[[collectors.snmp]]\nname = "tor-a"\naddress = "192.0.2.10"\n{body}'
    )
    with pytest.raises((ConfigError, ValueError)) as e:
        cfg = load(path)
        for c in cfg.collectors:
            create(c.name, c.options)
    assert error in str(e.value)


def test_secret_files_must_be_private(tmp_path):
    f = tmp_path / "community"
    f.write_text("s3cret-community\n")
    f.chmod(0o644)
    with pytest.raises(PermissionError, match="readable by others"):
        read_secret(str(f))
    with pytest.raises(ValueError, match="community_file") as e:
        create("tor-a", opts(address="192.0.2.1", community_file=str(f)))
    assert "s3cret" not in str(e.value)
    f.chmod(0o600)
    assert create("tor-a", opts(address="192.0.2.1", community_file=str(f))).creds.community == (
        "s3cret-community"
    )


# --- live: snmpsim serving every recording ------------------------------------------------


@pytest.fixture(scope="module")
def snmpsim():
    sim = SnmpSim().start()
    yield sim
    sim.stop()


@pytest.mark.parametrize("codec", ["builtin", "pysnmp"])
def test_every_recording_over_the_wire_from_one_engine(snmpsim, capsys, codec):
    """All 18 devices polled concurrently by collectors sharing one engine: same verdicts."""
    devices = index()
    collectors = [
        # snmpsim is slow (about 12k OIDs/s on a busy machine): generous request timeouts
        create(
            d["device"],
            opts(
                address="127.0.0.1",
                port=snmpsim.port,
                community=d["device"],
                request_timeout=5,
                codec=codec,
            ),
        )
        for d in devices
    ]

    async def run():
        snaps = await asyncio.gather(*(c.collect(time.time()) for c in collectors))
        return snaps, shared_engine()

    snaps, engine = asyncio.run(run())
    # one engine (one socket) holds every target
    assert set(engine._targets) == {d["device"] for d in devices}
    lines = []
    for device, collector, snap in zip(devices, collectors, snaps, strict=True):
        switch = snap.readings[0]
        assert switch.id == f"switch/{device['device']}" and switch.state == State.OK, switch
        lines += agreement(device, collector.last_rows)
        if device["device"] in ABNORMAL:
            psu = f"switch/{device['device']}/psu"
            power = health_of(snap.readings, snap.groups)[psu]
            assert power.state == GroupState.DEGRADED, power
    with capsys.disabled():
        print_table(lines)
    assert not [line for line in lines if line[5] in ("MISSING", "DISAGREE")]


@pytest.mark.parametrize("codec", ["builtin", "pysnmp"])
def test_two_targets_with_one_community_both_answer(snmpsim, codec):
    """Responses are matched per target even when the community is the same."""
    cs = [
        create(n, opts(address="127.0.0.1", port=snmpsim.port, community="procurve", codec=codec))
        for n in ("tor-a", "tor-b")
    ]

    async def run():
        return await asyncio.gather(*(c.collect(time.time()) for c in cs))

    for snap in asyncio.run(run()):
        assert snap.readings[0].state == State.OK, snap.readings[0].detail
        assert len(snap.groups) == 2


def test_a_failing_psu_is_seen_on_the_next_poll(snmpsim):
    c = create("ironware", opts(address="127.0.0.1", port=snmpsim.port, community="ironware"))

    async def two_polls():
        first = await c.collect(time.time())
        snmpsim.edit("ironware", "1.3.6.1.4.1.1991.1.1.1.2.1.1.3.1", "3")
        try:
            second = await c.collect(time.time())
        finally:
            snmpsim.edit("ironware", "1.3.6.1.4.1.1991.1.1.1.2.1.1.3.1", "2")
        return first, second

    first, second = asyncio.run(two_polls())
    assert (
        health_of(first.readings, first.groups)["switch/ironware/psu"].state == GroupState.DEGRADED
    )
    after = health_of(second.readings, second.groups)["switch/ironware/psu"]
    assert after.state == GroupState.FAILED and after.healthy == 0


# derived recordings (tests/fixtures/snmprec/SOURCES.md): every member OK, the device says
# its redundancy is gone; (recording, group, the device's words, the other group's verdict)
STATED_VARIANTS = [
    (
        "hpe-ilo_4-psu-not-redundant",
        "psu",
        "Power Supply 1, Power Supply 2: notRedundant (cpqHeFltTolPowerSupplyRedundant)",
    ),
    (
        "drac_r540-psu-redundancy-lost",
        "psu",
        "System Board PS Redundancy: lost (powerUnitRedundancyStatus)",
    ),
]


@pytest.mark.parametrize("device,group,words", STATED_VARIANTS)
def test_a_device_saying_not_redundant_over_the_wire_degrades_the_group(
    snmpsim, device, group, words
):
    c = create(device, opts(address="127.0.0.1", port=snmpsim.port, community=device))
    snap = asyncio.run(c.collect(time.time()))
    assert snap.readings[0].state == State.OK, snap.readings[0].detail
    spec = {g.id: g for g in snap.groups}[f"switch/{device}/{group}"]
    states = {r.id: r.state for r in snap.readings}
    assert len(spec.members) == 2 and {states[m] for m in spec.members} == {State.OK}
    status = health_of(snap.readings, snap.groups)[spec.id]
    assert status.state == GroupState.DEGRADED and status.healthy == 2
    assert status.reason.endswith("the device says: " + words), status.reason


def test_a_device_saying_fully_redundant_keeps_the_group_redundant(snmpsim):
    device = "drac_r540-psu-redundancy-lost"  # its cooling unit says full(3)
    c = create(device, opts(address="127.0.0.1", port=snmpsim.port, community=device))
    snap = asyncio.run(c.collect(time.time()))
    fan = health_of(snap.readings, snap.groups)[f"switch/{device}/fan"]
    assert fan.state == GroupState.REDUNDANT
    assert fan.stated == GroupState.REDUNDANT
    assert "System Board Fan Redundancy: full (coolingUnitRedundancyStatus)" in fan.reason


# A guard against a hang, not a timing assertion: a poll reports within its poller's
# timeout (10 s at most here), so a minute without the awaited results means a poller stopped.
POLLED_WITHIN = 60.0


async def polled(done, pollers, tasks, results, within=POLLED_WITHIN):
    """Until ``done()``; fails naming each poller's state instead of hanging."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within
    while not done():
        if loop.time() > give_up:
            state = []
            for p, t in zip(pollers, tasks, strict=True):
                ended = "running"
                if t.done():
                    ended = "ended cancelled" if t.cancelled() else f"ended: {t.exception()!r}"
                n = len(results.get(p.name, ()))
                state.append(
                    f"{p.name}: task {ended}, {n} result(s), last error {p.stats.last_error!r}"
                )
            pytest.fail(f"pollers did not report within {within:g} s: " + "; ".join(state))
        await asyncio.sleep(0.05)


class CancelledInside(SnmpCollector):
    """A poll that ends cancelled from inside, as a cancellation escaping a timeout would."""

    async def _poll(self, now):
        raise asyncio.CancelledError


def test_a_poll_cancelled_inside_the_collector_is_a_failed_poll_and_polling_goes_on():
    c = CancelledInside("tor-x", "127.0.0.1", port=free_udp_port(), request_timeout=0.2)
    results: dict[str, list] = {"tor-x": []}

    def on_result(name, snap, error, now):
        results[name].append(error)

    async def run():
        pollers = [Poller("tor-x", c, 0.05, 5.0, 0.0, on_result)]
        tasks = [asyncio.create_task(pollers[0].run())]
        try:
            await polled(lambda: len(results["tor-x"]) >= 2, pollers, tasks, results)
            return tasks[0].done()
        finally:
            tasks[0].cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    ended = asyncio.run(run())
    assert not ended
    assert results["tor-x"][:2] == ["the collector's call was cancelled"] * 2


def test_a_failing_result_handler_does_not_stop_the_poller(snmpsim):
    live = create("procurve", opts(address="127.0.0.1", port=snmpsim.port, community="procurve"))
    results: dict[str, list] = {"procurve": []}

    def on_result(name, snap, error, now):
        results[name].append(snap)
        if len(results[name]) == 1:
            raise RuntimeError("a bug in the result handler")

    async def run():
        pollers = [Poller("procurve", live, 0.05, 5.0, 0.0, on_result)]
        tasks = [asyncio.create_task(pollers[0].run())]
        try:
            await polled(lambda: len(results["procurve"]) >= 2, pollers, tasks, results)
        finally:
            tasks[0].cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())
    assert all(s is not None and s.readings[0].state == State.OK for s in results["procurve"])


def test_a_switch_that_does_not_answer_is_unknown_and_others_keep_their_cadence(snmpsim):
    dead_port = free_udp_port()  # nothing listens there
    live = create("procurve", opts(address="127.0.0.1", port=snmpsim.port, community="procurve"))
    dead = create(
        "dead", opts(address="127.0.0.1", port=dead_port, community="x", request_timeout=1.0)
    )
    results: dict[str, list] = {"procurve": [], "dead": []}
    evaluator = Evaluator(Policy(stale_after=60))

    def on_result(name, snap, error, now):
        results[name].append((time.monotonic(), snap, error))
        if snap is not None:
            evaluator.observe(name, snap, now)

    async def run():
        # the pollers' timeout above the collectors' deadline (5 s), as the deadline's help asks:
        # on a busy machine a dead poll reports its own "no answer", not the poller's timeout
        pollers = [
            Poller("procurve", live, 0.2, 10.0, 0.0, on_result),
            Poller("dead", dead, 0.2, 10.0, 0.0, on_result),
        ]
        tasks = [asyncio.create_task(p.run()) for p in pollers]
        try:
            await polled(lambda: len(results["dead"]) >= 2, pollers, tasks, results)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(run())
    (t_dead, snap, error), *_ = results["dead"]
    assert error is None and snap.readings[0].state == State.UNKNOWN
    assert "no answer" in snap.readings[0].detail
    # while the dead one's poll was waiting out its timeout, the live one kept polling
    live_during = [t for t, s, _ in results["procurve"] if t < t_dead and s is not None]
    assert len(live_during) >= 2
    health = evaluator.evaluate("dc1", "h1", time.time())
    states = {c.id: c.state for c in health.components}
    assert states["switch/dead"] == State.UNKNOWN and states["switch/procurve"] == State.OK


def test_status_json_with_only_an_snmp_entry_needs_no_broker(snmpsim, tmp_path):
    path = write_config(
        tmp_path,
        '[mqtt]\nurl = "mqtt://127.0.0.1:1"\n'
        f'[[collectors.snmp]]\nname = "tor-a"\naddress = "127.0.0.1"\nport = {snmpsim.port}\n'
        'version = "2c"\ncommunity = "dell-os10_s4128ton-psu"\n',
    )
    r = hotspare("status", "--json", "--config", str(path))
    doc = json.loads(r.stdout)
    groups = {g["id"]: g for g in doc["groups"]}
    assert groups["switch/tor-a/psu"]["state"] == "degraded", r.stderr
    assert groups["switch/tor-a/fan"]["state"] == "redundant"
    comps = {c["id"]: c for c in doc["components"]}
    assert comps["switch/tor-a"]["state"] == "ok"
    assert comps["switch/tor-a/psu/1"]["state"] == "absent"
    assert "dell-os10_s4128ton-psu" not in r.stderr  # the community is never logged


# --- live: net-snmp snmpd: IF-MIB, v3 authPriv, a port going down -------------------------


@pytest.fixture(scope="module")
def snmpd():
    d = Snmpd().start()
    yield d
    d.stop()


# a name of this process alone: another checkout's suite may run beside this one
UPLINK = f"hss{os.getpid() % 10_000_000}"


@pytest.fixture
def veth():
    v = Veth(UPLINK)
    yield v
    v.remove()


def v3_options(tmp_path, port, **kw):
    auth, priv = tmp_path / "auth", tmp_path / "priv"
    auth.write_text(V3_AUTH + "\n")
    priv.write_text(V3_PRIV + "\n")
    auth.chmod(0o600)
    priv.chmod(0o600)
    return opts(
        address="127.0.0.1",
        port=port,
        version="3",
        user=V3_USER,
        auth_key_file=str(auth),
        priv_key_file=str(priv),
        **kw,
    )


def test_v3_authpriv_sha256_aes_and_a_port_going_down(snmpd, veth, tmp_path):
    c = create("tor-b", v3_options(tmp_path, snmpd.port, ports=[UPLINK, "lo", "nosuch0"]))

    async def until(port_state: State) -> dict:
        # snmpd re-reads the interface table every few seconds: poll until it shows
        deadline = time.monotonic() + 30
        while True:
            snap = await c.collect(time.time())
            states = {r.id: r for r in snap.readings}
            port = states.get(f"switch/tor-b/port/{UPLINK}")
            if (port and port.state == port_state) or time.monotonic() > deadline:
                return states
            await asyncio.sleep(0.3)

    async def run():
        up = await until(State.OK)
        veth.down()
        return up, await until(State.FAILED)

    up, down = asyncio.run(run())
    assert up["switch/tor-b"].state == State.OK, up["switch/tor-b"].detail
    assert up["switch/tor-b/port/lo"].state == State.OK
    assert up[f"switch/tor-b/port/{UPLINK}"].state == State.OK
    assert up["switch/tor-b/port/nosuch0"].state == State.UNKNOWN
    port = down[f"switch/tor-b/port/{UPLINK}"]
    assert port.state == State.FAILED and "admin up, oper down" in port.detail, port
    assert down["switch/tor-b/port/lo"].state == State.OK


def test_v3_wrong_passphrase_is_unknown_and_never_shows_the_key(snmpd, tmp_path):
    o = v3_options(tmp_path, snmpd.port, request_timeout=0.5, retries=0)
    (tmp_path / "priv").write_text("wrong-priv-passphrase\n")
    c = create("tor-c", o)
    snap = asyncio.run(c.collect(time.time()))
    assert snap.readings[0].state == State.UNKNOWN
    assert "wrong-priv" not in snap.readings[0].detail and V3_AUTH not in snap.readings[0].detail


def test_collector_is_a_coroutine_for_the_poller():
    import inspect

    assert inspect.iscoroutinefunction(SnmpCollector.collect)


# --- LLDP: which switch port each local NIC is cabled to ----------------------------------


def lldp_walk(device):
    from collectors.snmp import LLDP_COLUMNS, PORT_COLUMNS

    return walked(load_rec(FIXTURES / f"{device}.snmprec"), (*PORT_COLUMNS, *LLDP_COLUMNS))


def test_lldp_matches_a_nic_by_its_mac_on_procurve():
    from collectors.snmp import lldp_ports

    found = lldp_ports(
        lldp_walk("procurve"), {"eth0": "b8:a4:4f:b9:3d:1a", "eth9": "02:00:00:00:00:01"}
    )
    # the neighbour on local port 27 sends its NIC's MAC as port id
    assert found == {"eth0": found["eth0"]} and found["eth0"]
    w = lldp_walk("procurve")
    names = {v for v in w["1.3.6.1.2.1.31.1.1.1.1"].values()}
    assert found["eth0"] in names


def test_lldp_matches_a_nic_by_its_name_on_os10():
    from collectors.snmp import lldp_ports

    found = lldp_ports(lldp_walk("dell-os10"), {"Gi1/0/6": "", "TenGigabitEthernet 1/43": ""})
    assert found == {"Gi1/0/6": "mgmt1/1/1", "TenGigabitEthernet 1/43": "ethernet1/1/30"}


def test_lldp_nic_over_the_wire_becomes_a_port_component(snmpsim):
    c = create(
        "tor-a",
        opts(
            address="127.0.0.1", port=snmpsim.port, community="procurve", lldp_nics=["eth0", "eth1"]
        ),
    )
    c.nic_macs = lambda nics: {"eth0": "b8:a4:4f:b9:3d:1a", "eth1": "02:00:00:00:00:01"}
    snap = asyncio.run(c.collect(time.time()))
    by_id = {r.id: r for r in snap.readings}
    ports = [r for r in snap.readings if r.id.startswith("switch/tor-a/port/")]
    assert len(ports) == 1 and "local eth0 is cabled here" in ports[0].detail
    assert ports[0].state in (State.OK, State.FAILED)
    assert by_id["switch/tor-a/lldp/eth1"].state == State.UNKNOWN


def test_v3_trap_from_the_device_repolls_it_and_a_wrong_key_does_not(snmpd, tmp_path):
    trap_port = free_udp_port()
    c = create("tor-v3", v3_options(tmp_path, snmpd.port, trap_listen=f"127.0.0.1:{trap_port}"))

    async def snmptrap(auth: str) -> None:
        engine_id = c._engine_id.hex()
        proc = await asyncio.create_subprocess_exec(
            *("snmptrap", "-v3", "-e", f"0x{engine_id}", "-u", V3_USER, "-l", "authPriv"),
            *("-a", "SHA-256", "-A", auth, "-x", "AES", "-X", V3_PRIV),
            *(f"127.0.0.1:{trap_port}", "", "1.3.6.1.6.3.1.1.5.3"),
            *("1.3.6.1.2.1.2.2.1.1.1", "i", "1"),
        )
        assert await proc.wait() == 0

    async def run() -> tuple[bool, bool]:
        fired = asyncio.Event()
        c.bind_trigger(fired.set)
        snap = await c.collect(time.time())
        assert snap.readings[0].state == State.OK and c._engine_id
        await snmptrap("wrong-auth-passphrase")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fired.wait(), 1.5)
        wrong = fired.is_set()
        await snmptrap(V3_AUTH)
        await asyncio.wait_for(fired.wait(), 10)
        return wrong, fired.is_set()

    wrong, right = asyncio.run(run())
    assert not wrong, "a trap with a wrong passphrase re-polled the switch"
    assert right


def test_two_v3_entries_with_one_user_and_different_keys_are_refused(snmpd, tmp_path):
    a = create("tor-a", v3_options(tmp_path, snmpd.port))
    other = tmp_path / "other"
    other.mkdir()
    options = v3_options(other, snmpd.port)
    (other / "priv").write_text("another-priv-passphrase\n")
    b = create("tor-b", options)

    async def run():
        return await a.collect(time.time()), await b.collect(time.time())

    sa, sb = asyncio.run(run())
    assert sa.readings[0].state == State.OK
    assert (
        sb.readings[0].state == State.UNKNOWN and "one set per user name" in sb.readings[0].detail
    )


def test_port_states_agree_with_librenms_on_every_recording(capsys):
    """Every port LibreNMS's poller lists (ifName, admin, oper) comes out the same here."""
    import json as _json

    from collectors.snmp import PORT_COLUMNS, port_readings

    expected_state = {
        ("up", "up"): State.OK,
        ("up", "down"): State.FAILED,
        ("up", "lowerLayerDown"): State.FAILED,
        ("up", "notPresent"): State.ABSENT,
        ("up", "dormant"): State.WARNING,
        ("up", "unknown"): State.UNKNOWN,
        ("up", "testing"): State.WARNING,
        ("down", "unknown"): State.FAILED,
        ("down", "down"): State.FAILED,
        ("down", "lowerLayerDown"): State.FAILED,
        ("down", "notPresent"): State.FAILED,
        ("down", "up"): State.FAILED,
    }
    checked = 0
    for device in index():
        doc = _json.loads((FIXTURES / device["expected"]).read_text())
        ports = (doc.get("ports") or {}).get("poller", {}).get("ports") or []
        ports = [p for p in ports if p["ifName"] and p["ifAdminStatus"] and p["ifOperStatus"]]
        if not ports:
            continue
        w = walked(load_rec(FIXTURES / device["snmprec"]), PORT_COLUMNS)
        names = list(dict.fromkeys(p["ifName"] for p in ports))
        got = {r.id[len("port/") :]: r for r in port_readings(w, names, 0.0)}
        for p in ports:
            want = expected_state[p["ifAdminStatus"], p["ifOperStatus"]]
            assert got[p["ifName"]].state == want, (device["device"], p, got[p["ifName"]])
            checked += 1
    with capsys.disabled():
        print(f"\nports checked against LibreNMS's poller: {checked}")
    assert checked >= 500


def test_junos_operating_table_down_wins_over_an_online_fru():
    values = load_rec(FIXTURES / "junos_qfx5100.snmprec")
    values[(1, 3, 6, 1, 4, 1, 2636, 3, 1, 13, 1, 6, 2, 1, 2, 0)] = 6  # PSU 1: down
    values[(1, 3, 6, 1, 4, 1, 2636, 3, 1, 13, 1, 6, 4, 1, 3, 0)] = 5  # fan tray 2: full speed
    profile = BY_NAME["juniper"]
    readings, groups, _ = interpret(profile, walked(values, profile.columns), 0.0)
    states = {r.id: r.state for r in readings}
    assert states["psu/2.1.2.0"] == State.FAILED and states["fan/4.1.3.0"] == State.WARNING
    health = health_of(readings, groups)
    assert (
        health["psu"].state == GroupState.DEGRADED and health["fan"].state == GroupState.REDUNDANT
    )


def test_a_slow_switch_is_cut_off_at_its_deadline(snmpsim):
    """Each answer 0.3 s late (a relay in front of snmpsim): the walk needs many requests,
    so the poll ends at its 1 s deadline with the switch unknown, not at the agent's timeout."""
    relay_port = free_udp_port()
    relay = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).parent.parent / "bench" / "udprelay.py"),
            str(relay_port),
            str(snmpsim.port),
            "--delay",
            "0.15",
        ]
    )
    try:
        wait_for_snmp(relay_port, "arista_eos")  # the relay answers: the cut-off is the deadline
        c = create(
            "slow",
            opts(
                address="127.0.0.1",
                port=relay_port,
                community="arista_eos",
                deadline=1.0,
                request_timeout=2.0,
                max_repetitions=5,
            ),
        )

        snap = asyncio.run(c.collect(time.time()))
    finally:
        relay.terminate()
        relay.wait()
    assert snap.readings[0].state == State.UNKNOWN
    assert "no complete answer within 1 s" in snap.readings[0].detail


def test_discover_snmp_lists_the_device_and_proposes_a_loadable_entry(snmpsim, tmp_path):
    r = hotspare(
        "discover",
        "snmp",
        "127.0.0.1",
        "--port",
        str(snmpsim.port),
        "--community",
        "ironware",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    assert found["profile"] == "foundry"
    states = {c["id"]: c["state"] for c in found["components"]}
    assert states["switch/tor-a/psu/2"] == "failed"
    assert {g["id"] for g in found["groups"]} == {"switch/tor-a/psu", "switch/tor-a/fan"}
    community = tmp_path / "c"
    community.write_text("ironware\n")
    community.chmod(0o600)
    text = found["config"].replace("/etc/hotspare/snmp.community", str(community))
    cfg = load(write_config(tmp_path, text))
    assert cfg.collectors[0].options["address"] == "127.0.0.1"
    dead = hotspare(
        "discover", "snmp", "127.0.0.1", "--port", str(free_udp_port()), "--timeout", "0.3"
    )
    assert (
        dead.returncode == 69 and "does not answer" in dead.stderr
    ) or "no answer" in dead.stderr


def test_a_trap_source_given_by_name_is_resolved_off_the_event_loop(monkeypatch):
    from collectors import snmp_traps

    resolved_in: list[threading.Thread] = []

    def resolve(name: str) -> str:
        resolved_in.append(threading.current_thread())
        return "192.0.2.7" if name == "tor-n.example" else name

    monkeypatch.setattr(snmp_traps, "_addresses", lambda name: [resolve(name)])
    creds = Credentials("2c", community="c-n")

    async def run() -> tuple[snmp_traps.Listener, threading.Thread]:
        listener = snmp_traps.register("127.0.0.1:0", "tor-n.example", "tor-n", print, creds)
        try:
            async with asyncio.timeout(10):
                while "192.0.2.7" not in listener.devices:
                    await asyncio.sleep(0.01)
            snmp_traps.register("127.0.0.1:0", "192.0.2.8", "tor-m", print, creds)
            return listener, threading.current_thread()
        finally:
            listener.engine.close_dispatcher()
            snmp_traps._LISTENERS.pop((asyncio.get_running_loop(), "127.0.0.1:0"), None)

    listener, loop_thread = asyncio.run(run())
    assert list(listener.devices["192.0.2.7"]) == ["tor-n"]
    assert list(listener.devices["192.0.2.8"]) == ["tor-m"]  # an address: no lookup at all
    assert len(resolved_in) == 1 and resolved_in[0] is not loop_thread


def test_a_dropped_collector_stops_listening_and_frees_its_trap_port():
    """A reload that removes a switch closes its poller: the trap port is released."""
    from collectors import snmp_traps

    port = free_udp_port()
    listen = f"127.0.0.1:{port}"
    a = create("tor-a", opts(address="192.0.2.1", community="c", trap_listen=listen))
    b = create("tor-b", opts(address="192.0.2.2", community="c", trap_listen=listen))

    async def run() -> None:
        loop = asyncio.get_running_loop()
        pollers = [Poller(c.name, c, 60, 5, 0, lambda *_: None) for c in (a, b)]
        for p in pollers:
            p.collector.bind_trigger(p.trigger)
        listener = snmp_traps._LISTENERS[loop, listen]
        assert set(listener.devices) == {"192.0.2.1", "192.0.2.2"}
        pollers[0].close()
        assert set(listener.devices) == {"192.0.2.2"}  # the other switch still listens
        assert (loop, listen) in snmp_traps._LISTENERS
        pollers[1].close()
        assert (loop, listen) not in snmp_traps._LISTENERS
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", port))  # the port is free again

    asyncio.run(run())
