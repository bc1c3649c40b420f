"""INFORMs to the agent's trap receiver: acknowledged as RFC 3416 says, and re-poll at once.

The acknowledgement is checked on the wire (a Response-PDU with the inform's request-id
and varbinds) and with net-snmp's ``snmpinform``, which exits 0 only when acknowledged.
In a running agent, an inform (v2c and v3, over IPv6) from the switch re-polls it: the
port that went down reaches MQTT long before the next 60 s interval.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time

import pytest

from collectors import snmp_ber as ber
from collectors.base import State
from collectors.snmp import create
from tests.snmp_peer import (
    V3_AUTH,
    V3_PRIV,
    V3_USER,
    Snmpd,
    Veth,
    free_udp_port,
    notify,
    opts,
    secret,
)

BASE = "hotspare/v1/dc1/web-01"
UPLINK = f"hsn{os.getpid() % 10_000_000}"


def test_an_inform_is_answered_with_its_request_id_and_varbinds():
    port = free_udp_port("::1")
    c = create("tor-6", opts(address="::1", community="c-six", trap_listen=f"[::1]:{port}"))
    binds = [((1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 7), "int", 7)]
    link_down = (1, 3, 6, 1, 6, 3, 1, 1, 5, 3)
    message = ber.encode_trap(0x1234567, b"c-six", 4200, link_down, binds, inform=True)

    async def run():
        fired = asyncio.Event()
        c.bind_trigger(fired.set)
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
            s.setblocking(False)
            await loop.sock_sendto(s, message, ("::1", port))
            answer = await asyncio.wait_for(loop.sock_recv(s, 65535), 10)
        await asyncio.wait_for(fired.wait(), 10)
        c.close()
        return answer

    rid, community, status, index, var_binds = ber.decode_response(asyncio.run(run()))
    assert (rid, community, status, index) == (0x1234567, b"c-six", 0, 0)
    assert var_binds == [
        (ber.SYS_UPTIME_0, 4200),
        (ber.SNMP_TRAP_OID_0, link_down),
        ((1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 7), 7),
    ]


# --- in a running agent ---------------------------------------------------------------


@pytest.fixture
def veth():
    v = Veth(UPLINK)
    yield v
    v.remove()


def switch(snmpd6: Snmpd, tmp_path, trap_port: int, port: str, version: str) -> dict:
    """The [[collectors.snmp]] entry of snmpd6 as switch "tor-a" watching ``port``, with its
    trap listener on ``[::1]:trap_port`` and v2c or v3 credentials in secret files."""
    if version == "2c":
        creds = {"community_file": secret(tmp_path / "community", snmpd6.community)}
    else:
        creds = {
            "version": "3",
            "user": V3_USER,
            "auth_key_file": secret(tmp_path / "auth", V3_AUTH),
            "priv_key_file": secret(tmp_path / "priv", V3_PRIV),
        }
    return {
        "name": "tor-a",
        "address": "::1",
        "port": snmpd6.port,
        "ports": [port],
        "trap_listen": f"[::1]:{trap_port}",
        **creds,
    }


def toml(values: dict) -> str:
    """key = value lines (JSON strings, numbers and lists of strings are TOML too)."""
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())


@pytest.mark.parametrize("version", ["2c", "3"])
def test_an_inform_from_the_switch_repolls_it_at_once(
    version, snmpd6, veth, tmp_path, broker, subscribe, run_agent
):
    sub = subscribe()
    trap_port = free_udp_port("::1")
    entry = switch(snmpd6, tmp_path, trap_port, UPLINK, version)
    # snmpd re-reads its interface table every few seconds: wait until it lists the veth
    snmpd_says(entry, State.OK)
    agent = run_agent(
        f'[agent]\nsite = "dc1"\nhost = "web-01"\ninterval = 60\njitter = 0\n'
        f'state_dir = "{tmp_path / "state"}"\n'
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker.port}"\nkeepalive = 5\n'
        f"[[collectors.snmp]]\n{toml(entry)}"
    )
    topic = f"{BASE}/components/switch/tor-a/port/{UPLINK}"

    def port_state(state):
        return lambda m: m.topic == topic and m.payload and m.json()["state"] == state

    up = sub.wait(port_state("ok"), timeout=30, what="the uplink up at the first poll")
    veth.down()
    snmpd_says(entry, State.FAILED)  # then inform: the re-poll it causes sees the port down
    sent = time.monotonic()
    v3 = (V3_USER, V3_AUTH, V3_PRIV) if version == "3" else None
    r = notify("snmpinform", "::1", trap_port, community=snmpd6.community, v3=v3)
    assert r.returncode == 0, f"the inform was not acknowledged: {r.stderr}"
    m = sub.wait(lambda x: port_state("failed")(x) and x.at > up.at, timeout=20, what="down")
    print(f"\n{version} inform to MQTT: {(m.at - sent) * 1000:.0f} ms")
    output = agent.output()
    assert snmpd6.community not in output and V3_AUTH not in output and V3_PRIV not in output


def snmpd_says(entry: dict, state: State) -> None:
    """Poll snmpd (a collector of our own, not the agent's) until the uplink is ``state``."""
    keys = ("address", "port", "version", "user", "auth_key_file", "priv_key_file")
    probe = create(
        "probe",
        opts(ports=[UPLINK], **{k: entry[k] for k in (*keys, "community_file") if k in entry}),
    )
    deadline = time.monotonic() + 30
    while True:
        snap = asyncio.run(probe.collect(time.time()))
        port = {r.id: r for r in snap.readings}.get(f"switch/probe/port/{UPLINK}")
        if port is not None and port.state == state:
            return
        assert time.monotonic() < deadline, port.detail if port else snap.readings[0].detail
        time.sleep(0.3)


def test_after_a_reload_the_new_engine_polls_and_the_listener_answers_again(
    snmpd6, tmp_path, broker, subscribe, run_agent
):
    """A reload closes every collector, so the engine and the listener: both come back."""
    sub = subscribe()
    trap_port = free_udp_port("::1")
    entry = switch(snmpd6, tmp_path, trap_port, "lo", "3")
    head = (
        f'[agent]\nsite = "dc1"\nhost = "web-01"\ninterval = 60\njitter = 0\n'
        f'state_dir = "{tmp_path / "state"}"\n'
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker.port}"\nkeepalive = 5\n'
    )
    agent = run_agent(head + f"[[collectors.snmp]]\n{toml(entry)}")
    component = f"{BASE}/components/switch/tor-a"
    sub.wait(lambda m: m.topic == f"{component}/port/lo" and m.payload, what="first poll")
    agent.config.write_text(head + f"[[collectors.snmp]]\n{toml({**entry, 'ports': ['lo', 'x9']})}")
    agent.signal(signal.SIGHUP)
    # the new port's component comes only from a walk that the new engine completed
    new = sub.wait(lambda m: m.topic == f"{component}/port/x9" and m.payload, timeout=30, what="x9")
    assert "no such port" in new.json()["detail"]
    r = notify("snmpinform", "::1", trap_port, v3=(V3_USER, V3_AUTH, V3_PRIV))
    assert r.returncode == 0, f"the listener did not come back after the reload: {r.stderr}"
    assert "does not answer" not in agent.output()
