"""SNMP over IPv6, and INFORMs: against net-snmp's snmpd, snmptrap and snmpinform.

snmpd listens on udp6:[::1]:PORT. A host name that resolves to IPv6 alone is made in a
network namespace the test creates (``hsn-...``), whose /etc/hosts is
/etc/netns/<namespace>/hosts (``ip netns exec`` mounts it there); the namespace's
loopback has ::1 once it is up, so this part works even where the host's IPv6 is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.config import load
from collectors.base import State
from collectors.snmp import create
from tests.snmp_peer import V3_AUTH, V3_PRIV, V3_USER, Snmpd, free_udp_port, notify, opts, secret

ROOT = Path(__file__).resolve().parent.parent
V3 = (V3_USER, V3_AUTH, V3_PRIV)


def v3_opts(tmp_path: Path, **kw):
    return opts(
        version="3",
        user=V3_USER,
        auth_key_file=secret(tmp_path / "auth", V3_AUTH),
        priv_key_file=secret(tmp_path / "priv", V3_PRIV),
        **kw,
    )


# --- polling over IPv6 ------------------------------------------------------------------


def test_v2c_with_both_codecs_and_v3_authpriv_poll_an_ipv6_agent(snmpd6, tmp_path):
    common = dict(port=snmpd6.port, ports=["lo"], request_timeout=2)
    collectors = [
        create("builtin", opts(address="::1", community=snmpd6.community, **common)),
        # written out in full: responses come from "::1" and must still match
        create(
            "builtin-long",
            opts(address="0:0:0:0:0:0:0:1", community=snmpd6.community, **common),
        ),
        create(
            "pysnmp", opts(address="[::1]", community=snmpd6.community, codec="pysnmp", **common)
        ),
        create("v3", v3_opts(tmp_path, address="::1", **common)),
    ]

    async def run():
        return await asyncio.gather(*(c.collect(time.time()) for c in collectors))

    for c, snap in zip(collectors, asyncio.run(run()), strict=True):
        by_id = {r.id: r for r in snap.readings}
        assert by_id[c.base].state == State.OK, by_id[c.base].detail
        assert by_id[f"{c.base}/port/lo"].state == State.OK
    assert collectors[0].target == f"[::1]:{snmpd6.port}"


def test_a_wrong_community_over_ipv6_is_unknown(snmpd6):
    c = create(
        "tor-x",
        opts(address="::1", port=snmpd6.port, community="wrong", request_timeout=0.3, retries=0),
    )
    snap = asyncio.run(c.collect(time.time()))
    assert snap.readings[0].state == State.UNKNOWN and "wrong" not in snap.readings[0].detail


@pytest.mark.parametrize(
    "address,trap_listen,error",
    [
        ("2001:db8:::1", "", "address: '2001:db8:::1' is not a valid IPv4 or IPv6 address"),
        ("192.0.2.300", "", "address: '192.0.2.300' is not a valid IPv4 or IPv6 address"),
        ("tor a", "", "address: expected an IPv4 or IPv6 address or a host name"),
        ("::1", "::1:162", "trap_listen: expected HOST:PORT with an IPv6 address in brackets"),
        ("::1", "[::1]:0", "trap_listen: expected HOST:PORT"),
        ("::1", "[2001:db8:::1]:162", "trap_listen: expected HOST:PORT with an IPv6 address"),
    ],
)
def test_ipv6_config_errors_name_the_collector_and_key(address, trap_listen, error):
    with pytest.raises(ValueError) as e:
        create("tor-a", opts(address=address, community="c", trap_listen=trap_listen))
    assert str(e.value).startswith("collector tor-a: ") and error in str(e.value)


def test_ipv6_addresses_load_from_the_config(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text(
        '[agent]\nsite = "dc1"\nhost = "web-01"\n'
        '[[collectors.snmp]]\nname = "tor-a"\naddress = "2001:DB8::10"\ncommunity = "c"\n'
        'trap_listen = "[::]:1162"\n'
    )
    (c,) = load(path).collectors
    collector = create(c.name, c.options)
    assert collector.address == "2001:db8::10"
    assert collector.target == "[2001:db8::10]:161"


# --- a host name that resolves to IPv6 only, in a namespace --------------------------------


@pytest.fixture
def netns():
    """A network namespace with its loopback up and a private /etc/hosts."""
    name = f"hsn-{os.getpid() % 1_000_000}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True)
    etc = Path("/etc/netns") / name
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text("::1 tor-v6.test\n")
        yield name
    finally:
        shutil.rmtree(etc, ignore_errors=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_a_host_name_resolving_to_ipv6_is_polled_with_v2c_and_v3(netns, tmp_path):
    inside = ["ip", "netns", "exec", netns]
    names = subprocess.run([*inside, "getent", "ahosts", "tor-v6.test"], capture_output=True)
    assert names.stdout.split()[:1] == [b"::1"], names
    d = Snmpd(host="::1")  # the port is picked outside; the namespace's ports are all free
    proc = subprocess.Popen(
        [
            *inside,
            *("snmpd", "-f", "-C", "-c", str(d.dir / "snmpd.conf")),
            *("-Lf", str(d.dir / "snmpd.log"), "-p", str(d.dir / "pid")),
        ],
        env={**os.environ, "SNMP_PERSISTENT_DIR": str(d.dir), "MIBS": ""},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    d.proc = proc
    try:
        community = secret(tmp_path / "community", d.community)

        def discover(*args: str) -> subprocess.CompletedProcess[str]:
            argv = [*inside, sys.executable, "-m", "agent.cli", "discover", "snmp"]
            argv += ["tor-v6.test", "--port", str(d.port), "--json", *args]
            return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=60)

        deadline = time.monotonic() + 30
        while (r := discover("--community-file", community)).returncode != 0:
            assert time.monotonic() < deadline, r.stderr  # snmpd still starting
            time.sleep(0.3)
        found = json.loads(r.stdout)
        assert found["address"] == "tor-v6.test" and found["device"].startswith("answers")
        r3 = discover(
            *("--version", "3", "--user", V3_USER),
            *("--auth-key-file", secret(tmp_path / "auth", V3_AUTH)),
            *("--priv-key-file", secret(tmp_path / "priv", V3_PRIV)),
        )
        assert r3.returncode == 0, r3.stderr
        assert json.loads(r3.stdout)["device"].startswith("answers")
    finally:
        d.stop()


# --- traps and informs to an IPv6 listener ----------------------------------------------


def listen(c) -> asyncio.Event:
    """Bind ``c``'s trap listener; the event is set by each re-poll the listener asks for."""
    fired = asyncio.Event()
    c.bind_trigger(fired.set)
    return fired


async def fired_within(fired: asyncio.Event, seconds: float) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(fired.wait(), seconds)
    ok = fired.is_set()
    fired.clear()
    return ok


async def run_tool(*args, **kw) -> subprocess.CompletedProcess[str]:
    """``notify`` off the loop: the listener must answer while the tool waits."""
    return await asyncio.get_running_loop().run_in_executor(None, lambda: notify(*args, **kw))


@pytest.mark.parametrize("kind", ["snmptrap", "snmpinform"])
def test_v2c_trap_and_inform_to_an_ipv6_listener(kind):
    port = free_udp_port("::1")
    c = create("tor-6", opts(address="::1", community="c-six", trap_listen=f"[::1]:{port}"))

    async def run():
        fired = listen(c)
        try:
            wrong = await run_tool(kind, "::1", port, community="not-it", timeout=0.5, retries=0)
            wrong_fired = await fired_within(fired, 1.0)
            right = await run_tool(kind, "::1", port, community="c-six")
            return wrong, wrong_fired, right, await fired_within(fired, 10)
        finally:
            c.close()

    wrong, wrong_fired, right, right_fired = asyncio.run(run())
    assert not wrong_fired, "a notification with a wrong community re-polled the device"
    assert right.returncode == 0, right.stderr
    assert right_fired
    if kind == "snmpinform":  # acknowledged only with the right community
        assert wrong.returncode != 0 and "Timeout" in wrong.stderr, wrong


def test_v3_inform_is_acknowledged_before_the_first_poll_and_a_wrong_key_is_not(tmp_path):
    """An inform's receiver is the authoritative engine: no device engine id is needed."""
    port = free_udp_port("::1")
    c = create("tor-6", v3_opts(tmp_path, address="::1", trap_listen=f"[::1]:{port}"))

    async def run():
        fired = listen(c)
        try:
            bad = (V3_USER, "wrong-auth-passphrase", V3_PRIV)
            wrong = await run_tool("snmpinform", "::1", port, v3=bad, timeout=0.5, retries=0)
            wrong_fired = await fired_within(fired, 1.0)
            right = await run_tool("snmpinform", "::1", port, v3=V3)
            return wrong, wrong_fired, right, await fired_within(fired, 10)
        finally:
            c.close()

    wrong, wrong_fired, right, right_fired = asyncio.run(run())
    assert wrong.returncode != 0 and not wrong_fired, wrong
    assert right.returncode == 0, right.stderr
    assert right_fired


def test_a_dual_stack_listener_matches_an_ipv4_device():
    """On [::], IPv4 senders arrive as ::ffff:a.b.c.d: matched to the IPv4 address."""
    port = free_udp_port("::")
    c = create("tor-4", opts(address="127.0.0.1", community="c-four", trap_listen=f"[::]:{port}"))

    async def run():
        fired = listen(c)
        try:
            sent = await run_tool("snmpinform", "127.0.0.1", port, community="c-four")
            return sent, await fired_within(fired, 10)
        finally:
            c.close()

    sent, got = asyncio.run(run())
    assert sent.returncode == 0, sent.stderr
    assert got


def test_v3_trap_over_ipv6_after_the_first_poll(snmpd6, tmp_path):
    """A v3 trap's keys are localised with the device's engine id, read at the first poll."""
    port = free_udp_port("::1")
    c = create(
        "tor-6", v3_opts(tmp_path, address="::1", port=snmpd6.port, trap_listen=f"[::1]:{port}")
    )

    async def run():
        fired = listen(c)
        try:
            snap = await c.collect(time.time())
            assert snap.readings[0].state == State.OK, snap.readings[0].detail
            engine_id = c._engine_id.hex()
            bad = (V3_USER, "wrong-auth-passphrase", V3_PRIV)
            await run_tool("snmptrap", "::1", port, v3=bad, engine_id=engine_id)
            wrong_fired = await fired_within(fired, 1.0)
            sent = await run_tool("snmptrap", "::1", port, v3=V3, engine_id=engine_id)
            return wrong_fired, sent, await fired_within(fired, 10)
        finally:
            c.close()

    wrong_fired, sent, right_fired = asyncio.run(run())
    assert not wrong_fired, "a v3 trap with a wrong passphrase re-polled the device"
    assert sent.returncode == 0, sent.stderr
    assert right_fired


def test_one_v3_user_with_two_sets_of_keys_on_one_listener_keeps_the_first(tmp_path, caplog):
    port = free_udp_port("::1")
    listen_on = f"[::1]:{port}"
    a = create("tor-a", v3_opts(tmp_path, address="::1", trap_listen=listen_on))
    other = tmp_path / "other"
    other.mkdir()
    b_opts = v3_opts(other, address="::2", trap_listen=listen_on)
    (other / "priv").write_text("another-priv-passphrase\n")
    b = create("tor-b", b_opts)

    async def run():
        fired = listen(a)
        b.bind_trigger(lambda: None)
        try:
            sent = await run_tool("snmpinform", "::1", port, v3=V3)
            return sent, await fired_within(fired, 10)
        finally:
            a.close()
            b.close()

    sent, fired = asyncio.run(run())
    assert sent.returncode == 0 and fired, sent.stderr
    said = [r.getMessage() for r in caplog.records if "other passphrases" in r.getMessage()]
    assert said and said[0].startswith("tor-b: SNMPv3 user 'hsuser'")
    assert "another-priv" not in caplog.text
