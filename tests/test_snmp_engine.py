"""The per-event-loop SNMP engine and trap listener are released, not left open.

A process may run several event loops one after another (the test suite, `hotspare
status`, a reload in a new loop): each loop's engine and its UDP sockets are closed when
the last collector using them is closed, or when the loop shuts down; a new loop gets a
fresh engine that works. Checked against net-snmp's snmpd (v2c and v3, IPv4 and IPv6),
by the sockets' inodes among this process's open file descriptors.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from agent.poller import Poller
from collectors import snmp, snmp_traps
from collectors.base import State
from collectors.snmp import create, shared_engine
from tests.snmp_peer import V3_AUTH, V3_PRIV, V3_USER, free_udp_port, opts, secret


def open_socket_inodes() -> set[str]:
    """``socket:[inode]`` of every open file descriptor of this process."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            out.add(target)
    return out


def inodes(sockets) -> set[str]:
    return {f"socket:[{os.fstat(s.fileno()).st_ino}]" for s in sockets}


@pytest.fixture
def collectors(snmpd6, tmp_path):
    common = dict(port=snmpd6.port, ports=["lo"], request_timeout=2)
    return [
        create("v2c", opts(address="::1", community=snmpd6.community, **common)),
        create(
            "v3",
            opts(
                address="::1",
                version="3",
                user=V3_USER,
                auth_key_file=secret(tmp_path / "auth", V3_AUTH),
                priv_key_file=secret(tmp_path / "priv", V3_PRIV),
                **common,
            ),
        ),
    ]


async def poll_all(cs) -> list:
    snaps = await asyncio.gather(*(c.collect(time.time()) for c in cs))
    for snap in snaps:
        assert snap.readings[0].state == State.OK, snap.readings[0].detail
    return snaps


def test_the_engine_closes_with_its_loop_and_a_new_loop_gets_a_working_one(collectors):
    async def first():
        await poll_all(collectors)
        eng = shared_engine()
        return eng, inodes(eng.sockets)

    eng, held = asyncio.run(first())
    assert len(held) == 2, "one socket for the built-in codec, one for pysnmp (v3)"
    assert eng.closed and not eng.sockets
    assert not held & open_socket_inodes(), "the engine's sockets outlived their loop"
    assert not snmp._ENGINES

    async def second():
        await poll_all(collectors)  # the same collectors, a new loop: a fresh engine
        again = shared_engine()
        return again, inodes(again.sockets)

    again, held2 = asyncio.run(second())
    assert again is not eng and again.closed
    assert not held2 & open_socket_inodes()


def test_closing_the_last_collector_closes_the_engine_while_the_loop_runs(collectors):
    async def run():
        await poll_all(collectors)
        eng = shared_engine()
        held = inodes(eng.sockets)
        pollers = [Poller(c.name, c, 60, 5, 0, lambda *_: None) for c in collectors]
        pollers[0].close()
        still_open = not eng.closed and held <= open_socket_inodes()
        pollers[1].close()
        gone = eng.closed and not held & open_socket_inodes()
        # a collector created afterwards in the same loop gets a new engine that works
        replacement = create(
            "v2c-late",
            opts(address="::1", port=collectors[0].port, community=collectors[0].creds.community),
        )
        await poll_all([replacement])
        fresh = shared_engine()
        replacement.close()
        return still_open, gone, fresh is not eng, fresh.closed

    still_open, gone, fresh, fresh_closed = asyncio.run(run())
    assert still_open, "closing one of two collectors closed their shared engine"
    assert gone, "the engine stayed open after its last collector was closed"
    assert fresh and fresh_closed


def test_an_engine_of_a_loop_closed_without_shutdown_is_closed_by_the_next_loop(collectors):
    loop = asyncio.new_event_loop()
    try:

        async def first():
            await poll_all(collectors[:1])
            eng = shared_engine()
            return eng, inodes(eng.sockets)

        eng, held = loop.run_until_complete(first())
    finally:
        loop.close()  # no shutdown_asyncgens(): nothing could release the engine yet
    assert held <= open_socket_inodes()

    asyncio.run(poll_all(collectors[:1]))
    assert eng.closed and not held & open_socket_inodes()
    assert loop not in snmp._ENGINES


def test_a_trap_listener_closes_with_its_loop():
    port = free_udp_port("::1")
    c = create("tor-a", opts(address="::1", community="c", trap_listen=f"[::1]:{port}"))

    async def run():
        c.bind_trigger(lambda: None)
        listener = snmp_traps._LISTENERS[asyncio.get_running_loop(), f"[::1]:{port}"]
        return inodes([listener._sock])

    held = asyncio.run(run())
    assert not held & open_socket_inodes()
    assert not snmp_traps._LISTENERS
