"""The IPMI collector end to end against OpenIPMI's ipmi_sim (a real RMCP+ BMC on loopback)."""

from __future__ import annotations

import json

import pytest

from agent.evaluate import group_status
from agent.model import ComponentHealth, GroupState
from collectors.base import State
from collectors.ipmi import IpmiCollector
from tests.conftest import hotspare
from tests.ipmisim import (
    DELL,
    HPE,
    PSU_FAILURE,
    PSU_PRESENT,
    RED_FULL,
    RED_LOST,
    SUPERMICRO,
    IpmiSim,
    dell_like,
    hpe_like,
    supermicro_like,
)
from tests.schemas import validate

BASE = "hotspare/v1/dc1/bmc-01"
PASSWORD = "s1m-Bmc-Secret"  # distinctive, so a leak would show in any output


@pytest.fixture
def sim(tmp_path):
    sensors = dell_like(("PS1 Status", "PS2 Status"))
    with IpmiSim(sensors, tmp_path / "sim", password=PASSWORD).start() as s:
        yield s


def ipmi_config(sim: IpmiSim, tmp_path, port: int = 1, timeout: float = 10, extra: str = "") -> str:
    # a generous timeout: a first poll (login, SDR, sensors, SEL) is some forty round trips,
    # and on a loaded CI machine each may wait for the scheduler
    pw = tmp_path / "bmc.pass"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    return (
        f'[agent]\nsite = "dc1"\nhost = "bmc-01"\ninterval = 0.5\njitter = 0\n'
        f'state_dir = "{tmp_path / "state"}"\n'
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{port}"\nkeepalive = 5\n'
        f'[[collectors.ipmi]]\nname = "bmc"\naddress = "127.0.0.1"\nport = {sim.port}\n'
        f'username = "admin"\npassword_file = "{pw}"\ntimeout = {timeout}\n{extra}'
    )


def group(health: dict, gid: str) -> dict:
    return next(g for g in health["groups"] if g["id"] == gid)


def test_status_json_with_only_an_ipmi_entry_needs_no_broker(sim, tmp_path):
    cfg = tmp_path / "agent.toml"
    cfg.write_text(ipmi_config(sim, tmp_path))
    r = hotspare("status", "--json", "--config", str(cfg), timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    validate("health", doc)
    power, cooling = group(doc, "power"), group(doc, "cooling")
    assert (power["kind"], power["state"], power["members"], power["stated"]) == (
        "power",
        "redundant",
        ["psu/1", "psu/2"],
        "redundant",
    )
    assert (cooling["kind"], cooling["total"], cooling["required"]) == ("cooling", 6, 5)
    fans = {c["id"]: c for c in doc["components"] if c["kind"] == "fan"}
    assert fans["fan/1a"]["value"] == 4080 and fans["fan/1a"]["unit"] == "RPM"
    assert PASSWORD not in r.stdout + r.stderr


def test_psu_and_fan_failures_reach_mqtt(sim, tmp_path, broker, subscribe, run_agent):
    sub = subscribe()
    agent = run_agent(ipmi_config(sim, tmp_path, broker.port))

    seen = {"seq": -1}  # each wait looks only at messages newer than the last one matched

    def power_state(state):
        def pred(m):
            ok = m.topic == f"{BASE}/groups/power" and m.payload and m.json()["state"] == state
            return ok and m.json()["seq"] > seen["seq"]

        return pred

    def wait(pred, what):
        m = sub.wait(pred, what=what).json()
        seen["seq"] = m["seq"]
        return m

    wait(power_state("redundant"), what="power redundant")

    sim.set_bit(DELL.psus[1], PSU_FAILURE, True)
    g = wait(power_state("degraded"), what="one PSU failed")
    validate("group", g)
    assert g["margin"] == 0 and "psu/2 failed" in g["reason"]

    sim.set_bit(DELL.psus[0], PSU_FAILURE, True)
    assert wait(power_state("failed"), what="both PSUs failed")["margin"] == -1

    sim.set_bit(DELL.psus[0], PSU_FAILURE, False)
    sim.set_bit(DELL.psus[1], PSU_FAILURE, False)
    wait(power_state("redundant"), what="repaired")

    # the BMC's redundancy sensor says "lost" although both PSUs look fine
    sim.set_bits_exclusive(DELL.redundancy, RED_LOST)
    g = wait(power_state("degraded"), what="redundancy lost")
    assert g["stated"] == "degraded" and g["healthy"] == 2 and g["margin"] == 0
    assert "2 of 2 serving" in g["reason"] and "Redundancy Lost" in g["reason"]
    sim.set_bits_exclusive(DELL.redundancy, RED_FULL)

    # a fan below its lower critical threshold (480 RPM; 120 RPM per count)
    sim.set_value(DELL.fans[2], 2)
    fan = sub.wait(
        lambda m: (
            m.topic == f"{BASE}/components/fan/3a" and m.payload and m.json()["state"] == "failed"
        ),
        what="fan below lower critical",
    ).json()
    validate("component", fan)
    assert fan["value"] == 240
    cooling = sub.wait(
        lambda m: (
            m.topic == f"{BASE}/groups/cooling" and m.payload and m.json()["state"] == "degraded"
        )
    ).json()
    assert cooling["margin"] == 0

    # a PSU pulled: absent, not failed, and (no slots configured) no longer a member
    sim.set_bit(DELL.psus[1], PSU_PRESENT, False)
    comp = sub.wait(
        lambda m: (
            m.topic == f"{BASE}/components/psu/2" and m.payload and m.json()["state"] == "absent"
        ),
        what="absent PSU",
    ).json()
    assert comp["state"] == "absent"
    agent.stop()
    assert PASSWORD not in agent.output()


def test_a_hung_bmc_is_unknown_never_failed_and_comes_back(
    sim, tmp_path, broker, subscribe, run_agent
):
    sub = subscribe()
    run_agent(ipmi_config(sim, tmp_path, broker.port, timeout=5))
    health = sub.wait(lambda m: m.topic == f"{BASE}/health", what="health").json()
    assert group(health, "power")["state"] == "redundant"
    sim.pause()  # SIGSTOP: the BMC stops answering
    try:
        unknown = sub.wait(
            lambda m: m.topic == f"{BASE}/health" and m.json()["state"] == "unknown",
            timeout=20,
            what="unknown health",
        ).json()
    finally:
        sim.resume()
    assert {g["state"] for g in unknown["groups"]} == {"unknown"}
    assert {c["state"] for c in unknown["components"]} == {"unknown"}
    assert unknown["collectors"][0]["ok"] is False, unknown
    seen = [m.json() for m in sub.messages if m.topic == f"{BASE}/events" and m.payload]
    assert not any(e.get("to") == "failed" for e in seen)  # never FAILED from a silent BMC
    back = sub.wait(
        lambda m: (
            m.topic == f"{BASE}/health"
            and m.json()["state"] == "redundant"
            and m.json()["seq"] > unknown["seq"]
        ),
        timeout=40,
        what="back after SIGCONT",
    ).json()
    assert back["collectors"][0]["ok"] is True


def test_check_plugin_and_power_read_back(sim, tmp_path):
    cfg = tmp_path / "agent.toml"
    cfg.write_text(ipmi_config(sim, tmp_path))

    def check():
        return hotspare("check", "--config", str(cfg), timeout=60)

    assert check().returncode == 0
    sim.set_bit(DELL.psus[0], PSU_FAILURE, True)
    r = check()
    assert r.returncode == 1 and "power degraded" in r.stdout
    c = IpmiCollector("bmc", "127.0.0.1", sim.port, "admin", PASSWORD)
    try:
        assert c.power_state() in ("on", "off")
    finally:
        c._drop_session()


def test_discover_ipmi_lists_sensors_and_proposes_a_config(sim, tmp_path):
    pw = tmp_path / "bmc.pass"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    args = [
        "discover",
        "ipmi",
        "127.0.0.1",
        "--port",
        str(sim.port),
        "-U",
        "admin",
        "--password-file",
        str(pw),
    ]
    r = hotspare(*args, "--json", timeout=60)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    by_name = {s["name"]: s for s in found["sensors"]}
    assert by_name["PS1 Status"]["component"] == "psu/1" and by_name["PS1 Status"]["state"] == "ok"
    assert by_name["PS Redundancy"]["component"] is None  # a verdict, not a component
    assert {g["id"]: g["stated"] for g in found["groups"]} == {
        "power": "redundant",
        "cooling": None,
    }
    cfg = tmp_path / "proposed.toml"
    cfg.write_text('[agent]\nsite = "dc1"\n' + found["config"])
    assert hotspare("config", "check", str(cfg), timeout=30).returncode == 0
    table = hotspare(*args, timeout=60)
    assert "psu/2" in table.stdout and "Proposed configuration" in table.stdout
    assert PASSWORD not in table.stdout + r.stdout
    bad = hotspare(*args[:-1], str(tmp_path / "none"))
    assert bad.returncode == 78 and "none" in bad.stderr


def test_a_new_sel_event_triggers_a_poll_before_the_interval(
    sim, tmp_path, broker, subscribe, run_agent
):
    sub = subscribe()
    cfg = ipmi_config(sim, tmp_path, broker.port).replace("interval = 0.5", "interval = 120")
    run_agent(cfg)
    sub.wait(lambda m: m.topic == f"{BASE}/health", what="first health")
    sim.set_bit(DELL.psus[1], PSU_FAILURE, True)  # the simulator also logs the SEL event
    # the next regular poll is two minutes away: only the SEL probe can bring this in time
    comp = sub.wait(
        lambda m: (
            m.topic == f"{BASE}/components/psu/2" and m.payload and m.json()["state"] == "failed"
        ),
        timeout=60,
        what="PSU failure via the SEL",
    ).json()
    assert "power supply failure detected (asserted)" in comp["detail"]


def test_cipher_suite_17_is_refused_by_a_bmc_that_offers_only_3(sim):
    # ipmi_sim negotiates SHA-1 (cipher suite 3) only: "auto" accepts it, "17" must not
    strict = IpmiCollector("bmc", "127.0.0.1", sim.port, "admin", PASSWORD, cipher_suite="17")
    with pytest.raises(Exception, match="does not offer cipher suite 17"):
        strict.collect(0.0)
    strict.close()
    auto = IpmiCollector("bmc", "127.0.0.1", sim.port, "admin", PASSWORD)
    try:
        assert auto.collect(0.0).groups
    finally:
        auto.close()


def _collect(sensors, tmp_path, inject=None):
    with IpmiSim(sensors, tmp_path / "profile", password=PASSWORD).start() as s:
        if inject:
            inject(s)
        c = IpmiCollector("bmc", "127.0.0.1", s.port, "admin", PASSWORD)
        try:
            snap = c.collect(0.0)
        finally:
            c.close()
    health = {r.id: ComponentHealth(r.id, r.kind, r.state, 0, 0) for r in snap.readings}
    return snap, {g.id: group_status(g, health) for g in snap.groups}


def test_hpe_profile_fans_in_percent_and_the_fans_redundancy_sensor(tmp_path):
    _snap, groups = _collect(hpe_like(), tmp_path)
    assert (groups["power"].state, groups["power"].stated) == (
        GroupState.REDUNDANT,
        GroupState.REDUNDANT,
    )
    assert (groups["cooling"].total, groups["cooling"].stated) == (8, GroupState.REDUNDANT)
    # the HP fans have no thresholds: a dead fan shows only through the "Fans" sensor
    _, groups = _collect(
        hpe_like(), tmp_path, lambda s: s.set_bits_exclusive(HPE.fan_redundancy, RED_LOST)
    )
    assert (groups["cooling"].state, groups["cooling"].margin) == (GroupState.DEGRADED, 0)
    assert "Fans: Redundancy Lost" in groups["cooling"].reason


def test_supermicro_profile_absent_fans_and_no_redundancy_sensor(tmp_path):
    snap, groups = _collect(supermicro_like(), tmp_path)
    states = {r.id: r.state for r in snap.readings}
    assert states["fan/1"] == State.ABSENT and states["fan/2"] == State.OK  # "na" in the capture
    assert groups["cooling"].members == ("fan/2", "fan/3", "fan/4")
    assert groups["power"].stated is None and groups["power"].state == GroupState.REDUNDANT
    _, groups = _collect(
        supermicro_like(), tmp_path, lambda s: s.set_bit(SUPERMICRO.psus[0], PSU_FAILURE, True)
    )
    assert groups["power"].state == GroupState.DEGRADED
