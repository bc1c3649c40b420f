"""The SNMP collector in a real agent: a trap from the switch re-polls it at once.

The agent polls the switch (snmpsim serving the IronWare recording) every 60 s; a PSU
fails in the recording and net-snmp's ``snmptrap`` sends a linkDown from the switch's
address to the agent's trap listener: the failed power group must reach MQTT long
before the next interval.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.snmp_peer import SNMPREC, SnmpSim, free_udp_port

BASE = "hotspare/v1/dc1/web-01"
PSU1_STATUS = "1.3.6.1.4.1.1991.1.1.1.2.1.1.3.1"


@pytest.fixture
def sim():
    s = SnmpSim([SNMPREC / "ironware.snmprec"]).start()
    yield s
    s.stop()


def config(sim: SnmpSim, broker_port: int, state_dir, trap_port: int) -> str:
    return (
        f'[agent]\nsite = "dc1"\nhost = "web-01"\ninterval = 60\njitter = 0\nstate_dir = "{state_dir}"\n'
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker_port}"\nkeepalive = 5\n'
        f'[[collectors.snmp]]\nname = "tor-a"\naddress = "127.0.0.1"\nport = {sim.port}\n'
        f'version = "2c"\ncommunity = "ironware"\ntrap_listen = "127.0.0.1:{trap_port}"\n'
    )


def snmptrap(port: int, community: str) -> None:
    subprocess.run(
        [
            *("snmptrap", "-v2c", "-c", community, f"127.0.0.1:{port}", ""),
            *("1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.1", "i", "1"),
        ],
        check=True,
        capture_output=True,
    )


def test_a_trap_repolls_the_switch_at_once(sim, tmp_path, broker, subscribe, run_agent):
    sub = subscribe()
    trap_port = free_udp_port()
    agent = run_agent(config(sim, broker.port, tmp_path / "state", trap_port))
    topic = f"{BASE}/groups/switch/tor-a/psu"

    def psu_state(state):
        return lambda m: m.topic == topic and m.payload and m.json()["state"] == state

    sub.wait(psu_state("degraded"), what="the recorded PSU 2 failure")
    sim.edit("ironware", PSU1_STATUS, "3")  # PSU 1 fails too
    try:
        sent = time.monotonic()
        snmptrap(trap_port, "ironware")
        m = sub.wait(psu_state("failed"), timeout=20, what="both PSUs failed after the trap")
        print(f"\ntrap to MQTT: {(m.at - sent) * 1000:.0f} ms")
        assert m.json()["healthy"] == 0
        # a trap with a wrong community is dropped: no poll, no change
        sim.edit("ironware", PSU1_STATUS, "2")
        snmptrap(trap_port, "not-the-community")
        time.sleep(1.5)
        assert not [x for x in sub.messages if x.topic == topic and x.at > m.at and x.payload], (
            "a trap with a wrong community caused a poll"
        )
        snmptrap(trap_port, "ironware")
        sub.wait(lambda x: psu_state("degraded")(x) and x.at > m.at, timeout=20, what="repaired")
    finally:
        sim.edit("ironware", PSU1_STATUS, "2")
    assert "ironware" not in agent.output()  # the community is never logged
