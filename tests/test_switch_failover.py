"""Switch failure -> bond moved (issue: standby promotion, "Switch failure" test), with real peers.

The SNMP collector polls net-snmp's snmpd on loopback, which serves the IF-MIB of this
network namespace, so a veth pair the test creates is a switch's uplink port that the test
can take down. A silent switch is snmpd stopped with SIGSTOP. The bond action writes a
fixture sysfs tree. The agent is a real process with a real mosquitto.

Silence is UNKNOWN (no action ever fires on it) unless the switch's entry sets
``unreachable_failed_after``: then ``switch/<name>`` itself becomes FAILED after that long,
its parts stay UNKNOWN.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

import pytest

from collectors.base import State
from collectors.snmp import SnmpCollector, SnmpError, create, silence_state
from tests.conftest import CLEAN, DEGRADED, write_mdstat
from tests.schemas import validate
from tests.snmp_peer import Snmpd, Veth, opts
from tests.test_promotion import fixture_bond

UPLINK = "hsw-up0"


# --- pure: silence -> state ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("silent_for", "failed_after", "state"),
    [
        (0.0, 0.0, State.UNKNOWN),
        (3600.0, 0.0, State.UNKNOWN),  # 0: never a verdict
        (2.9, 3.0, State.UNKNOWN),
        (3.0, 3.0, State.FAILED),
        (10.0, 3.0, State.FAILED),
    ],
)
def test_silence_is_unknown_until_the_configured_time(silent_for, failed_after, state):
    got, words = silence_state(silent_for, failed_after, "timeout")
    assert got == state
    assert words.endswith("timeout")
    if state == State.FAILED:
        assert words.startswith(f"no answer for {failed_after:g} s or more")


def test_the_option_is_validated_and_reaches_the_collector():
    c = create("tor-a", opts(address="127.0.0.1", community="x", unreachable_failed_after=2.5))
    assert c.unreachable_failed_after == 2.5
    assert create("tor-a", opts(address="127.0.0.1", community="x")).unreachable_failed_after == 0
    with pytest.raises(ValueError, match="tor-a: unreachable_failed_after"):
        create("tor-a", opts(address="127.0.0.1", community="x", unreachable_failed_after=-1.0))


class SilentEngine:
    """An engine whose device never answers (the I/O seam of the collector)."""

    def acquire(self, user):
        pass

    def release(self, user):
        pass

    async def add_target(self, *args):
        return object()

    async def get(self, target, oids):
        raise SnmpError("no response within 0.2 s")

    async def walk(self, *args):
        raise SnmpError("no response within 0.2 s")


def test_silence_is_counted_from_the_first_unanswered_poll():
    now = [100.0]
    c = SnmpCollector(
        "tor-a",
        "127.0.0.1",
        profile="entity",
        unreachable_failed_after=3.0,
        engine_factory=SilentEngine,
        clock=lambda: now[0],
    )

    def poll(at: float):
        now[0] = at
        return {r.id: r for r in asyncio.run(c.collect(at)).readings}["switch/tor-a"]

    assert poll(100.0).state == State.UNKNOWN
    assert poll(102.9).state == State.UNKNOWN
    r = poll(103.0)
    assert r.state == State.FAILED and r.detail.startswith("no answer for 3 s or more: no response")
    assert poll(500.0).state == State.FAILED


# --- real UDP: a port nobody answers on, then snmpd on it ----------------------------------


def test_a_dead_target_is_unknown_then_failed_then_ok_when_it_answers():
    d = Snmpd()  # its port is chosen, nothing listens there yet
    c = create(
        "tor-a",
        opts(
            address="127.0.0.1",
            port=d.port,
            community=d.community,
            request_timeout=0.2,
            retries=0,
            deadline=1.0,
            ports=["lo"],
            unreachable_failed_after=1.0,
        ),
    )

    async def until(state: State, limit: float = 30.0) -> list[dict]:
        """Polls (each a dict id -> reading) until switch/tor-a is ``state``."""
        seen = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            snap = await c.collect(time.time())
            seen.append({r.id: r for r in snap.readings})
            if seen[-1]["switch/tor-a"].state == state:
                break
        return seen

    try:
        silent = asyncio.run(until(State.FAILED))
        states = [p["switch/tor-a"].state for p in silent]
        print(f"never answered: {len(states)} polls: {[s.value for s in states]}")
        assert states[0] == State.UNKNOWN and states[-1] == State.FAILED
        assert set(states) == {State.UNKNOWN, State.FAILED}
        assert silent[-1]["switch/tor-a"].detail.startswith("no answer for 1 s or more")
        assert d.community not in silent[-1]["switch/tor-a"].detail

        d.start()
        back = asyncio.run(until(State.OK))[-1]
        assert back["switch/tor-a"].state == State.OK
        assert back["switch/tor-a/port/lo"].state == State.OK

        # answered once, silent again: the count starts afresh, the port stays unknown
        assert d.proc is not None
        d.proc.send_signal(signal.SIGSTOP)
        try:
            silent = asyncio.run(until(State.FAILED))
        finally:
            d.proc.send_signal(signal.SIGCONT)
        assert silent[0]["switch/tor-a"].state == State.UNKNOWN
        for poll in silent:
            assert poll["switch/tor-a/port/lo"].state == State.UNKNOWN
        assert silent[-1]["switch/tor-a"].state == State.FAILED
        assert asyncio.run(until(State.OK))[-1]["switch/tor-a"].state == State.OK
    finally:
        d.stop()


# --- a real agent: switch failure moves the bond ------------------------------------------


@pytest.fixture
def snmpd():
    d = Snmpd().start()
    yield d
    if d.proc is not None and d.proc.poll() is None:
        d.proc.send_signal(signal.SIGCONT)
    d.stop()


@pytest.fixture
def uplink():
    v = Veth(UPLINK)
    yield v
    v.remove()


def agent_config(
    host: str,
    broker_port: int,
    tmp: Path,
    snmp_port: int,
    community: str,
    failed_after: float,
    sysfs: Path,
) -> str:
    """An agent with an mdstat collector (the witness), one switch, a bond policy and a
    dry-run witness policy with the same hold-down."""
    write_mdstat(tmp / "mdstat", CLEAN)
    return f"""[agent]
site = "dc1"
host = "{host}"
interval = 0.5
jitter = 0
state_dir = "{tmp / "state"}"
[mqtt]
url = "mqtt://127.0.0.1:{broker_port}"
keepalive = 5
[[collectors.mdstat]]
path = "{tmp / "mdstat"}"
[[collectors.snmp]]
name = "tor-a"
address = "127.0.0.1"
port = {snmp_port}
community = "{community}"
ports = ["{UPLINK}"]
request_timeout = 0.3
retries = 0
deadline = 1.0
unreachable_failed_after = {failed_after}
[promotion]
[[promotion.policy]]
name = "tor-a"
when = ["component:switch/tor-a=failed", "component:switch/tor-a/port/{UPLINK}=failed"]
intent = "reroute"
action = "bond"
hold_down = 1.0
[promotion.policy.bond]
bond = "bond0"
engaged_slave = "eth1"
released_slave = "eth0"
sysfs_root = "{sysfs}"
[[promotion.policy]]
name = "witness"
when = ["group:md*=degraded|failed"]
action = "hook"
hold_down = 1.0
dry_run = true
[promotion.policy.hook]
argv = ["/bin/true"]
"""


def promotions(sub, host: str, policy: str | None = None) -> list[dict]:
    return [
        e
        for e in sub.json_on(f"/{host}/events")
        if e["type"] == "promotion" and (policy is None or e["id"] == policy)
    ]


def component(health: dict, cid: str) -> str | None:
    return next((c["state"] for c in health["components"] if c["id"] == cid), None)


def health_shows(
    sub, host: str, wanted: dict[str, str], timeout: float, what: str, after: float = 0.0
) -> dict:
    """The first health of ``host`` received after ``after`` showing the ``wanted`` states."""
    m = sub.wait(
        lambda m: (
            m.at > after
            and m.topic.endswith(f"/{host}/health")
            and bool(m.payload)
            and all(component(m.json(), c) == s for c, s in wanted.items())
        ),
        timeout,
        what,
    )
    return m.json()


def engaged_event(sub, host: str, timeout: float) -> dict:
    sub.wait(
        lambda m: any(e["decision"] == "engaged" for e in promotions(sub, host, "tor-a")),
        timeout,
        f"{host}: the bond action",
    )
    e = next(e for e in promotions(sub, host, "tor-a") if e["decision"] == "engaged")
    validate("event", e)
    return e


def test_uplink_port_down_moves_the_bond_and_the_event_names_the_port(
    broker, subscribe, run_agent, tmp_path, snmpd, uplink
):
    sysfs = tmp_path / "sys"
    bond = fixture_bond(sysfs)
    sub = subscribe()
    cfg = agent_config("web-01", broker.port, tmp_path, snmpd.port, snmpd.community, 0, sysfs)
    agent = run_agent(cfg)
    port = f"switch/tor-a/port/{UPLINK}"
    # snmpd re-reads its interface table every few seconds: wait until it lists the veth
    health_shows(sub, "web-01", {"switch/tor-a": "ok", port: "ok"}, 40, "the uplink up")
    uplink.down()
    health = health_shows(sub, "web-01", {port: "failed"}, 40, "the uplink down")
    assert component(health, "switch/tor-a") == "ok"
    e = engaged_event(sub, "web-01", 20)
    assert e["action"] == "bond" and e["intent"] == "reroute"
    assert e["trigger"] == f"component {port} failed"
    assert e["message"] == "bond0: active slave eth0 -> eth1"
    assert (bond / "active_slave").read_text() == "eth1\n"
    assert "active slave eth0 -> eth1" in agent.output()
    assert snmpd.community not in agent.output()


def test_a_silent_switch_moves_the_bond_only_with_unreachable_failed_after(
    broker, subscribe, run_agent, tmp_path, snmpd, uplink
):
    """Two agents poll the same switch; only web-02's entry turns silence into a verdict.
    web-01 (unreachable_failed_after = 0) must not act: once its health shows the switch
    unknown, its md0 is degraded too, and a dry-run policy with the same hold-down says when
    a hold-down started after that has run out; by then the bond policy has not even gone
    pending."""
    hosts = {"web-01": 0.0, "web-02": 1.5}
    bonds = {}
    sub = subscribe()
    for host, failed_after in hosts.items():
        tmp = tmp_path / host
        tmp.mkdir()
        bonds[host] = fixture_bond(tmp / "sys")
        run_agent(
            agent_config(
                host, broker.port, tmp, snmpd.port, snmpd.community, failed_after, tmp / "sys"
            ),
            name=host,
        )
    port = f"switch/tor-a/port/{UPLINK}"
    for host in hosts:
        health_shows(sub, host, {"switch/tor-a": "ok", port: "ok"}, 40, f"{host}: tor-a ok")

    assert snmpd.proc is not None
    stopped = time.monotonic()  # Message.at is monotonic
    snmpd.proc.send_signal(signal.SIGSTOP)
    try:
        # web-02: unknown first, then failed after 1.5 s of silence, then the bond moves
        health_shows(
            sub, "web-02", {"switch/tor-a": "unknown", port: "unknown"}, 20, "unknown", stopped
        )
        health = health_shows(sub, "web-02", {"switch/tor-a": "failed"}, 20, "web-02: failed")
        assert component(health, port) == "unknown"  # silence says nothing about the port
        e = engaged_event(sub, "web-02", 20)
        assert e["trigger"] == "component switch/tor-a failed"
        assert e["message"] == "bond0: active slave eth0 -> eth1"
        assert (bonds["web-02"] / "active_slave").read_text() == "eth1\n"

        # web-01: unknown, and it stays so; the witness's hold-down runs out, no bond action
        health_shows(
            sub, "web-01", {"switch/tor-a": "unknown", port: "unknown"}, 20, "unknown", stopped
        )
        write_mdstat(tmp_path / "web-01" / "mdstat", DEGRADED)
        sub.wait(
            lambda m: any(e["decision"] == "dry_run" for e in promotions(sub, "web-01", "witness")),
            20,
            "web-01: the witness policy's hold-down ran out",
        )
        last = [m.json() for m in sub.messages if m.topic.endswith("/web-01/health") and m.payload][
            -1
        ]
        assert component(last, "switch/tor-a") == "unknown", last
        assert promotions(sub, "web-01", "tor-a") == []
        assert (bonds["web-01"] / "active_slave").read_text() == "eth0\n"
        print(
            "decisions:",
            {h: [(e["id"], e["decision"]) for e in promotions(sub, h)] for h in hosts},
        )
    finally:
        with contextlib.suppress(ProcessLookupError):
            snmpd.proc.send_signal(signal.SIGCONT)
